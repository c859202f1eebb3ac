"""Sign-up, confirmation, profile, e-mail change and forgotten password (A-1…A-4)."""

from uuid import UUID

from fastapi import APIRouter, Request

from api.access import CallerDep, PolicyRoute
from api.deps import AccountsDep, IdempotencyDep, RuntimeDep, counted_client
from api.problems import PROBLEM_RESPONSES, problem_responses
from api.schemas import (
    AccountCreate,
    AccountPublic,
    AccountUpdate,
    AccountVerify,
    EmailChangeConfirm,
    PasswordResetAccepted,
    PasswordResetConfirm,
    PasswordResetCreate,
    PersonalDataDisclosure,
)
from lifecycle.domain.privacy import SubjectKind

router = APIRouter(route_class=PolicyRoute, prefix="/v1/accounts", tags=["accounts"], responses=PROBLEM_RESPONSES)

PASSWORD_RESET_ACCEPTED = {
    "status": "accepted",
    "detail": "If the address is the login ID of an active account, a reset link has been mailed to it.",
    "message_ja": "ご入力のメールアドレスが登録されている場合は、パスワード再設定のご案内をお送りしました。",
}


@router.post("", status_code=201, response_model=AccountPublic, responses=problem_responses(429))
def sign_up(body: AccountCreate, request: Request, runtime: RuntimeDep, idempotency: IdempotencyDep) -> dict:
    """Create a provisional account; a confirmation URL valid 24 hours is mailed. An address
    that is already registered is answered the same way (A-4), and its owner is mailed "you
    already have an account" with the login and password-reset links instead. Limited per
    address and per client (429 with Retry-After)."""
    return runtime.doors.sign_up(
        counted_client(request), str(body.email), body.password, body.name, body.company_name, body.phone,
        body.agree_terms, idempotency,
    )


@router.post("/verify", response_model=AccountPublic)
def verify(body: AccountVerify, accounts: AccountsDep, idempotency: IdempotencyDep) -> dict:
    """Activate the account of a confirmation token; E1 when there is none waiting."""
    return accounts.verify_account(body.token, idempotency)


@router.post("/email/confirm", response_model=AccountPublic)
def confirm_email_change(body: EmailChangeConfirm, accounts: AccountsDep, idempotency: IdempotencyDep) -> dict:
    """A-3: the token of the URL mailed to the new address makes it the login ID; the
    password must then be set again (`password_reset_required`, Q17)."""
    return accounts.confirm_email_change(body.token, idempotency)


@router.post("/password-reset", status_code=202, response_model=PasswordResetAccepted, responses=problem_responses(429))
def request_password_reset(
    body: PasswordResetCreate, request: Request, runtime: RuntimeDep, idempotency: IdempotencyDep
) -> dict:
    """A-4: mails a single-use reset link to an active account's login ID. The answer is
    the same whether or not the address is registered. Limited per address and per client
    (429 with Retry-After)."""
    runtime.doors.request_password_reset(counted_client(request), str(body.email), idempotency)
    return PASSWORD_RESET_ACCEPTED


@router.post("/password-reset/confirm", response_model=AccountPublic)
def confirm_password_reset(body: PasswordResetConfirm, accounts: AccountsDep, idempotency: IdempotencyDep) -> dict:
    """A-4: sets the new password (A-1's strength rule) with the mailed link, once."""
    return accounts.reset_password(body.token, body.password, idempotency)


@router.get("/me", response_model=AccountPublic)
def my_account(caller: CallerDep, accounts: AccountsDep) -> dict:
    """The logged-in customer's own account."""
    return accounts.get_account(UUID(caller.account_id))


@router.get("/me/personal-data", response_model=PersonalDataDisclosure)
def my_personal_data(caller: CallerDep, runtime: RuntimeDep) -> dict:
    """Everything held about the logged-in customer (APPI art. 33), decrypted: the account,
    its companies with their sites, fault contacts and registrations, and every event that
    mentions them."""
    return runtime.privacy.disclose(SubjectKind.ACCOUNT, UUID(caller.account_id))


@router.get("/{account_id}", response_model=AccountPublic)
def get_account(account_id: UUID, accounts: AccountsDep) -> dict:
    return accounts.get_account(account_id)


@router.patch("/{account_id}", response_model=AccountPublic)
def change_profile(
    account_id: UUID, body: AccountUpdate, caller: CallerDep, accounts: AccountsDep, idempotency: IdempotencyDep
) -> dict:
    """A-3: name, company name, phone; a new `email` is requested here and mailed a
    confirmation URL (24 hours) — it shows as `pending_email` until confirmed. The e-mail (the
    login ID) only by the owner's session or an API key with the admin role (support, recorded
    as such); other keys 403. Once changed, the old address is mailed a notice."""
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    if "email" in changes:
        changes["email"] = str(changes["email"])
    return accounts.change_profile(account_id, changes, idempotency, by=caller)
