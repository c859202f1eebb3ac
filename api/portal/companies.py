"""ユーザートップ and the installation screens (seed p.9–15, p.35–39): 設置先会社一覧 with each
契約番号, 設置先会社 新規登録 / 編集, 設置先拠点 一覧 / 新規登録 / 設置先拠点詳細 / 編集 with
住所検索, 障害時連絡先 新規登録 / 編集.

住所検索 posts the form back (no JavaScript needed, so the seed's E3 cannot happen): the page
comes back with the prefecture, city and town filled in, a choice when the code covers several
towns, and E2 at the postal-code field for an office's individual code. Each page calls the
application service the API's route calls, behind the API's owner checks (api.access)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from api.access import owns_company, owns_contact, owns_site
from api.portal.forms import Form, check_schema, folded, folded_address, place_error, read_form
from api.portal.web import PREFIX, CustomerDep, PortalRoute, account_id_of, owned, redirect, render
from api.schemas import CompanyCreate, FaultContactCreate, SiteCreate
from lifecycle.domain.addresses import PostalAddress, normalise_phone, resolve_address
from lifecycle.domain.errors import AddressUndefined, DomainError, Refusal

router = APIRouter(prefix=PREFIX, route_class=PortalRoute)

OwnCompany = Depends(owned(owns_company, "company_id"))
OwnSite = Depends(owned(owns_site, "site_id"))
OwnContact = Depends(owned(owns_contact, "contact_id"))


def _app(request: Request) -> Any:
    return request.app.state.runtime.application


TOP_FLASH = {
    "company": "設置先会社を登録しました。続けて設置先会社を登録するには「設置先会社 新規登録」を押してください。"
    "設置先拠点を登録する場合には、登録したい設置先会社の「設置先拠点」を押してください。",
    "renamed": "設置先会社名を変更しました。",
}


# --- ユーザートップ: 設置先会社一覧 ---------------------------------------------------------------


@router.get("/")
async def top(request: Request, customer: CustomerDep, done: str = "") -> Response:
    companies = await run_in_threadpool(request.app.state.runtime.support_desk.companies_of, account_id_of(customer))
    account = await run_in_threadpool(_app(request).accounts.get_account, account_id_of(customer))
    return render(request, "companies/top.html", companies=companies, account=account, flash=TOP_FLASH.get(done))


# --- 設置先会社 新規登録 / 編集 -------------------------------------------------------------------

COMPANY_FIELDS = ("name",)


def _company_name(form: Form, account_id: UUID) -> str:
    name = form.values["name"].strip()
    check_schema(form, CompanyCreate, {"account_id": str(account_id), "name": name})
    return name


@router.get("/companies/new")
def new_company(request: Request, customer: CustomerDep) -> Response:
    return render(request, "companies/company_form.html", form=Form(order=COMPANY_FIELDS), company=None)


@router.post("/companies/new")
async def submit_company(request: Request, customer: CustomerDep) -> Response:
    data = await request.form()
    form = read_form(data, COMPANY_FIELDS, {"name": "設置先会社名"})
    name = _company_name(form, account_id_of(customer))
    if not form.ok or data.get("step") == "edit":
        return render(request, "companies/company_form.html", form=form, company=None,
                      status_code=422 if not form.ok else 200)
    if data.get("step") != "confirmed":
        return render(request, "companies/company_check.html", form=form, name=name)
    await run_in_threadpool(_app(request).companies.register_company, account_id_of(customer), name)
    return redirect(f"{PREFIX}/?done=company")


@router.get("/companies/{company_id}/edit")
async def edit_company(request: Request, customer: CustomerDep, company_id: UUID = OwnCompany) -> Response:
    company = await run_in_threadpool(_app(request).companies.get_company, company_id)
    form = Form(values={"name": company["name"]}, order=COMPANY_FIELDS)
    return render(request, "companies/company_form.html", form=form, company=company)


@router.post("/companies/{company_id}/edit")
async def rename_company(request: Request, customer: CustomerDep, company_id: UUID = OwnCompany) -> Response:
    company = await run_in_threadpool(_app(request).companies.get_company, company_id)
    form = read_form(await request.form(), COMPANY_FIELDS, {"name": "設置先会社名"})
    name = _company_name(form, account_id_of(customer))
    if not form.ok:
        return render(request, "companies/company_form.html", form=form, company=company, status_code=422)
    await run_in_threadpool(_app(request).companies.rename_company, company_id, name)
    return redirect(f"{PREFIX}/?done=renamed")


# --- addresses: 住所検索 and the checks of a site's or a contact's form ------------------------

ADDRESS_FIELD_OF = {
    "INVALID_POSTAL_CODE": "postal_code",
    "ADDRESS_UNDEFINED": "postal_code",
    "ADDRESS_MISMATCH": "prefecture",
    "INVALID_PHONE": "phone",
}


def _e2_message(error: AddressUndefined) -> str:
    """E2 with the seed's hint: an office's individual code is not accepted; the ordinary code
    of its address is, and we name it when we know it."""
    message = error.message_ja
    if error.extra.get("office"):
        ordinary = error.extra.get("ordinary_postal_code")
        message += "大口事業所個別番号には対応していません。住所から導き出される郵便番号を入力してください。"
        if ordinary:
            message += f"（この住所の郵便番号：{ordinary[:3]}-{ordinary[3:]}）"
    return message


def _refusal_at(form: Form, error: DomainError) -> None:
    if isinstance(error, AddressUndefined):
        form.add("postal_code", _e2_message(error))
    else:
        place_error(form, error, ADDRESS_FIELD_OF)


def look_up_address(request: Request, form: Form) -> list[PostalAddress]:
    """住所検索: fills prefecture, city and town from the postal code; answers the towns to
    choose from when the code covers several (the form is then left for the choice)."""
    try:
        towns = _app(request).postal_codes.towns(folded(form.values["postal_code"]))
    except DomainError as error:
        _refusal_at(form, error)
        return []
    first = towns[0]
    form.values.update(postal_code=_postal_text(first.postal_code), prefecture=first.prefecture, city=first.city)
    if len(towns) == 1:
        form.values["street"] = _with_town(form.values.get("street", ""), first.town, [])
        return []
    return towns


def choose_town(form: Form, town: str, towns: list[str]) -> None:
    form.values["street"] = _with_town(form.values.get("street", ""), town, towns)


def _with_town(street: str, town: str, other_towns: list[str]) -> str:
    """The town put before what the person typed in 番地 (replacing a town put there before)."""
    for known in sorted(other_towns, key=len, reverse=True):
        if known and street.startswith(known):
            street = street[len(known):]
            break
    if town and street.startswith(town):
        return street
    return town + street


def _postal_text(code: str) -> str:
    return f"{code[:3]}-{code[3:]}"


def check_address_form(
    request: Request, form: Form, schema: type[BaseModel], text_fields: tuple[str, ...], email_fields: tuple[str, ...]
) -> dict[str, str]:
    """The form as the API's schema would take it, then the postal code resolved against the
    prefecture and city (S-3, E2) and the phone hyphenated (S-2): what will be saved."""
    values = {name: form.values[name].strip() for name in text_fields}
    for name in ("street", "building"):
        values[name] = folded_address(form.values[name])
    for name in ("postal_code", "phone", *email_fields):
        values[name] = folded(form.values[name])
    check_schema(form, schema, {**values, "prefecture": values["prefecture"] or None, "city": values["city"] or None})
    if "postal_code" not in form.errors:
        try:
            code, prefecture, city = resolve_address(
                _app(request).postal_codes.lookup, values["postal_code"],
                values["prefecture"] or None, values["city"] or None,
            )
            values.update(postal_code=code, prefecture=prefecture, city=city)
        except DomainError as error:
            _refusal_at(form, error)
    if "phone" not in form.errors:
        try:
            values["phone"] = normalise_phone(values["phone"])
        except DomainError as error:
            form.add("phone", error.message_ja)
    return values


def _rows(labels: dict[str, str], values: dict[str, str]) -> list[tuple[str, str]]:
    """The check page's rows, as they will be saved (the postal code shown with its hyphen)."""
    shown = _postal_shown(values)
    return [(label, shown.get(name, "")) for name, label in labels.items()]


def _postal_shown(values: dict[str, str]) -> dict[str, str]:
    code = values.get("postal_code", "")
    return {**values, "postal_code": _postal_text(code) if len(code) == 7 and code.isdigit() else code}


@dataclass(frozen=True)
class AddressForm:
    """A form with an address and 住所検索 (設置先拠点, 障害時連絡先): its page, its fields and
    their labels, how its values are checked, and the title of its check page."""

    template: str
    fields: tuple[str, ...]
    labels: dict[str, str]
    checked_values: Callable[[Request, Form], dict[str, str]]
    check_title: str


async def _posted(
    request: Request, kind: AddressForm, page: dict[str, Any], *, back_from_check: bool
) -> tuple[Form, Any, Response | None]:
    """The posted form, and the page the 住所検索 buttons (and, when `back_from_check`, the
    check page's 入力画面に戻る) answer: None when the form was submitted."""
    data = await request.form()
    form = read_form(data, kind.fields, kind.labels)
    if data.get("action") in ("lookup", "town") or (back_from_check and data.get("step") == "edit"):
        towns, note = await _address_post(request, form, data)
        return form, data, render(request, kind.template, form=form, towns=towns, note=note, **page,
                                  status_code=422 if form.errors else 200)
    return form, data, None


async def _saved(form: Form, save: Callable[[], Any]) -> Any:
    """What `save` answers, or None with its refusal placed on the form (a refusal of the
    values: any other passes on to the problem page)."""
    try:
        return await run_in_threadpool(save)
    except DomainError as error:
        if error.kind is not Refusal.INVALID:
            raise
        _refusal_at(form, error)
        return None


async def _add_address(
    request: Request, kind: AddressForm, page: dict[str, Any], action: str,
    add: Callable[[dict[str, str]], Any], done: Callable[[Any], str],
) -> Response:
    """入力 → 入力内容の確認 → saved: the form again (with its refusals), the check page, or
    the next page once `add` has saved the values."""
    form, data, answered = await _posted(request, kind, page, back_from_check=True)
    if answered is not None:
        return answered
    values = await run_in_threadpool(kind.checked_values, request, form)
    if form.ok and data.get("step") != "confirmed":
        return render(request, "companies/address_check.html", form=form, values=values,
                      rows=_rows(kind.labels, values), action=action, title=kind.check_title)
    added = await _saved(form, lambda: add(values)) if form.ok else None
    if not form.ok:
        return render(request, kind.template, form=form, towns=[], note=None, **page, status_code=422)
    return redirect(done(added))


async def _change_address(
    request: Request, kind: AddressForm, page: dict[str, Any], current: dict[str, Any],
    change: Callable[[dict[str, str]], Any], done: str,
) -> Response:
    """An edit saved at once (no check page): only the values that differ from `current`."""
    form, _, answered = await _posted(request, kind, page, back_from_check=False)
    if answered is not None:
        return answered
    values = await run_in_threadpool(kind.checked_values, request, form)
    if form.ok:
        await _saved(form, lambda: change({name: value for name, value in values.items() if value != current[name]}))
    if not form.ok:
        return render(request, kind.template, form=form, towns=[], note=None, **page, status_code=422)
    return redirect(done)


# --- 設置先拠点 -------------------------------------------------------------------------------

SITE_FIELDS = ("name", "postal_code", "prefecture", "city", "street", "building", "person", "phone", "email")
SITE_LABELS = {
    "name": "拠点名", "postal_code": "郵便番号", "prefecture": "都道府県", "city": "市区町村", "street": "番地",
    "building": "建物名", "person": "担当者名", "phone": "電話番号", "email": "メールアドレス",
}


def _site_values(request: Request, form: Form) -> dict[str, str]:
    return check_address_form(
        request, form, SiteCreate, ("name", "prefecture", "city", "street", "building", "person"), ("email",)
    )


SITE_FORM = AddressForm("companies/site_form.html", SITE_FIELDS, SITE_LABELS, _site_values,
                        "設置先拠点 新規登録 入力内容の確認")


@router.get("/companies/{company_id}/sites")
async def sites(request: Request, customer: CustomerDep, company_id: UUID = OwnCompany, done: str = "") -> Response:
    """設置先拠点 一覧 of a company."""
    app = _app(request)
    contract = await run_in_threadpool(app.companies.company, company_id)
    company = await run_in_threadpool(app.companies.get_company, company_id)
    return render(request, "companies/sites.html", company=company, sites=list(contract.sites.values()),
                  flash="設置先拠点を登録しました。" if done == "site" else None)


async def _address_post(request: Request, form: Form, data: Any) -> tuple[list[PostalAddress], str | None]:
    """The 住所検索 buttons of a form: (towns to choose from, a note for the page)."""
    action = data.get("action")
    if action == "lookup":
        towns = await run_in_threadpool(look_up_address, request, form)
        if form.errors:
            return [], None
        if towns:
            return towns, "この郵便番号には複数の町域があります。町域を選んでください。"
        return [], "住所を入力しました。番地以降を続けて入力してください。"
    if action == "town":
        towns = await run_in_threadpool(look_up_address, request, form)
        chosen = str(data.get("town", ""))
        names = [town.town for town in towns]
        if chosen in names:
            choose_town(form, chosen, names)
            return [], "町域を入力しました。番地以降を続けて入力してください。"
        form.add("town", "町域を選んでください。")
        return towns, None
    return [], None


@router.get("/companies/{company_id}/sites/new")
async def new_site(request: Request, customer: CustomerDep, company_id: UUID = OwnCompany) -> Response:
    company = await run_in_threadpool(_app(request).companies.get_company, company_id)
    return render(request, "companies/site_form.html", form=Form(order=SITE_FIELDS), company=company, site=None,
                  towns=[], note=None)


@router.post("/companies/{company_id}/sites/new")
async def submit_site(request: Request, customer: CustomerDep, company_id: UUID = OwnCompany) -> Response:
    app = _app(request)
    company = await run_in_threadpool(app.companies.get_company, company_id)
    return await _add_address(
        request, SITE_FORM, {"company": company, "site": None}, f"{PREFIX}/companies/{company_id}/sites/new",
        lambda values: app.companies.add_site(company_id, values),
        lambda site: f"{PREFIX}/sites/{site['site_id']}?done=site",
    )


SITE_FLASH = {
    "site": "設置先拠点を登録しました。続けて障害時連絡先を登録してください（製品の登録には障害時連絡先が必要です）。",
    "changed": "設置先拠点を変更しました。",
    "contact": "障害時連絡先を登録しました。",
    "contact_changed": "障害時連絡先を変更しました。",
}


@router.get("/sites/{site_id}")
async def site_detail(request: Request, customer: CustomerDep, site_id: UUID = OwnSite, done: str = "") -> Response:
    """設置先拠点詳細: the site, its fault contacts, and the way to its ticket list."""
    app = _app(request)
    contract = await run_in_threadpool(app.companies.contract_of_site, site_id)
    site = contract.site(site_id)
    contacts = [c for c in contract.fault_contacts.values() if c.site_id == site_id]
    return render(request, "companies/site_detail.html", company=contract, site=site, contacts=contacts,
                  rows=_rows(SITE_LABELS, {name: getattr(site, name) for name in SITE_FIELDS}),
                  flash=SITE_FLASH.get(done))


async def _site_page(request: Request, site_id: UUID) -> dict[str, Any]:
    site = await run_in_threadpool(_app(request).companies.get_site, site_id)
    return {"company": await run_in_threadpool(_app(request).companies.get_company, site["company_id"]), "site": site}


def _edit_form(request: Request, kind: AddressForm, page: dict[str, Any], current: dict[str, Any]) -> Response:
    form = Form(values=_postal_shown({name: str(current[name]) for name in kind.fields}), order=kind.fields)
    return render(request, kind.template, form=form, towns=[], note=None, **page)


@router.get("/sites/{site_id}/edit")
async def edit_site(request: Request, customer: CustomerDep, site_id: UUID = OwnSite) -> Response:
    page = await _site_page(request, site_id)
    return _edit_form(request, SITE_FORM, page, page["site"])


@router.post("/sites/{site_id}/edit")
async def change_site(request: Request, customer: CustomerDep, site_id: UUID = OwnSite) -> Response:
    page = await _site_page(request, site_id)
    return await _change_address(
        request, SITE_FORM, page, page["site"],
        lambda changes: _app(request).companies.change_site(site_id, changes), f"{PREFIX}/sites/{site_id}?done=changed",
    )


# --- 障害時連絡先 ------------------------------------------------------------------------------

CONTACT_FIELDS = (
    "company", "postal_code", "prefecture", "city", "street", "building", "person", "phone", "mail1", "mail2",
)
CONTACT_LABELS = {
    "company": "会社名", "postal_code": "郵便番号", "prefecture": "都道府県", "city": "市区町村", "street": "番地",
    "building": "建物名", "person": "担当者名", "phone": "電話番号", "mail1": "メール1", "mail2": "メール2",
}


def _contact_values(request: Request, form: Form) -> dict[str, str]:
    return check_address_form(
        request, form, FaultContactCreate, ("company", "prefecture", "city", "street", "building", "person"),
        ("mail1", "mail2"),
    )


CONTACT_FORM = AddressForm("companies/contact_form.html", CONTACT_FIELDS, CONTACT_LABELS, _contact_values,
                           "障害時連絡先 新規登録 入力内容の確認")


@router.get("/sites/{site_id}/contacts/new")
async def new_contact(request: Request, customer: CustomerDep, site_id: UUID = OwnSite) -> Response:
    site = await run_in_threadpool(_app(request).companies.get_site, site_id)
    return render(request, "companies/contact_form.html", form=Form(order=CONTACT_FIELDS), site=site, contact=None,
                  towns=[], note=None)


@router.post("/sites/{site_id}/contacts/new")
async def submit_contact(request: Request, customer: CustomerDep, site_id: UUID = OwnSite) -> Response:
    app = _app(request)
    site = await run_in_threadpool(app.companies.get_site, site_id)
    return await _add_address(
        request, CONTACT_FORM, {"site": site, "contact": None}, f"{PREFIX}/sites/{site_id}/contacts/new",
        lambda values: app.companies.add_fault_contact(site_id, values),
        lambda _: f"{PREFIX}/sites/{site_id}?done=contact",
    )


async def _contact_page(request: Request, contact_id: UUID) -> dict[str, Any]:
    contact = await run_in_threadpool(_app(request).companies.get_fault_contact, contact_id)
    return {"site": await run_in_threadpool(_app(request).companies.get_site, contact["site_id"]), "contact": contact}


@router.get("/contacts/{contact_id}/edit")
async def edit_contact(request: Request, customer: CustomerDep, contact_id: UUID = OwnContact) -> Response:
    page = await _contact_page(request, contact_id)
    return _edit_form(request, CONTACT_FORM, page, page["contact"])


@router.post("/contacts/{contact_id}/edit")
async def change_contact(request: Request, customer: CustomerDep, contact_id: UUID = OwnContact) -> Response:
    page = await _contact_page(request, contact_id)
    return await _change_address(
        request, CONTACT_FORM, page, page["contact"],
        lambda changes: _app(request).companies.change_fault_contact(contact_id, changes),
        f"{PREFIX}/sites/{page['contact']['site_id']}?done=contact_changed",
    )
