"""The account's screens (seed p.5–8, p.34, Q15, Q17, E1): 新規登録 (terms and 同意する), the
account form, 確認メールを送信しました, the confirmation link's page, ログイン, ログアウト,
ユーザー情報 (profile, e-mail change, password), パスワードを忘れた方はこちら, and the pages the
mailed links open. Each calls the application service the API's route calls, with the same
attempt limits."""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from api.deps import client_address
from api.portal.forms import Form, check_schema, folded, place_error, read_form
from api.portal.web import (
    PREFIX,
    CustomerDep,
    PortalRoute,
    OptionalCustomerDep,
    account_id_of,
    end_session,
    redirect,
    render,
    safe_next,
    start_session,
)
from api.schemas import AccountCreate, AccountUpdate, PasswordResetCreate
from lifecycle.aggregates.index import email_key
from lifecycle.domain.accounts import check_password_strength
from lifecycle.domain.addresses import normalise_phone
from lifecycle.domain.errors import (
    AccountNotActive,
    DomainError,
    EmailAlreadyRegistered,
    EmailChangeNotFound,
    InvalidCredentials,
    PasswordResetNotFound,
    ProvisionalUserNotFound,
    RateLimited,
    WeakPassword,
)

router = APIRouter(prefix=PREFIX, route_class=PortalRoute)

ACCOUNT_FIELDS = ("email", "password", "password_confirm", "name", "company_name", "phone")
ACCOUNT_LABELS = {
    "email": "メールアドレス",
    "name": "氏名",
    "company_name": "会社名",
    "phone": "電話番号",
}
# Where a refusal of the account form belongs.
ACCOUNT_FIELD_OF = {
    "WEAK_PASSWORD": "password",
    "EMAIL_ALREADY_REGISTERED": "email",
    "INVALID_PHONE": "phone",
    "INVALID_TEXT": "",
}
PASSWORDS_DIFFER = "パスワードとパスワード（確認）が一致しません。"
PASSWORD_RULE = "英字と数字を両方含む8文字以上で入力してください。"
RESET_ACCEPTED = "ご入力のメールアドレスが登録されている場合は、パスワード再設定のご案内をお送りしました。メールに記載されたURLから、24時間以内に手続きしてください。"


def _runtime(request: Request) -> Any:
    return request.app.state.runtime


# --- 新規登録: terms, the account form, its check, the mail sent ------------------------------


@router.get("/signup")
def terms(request: Request) -> Response:
    """1-1: the terms of use and 同意する."""
    return render(request, "account/terms.html")


def _account_form(data: Any) -> Form:
    return read_form(data, ACCOUNT_FIELDS, ACCOUNT_LABELS)


def _check_account(form: Form) -> dict[str, str]:
    """The account form as the API would take it; what a person typed is folded first (a
    full-width phone or address), so the confirmation screen shows what will be saved."""
    values = form.values
    typed = {
        "email": folded(values["email"]),
        "password": values["password"],
        "name": values["name"].strip(),
        "company_name": values["company_name"].strip(),
        "phone": folded(values["phone"]),
        "agree_terms": True,
    }
    check_schema(form, AccountCreate, typed)
    if "password" not in form.errors:
        try:
            check_password_strength(values["password"])
        except WeakPassword as error:
            form.add("password", error.message_ja)
    if values["password"] != values["password_confirm"] and "password" not in form.errors:
        form.add("password_confirm", PASSWORDS_DIFFER)
    if "phone" not in form.errors:
        try:
            typed["phone"] = normalise_phone(typed["phone"])
        except DomainError as error:
            form.add("phone", error.message_ja)
    return {name: typed[name] for name in ("email", "password", "name", "company_name", "phone")}


@router.get("/signup/account")
def account_form(request: Request, agree_terms: str = "") -> Response:
    """1-2: the account form, after 同意する (the terms page's GET form says so)."""
    if agree_terms != "yes":
        return redirect(f"{PREFIX}/signup")
    return render(request, "account/signup.html", form=Form(order=ACCOUNT_FIELDS), password_rule=PASSWORD_RULE)


@router.post("/signup/account")
async def submit_account(request: Request) -> Response:
    """登録する on the form shows the check page; 登録する there signs up (A-1, A-2)."""
    data = await request.form()
    if data.get("agree_terms") != "yes":
        return redirect(f"{PREFIX}/signup")
    form = _account_form(data)
    checked = _check_account(form)
    if not form.ok:
        return render(request, "account/signup.html", form=form, password_rule=PASSWORD_RULE)
    if data.get("step") != "confirmed":
        return render(request, "account/signup_check.html", form=form, checked=checked, labels=ACCOUNT_LABELS)
    runtime = _runtime(request)
    try:
        # The API's own door: its sign-up limits, and an already registered address answered
        # as a new one (its owner is mailed instead).
        await run_in_threadpool(
            runtime.doors.sign_up, client_address(request), checked["email"], checked["password"], checked["name"],
            checked["company_name"], checked["phone"], True,
        )
    except DomainError as error:
        if error.kind.value == "unavailable":
            raise
        place_error(form, error, ACCOUNT_FIELD_OF, default="email" if isinstance(error, RateLimited) else None)
        return render(request, "account/signup.html", form=form, password_rule=PASSWORD_RULE)
    return redirect(f"{PREFIX}/signup/sent")


@router.get("/signup/sent")
def mail_sent(request: Request) -> Response:
    """確認メールを送信しました (1-2 ⑥)."""
    return render(request, "account/signup_sent.html")


@router.get("/signup/confirm")
async def confirm_signup(request: Request, token: str = "") -> Response:
    """The confirmation URL of the mail (A-2): 新規会員登録完了, or E1 worded as the seed's
    answer (harmless: the account may be active already, just log in)."""
    accounts = _runtime(request).application.accounts
    try:
        await run_in_threadpool(accounts.verify_account, token[:500])
    except ProvisionalUserNotFound as error:
        return render(request, "account/signup_confirmed.html", e1=error.message_ja)
    return render(request, "account/signup_confirmed.html", e1=None)


# --- ログイン and ログアウト ------------------------------------------------------------------


LOGIN_FIELDS = ("email", "password")


@router.get("/login")
def login_page(request: Request, customer: OptionalCustomerDep, next: str = "", logged_out: str = "") -> Response:
    if customer is not None:
        return redirect(safe_next(next))
    flash = "ログアウトしました。" if logged_out else None
    return render(request, "account/login.html", form=Form(order=LOGIN_FIELDS), next=safe_next(next), flash=flash)


@router.post("/login")
async def log_in(request: Request) -> Response:
    data = await request.form()
    form = read_form(data, LOGIN_FIELDS)
    target = safe_next(str(data.get("next", "")))
    email = folded(form.values["email"])
    if not email:
        form.add("email", "メールアドレスを入力してください。")
    if not form.values["password"]:
        form.add("password", "パスワードを入力してください。")
    if not form.ok:
        return render(request, "account/login.html", form=form, next=target, status_code=422)
    runtime = _runtime(request)
    try:
        # The API's POST /v1/sessions: the same limits and throttling, the same session.
        session = await run_in_threadpool(runtime.doors.log_in, client_address(request), email, form.values["password"])
    except (InvalidCredentials, AccountNotActive, RateLimited) as error:
        form.add("email", error.message_ja)
        response = render(request, "account/login.html", form=form, next=target, status_code=422)
        if isinstance(error, RateLimited) and "retry_after" in error.extra:
            response.headers["Retry-After"] = str(max(1, int(error.extra["retry_after"])))
        return response
    response = redirect(target)
    start_session(request, response, session["token"])
    return response


@router.post("/logout")
async def log_out(request: Request, customer: OptionalCustomerDep) -> Response:
    if customer is not None:
        await run_in_threadpool(_runtime(request).access.logout, customer)
    response = redirect(f"{PREFIX}/login?logged_out=1")
    end_session(request, response)
    return response


@router.get("/session")
def keep_alive(customer: CustomerDep) -> Response:
    """portal.js's ログイン状態を延長する: any request of the customer's counts as activity."""
    return Response(status_code=204)


# --- パスワードを忘れた方はこちら (A-4, Q15) ----------------------------------------------------


@router.get("/password-reset")
def reset_request_page(request: Request) -> Response:
    return render(request, "account/reset_request.html", form=Form(order=("email",)))


@router.post("/password-reset")
async def request_reset(request: Request) -> Response:
    """The same page whether or not the address is registered (no enumeration)."""
    data = await request.form()
    form = read_form(data, ("email",))
    body = check_schema(form, PasswordResetCreate, {"email": folded(form.values["email"])})
    if body is None:
        return render(request, "account/reset_request.html", form=form, status_code=422)
    email = str(body.email)  # type: ignore[attr-defined]
    runtime = _runtime(request)
    try:
        await run_in_threadpool(runtime.doors.request_password_reset, client_address(request), email)
    except RateLimited as error:
        form.add("email", error.message_ja)
        return render(request, "account/reset_request.html", form=form, status_code=429)
    return render(request, "account/reset_requested.html", message=RESET_ACCEPTED)


RESET_FIELDS = ("password", "password_confirm")


@router.get("/password-reset/confirm")
def reset_form(request: Request, token: str = "") -> Response:
    """The mailed reset link: a form for the new password (nothing changes on opening it)."""
    return render(request, "account/reset_form.html", form=Form(order=RESET_FIELDS), token=token[:500],
                  password_rule=PASSWORD_RULE)


def _check_new_password(form: Form, name: str = "password", confirm: str = "password_confirm") -> None:
    try:
        check_password_strength(form.values[name])
    except WeakPassword as error:
        form.add(name, error.message_ja)
    if form.ok and form.values[name] != form.values[confirm]:
        form.add(confirm, PASSWORDS_DIFFER.replace("パスワード（確認）", "新しいパスワード（確認）")
                 if name.startswith("new") else PASSWORDS_DIFFER)


@router.post("/password-reset/confirm")
async def reset_password(request: Request) -> Response:
    data = await request.form()
    token = str(data.get("token", ""))[:500]
    form = read_form(data, RESET_FIELDS)
    _check_new_password(form)
    if not form.ok:
        return render(request, "account/reset_form.html", form=form, token=token, password_rule=PASSWORD_RULE,
                      status_code=422)
    try:
        await run_in_threadpool(_runtime(request).application.accounts.reset_password, token, form.values["password"])
    except PasswordResetNotFound as error:
        return render(request, "account/link_expired.html", message=error.message_ja, status_code=404)
    return render(request, "account/reset_done.html")


# --- ユーザー情報 (A-3, p.34, Q17) ------------------------------------------------------------

PROFILE_FIELDS = ("name", "company_name", "phone", "email")
PROFILE_FIELD_OF = {"EMAIL_ALREADY_REGISTERED": "email", "INVALID_PHONE": "phone", "ACCOUNT_NOT_ACTIVE": "email"}
PASSWORD_FIELDS = ("current_password", "new_password", "new_password_confirm")


def _profile_page(request: Request, account: dict[str, Any], form: Form | None = None,
                  password_form: Form | None = None, flash: str | None = None, status_code: int = 200) -> Response:
    if form is None:
        form = Form(values={name: str(account[name]) for name in PROFILE_FIELDS}, order=PROFILE_FIELDS)
    errors = Form(errors={**form.errors, **(password_form.errors if password_form else {})},
                  order=PROFILE_FIELDS + PASSWORD_FIELDS)
    return render(
        request, "account/profile.html", account=account, form=form, all_errors=errors,
        password_form=password_form or Form(order=PASSWORD_FIELDS), flash=flash, password_rule=PASSWORD_RULE,
        status_code=status_code,
    )


PROFILE_FLASH = {
    "updated": "ユーザー情報を更新しました。",
    "email": "新しいメールアドレス宛に「メールアドレス変更確認メール」を送信しました。24時間以内にメールに記載されたURLを開くと、変更が完了します。",
    "password": "パスワードを変更しました。",
}


@router.get("/account")
async def profile(request: Request, customer: CustomerDep, done: str = "") -> Response:
    account = await run_in_threadpool(_runtime(request).application.accounts.get_account, account_id_of(customer))
    return _profile_page(request, account, flash=PROFILE_FLASH.get(done))


@router.post("/account")
async def change_profile(request: Request, customer: CustomerDep) -> Response:
    """更新する: name, company, phone at once; a new e-mail is mailed its confirmation (Q17)."""
    accounts = _runtime(request).application.accounts
    account = await run_in_threadpool(accounts.get_account, account_id_of(customer))
    data = await request.form()
    form = read_form(data, PROFILE_FIELDS, ACCOUNT_LABELS)
    typed = {
        "name": form.values["name"].strip(),
        "company_name": form.values["company_name"].strip(),
        "phone": folded(form.values["phone"]),
        "email": folded(form.values["email"]),
    }
    check_schema(form, AccountUpdate, typed)
    if "phone" not in form.errors:
        try:
            typed["phone"] = normalise_phone(typed["phone"])
        except DomainError as error:
            form.add("phone", error.message_ja)
    if not form.ok:
        return _profile_page(request, account, form=form, status_code=422)
    changes = {name: value for name, value in typed.items() if value != account[name]}
    if email_key(changes.get("email", account["email"])) == email_key(account["email"]):
        changes.pop("email", None)
    try:
        await run_in_threadpool(partial(accounts.change_profile, account_id_of(customer), changes, by=customer))
    except DomainError as error:
        if error.kind.value in ("unavailable", "not_found"):
            raise
        place_error(form, error, PROFILE_FIELD_OF)
        return _profile_page(request, account, form=form, status_code=422)
    return redirect(f"{PREFIX}/account?done={'email' if 'email' in changes else 'updated'}")


@router.post("/account/password")
async def change_password(request: Request, customer: CustomerDep) -> Response:
    """The password, given the current one; the session is renewed (every old one ends)."""
    runtime = _runtime(request)
    account = await run_in_threadpool(runtime.application.accounts.get_account, account_id_of(customer))
    data = await request.form()
    form = read_form(data, PASSWORD_FIELDS)
    if not form.values["current_password"]:
        form.add("current_password", "現在のパスワードを入力してください。")
    _check_new_password(form, "new_password", "new_password_confirm")
    if form.ok:
        try:
            await run_in_threadpool(
                runtime.access.change_password, customer, form.values["current_password"], form.values["new_password"]
            )
        except InvalidCredentials:
            form.add("current_password", "現在のパスワードが正しくありません。")
        except WeakPassword as error:
            form.add("new_password", error.message_ja)
    if not form.ok:
        return _profile_page(request, account, password_form=form, status_code=422)
    session = await run_in_threadpool(runtime.access.login, account["email"], form.values["new_password"],
                                      client_address(request))
    response = redirect(f"{PREFIX}/account?done=password")
    start_session(request, response, session["token"])
    return response


@router.get("/email/confirm")
def email_change_page(request: Request, token: str = "") -> Response:
    """The URL mailed to the new address: a button confirms (a mail scanner opening the link
    changes nothing)."""
    return render(request, "account/email_confirm.html", token=token[:500])


@router.post("/email/confirm")
async def confirm_email_change(request: Request) -> Response:
    data = await request.form()
    token = str(data.get("token", ""))[:500]
    try:
        account = await run_in_threadpool(_runtime(request).application.accounts.confirm_email_change, token)
    except (EmailChangeNotFound, EmailAlreadyRegistered) as error:
        return render(request, "account/link_expired.html", message=error.message_ja, status_code=404)
    # Every session of the account has ended with the change (Q17: set the password again).
    response = render(request, "account/email_changed.html", email=account["email"])
    end_session(request, response)
    return response
