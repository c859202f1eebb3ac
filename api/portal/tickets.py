"""サポートチケット一覧 of a site and the registration screens (seed p.16–33): チケット登録,
バンドル登録 and 更新, each 入力 → 確認 → 完了.

Every screen calls the application as the API does, behind the API's owner checks
(api.access): another customer's site or unit is the not-found page. The confirmation screen
shows what the command would register (Registrations.preview_*); its 登録する / 更新する posts
the same values again with an idempotency key made for that screen, so a double submit
registers once and shows the same completion page."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import Response

from api.access import owns_registration, owns_site
from api.portal import ticket_forms
from api.portal.ticket_forms import BUNDLE_FIELDS, RENEWAL_FIELDS, TICKET_FIELDS, Checked, typed
from api.portal.web import PREFIX, CustomerDep, PortalRoute, owned, redirect, render
from lifecycle.application import IdempotencyKey, LifecycleApplication
from lifecycle.domain.errors import DomainError, NotRegistered, Refusal, RenewalWindowClosed
from lifecycle.domain.notifications import service_in_deadline

router = APIRouter(prefix=PREFIX, route_class=PortalRoute)
OwnSite = Depends(owned(owns_site, "site_id"))

STATUS_JA = {
    "active": "有効",
    "future": "開始前",
    "expired_renewable": "期間満了（更新できます）",
    "lapsed": "期間満了",
    "expired": "期間満了",
}
SERVICE_IN_JA = {"waiting": "サービスイン待ち", "notified": "サービスイン済み", "overdue": "サービスイン待ち（遅延）"}


def _app(request: Request) -> LifecycleApplication:
    return request.app.state.runtime.application


def _site(request: Request, site_id: UUID) -> tuple[Any, Any]:
    """The site (its ownership checked by OwnSite) and its company's contract."""
    contract = _app(request).companies.contract_of_site(site_id)
    return contract, contract.site(site_id)


def _own_registration(request: Request, account_id: str | None, serial: str) -> dict[str, Any]:
    """The unit's registration as the ticket list shows it, when it is the customer's."""
    app = _app(request)
    owns_registration(app, {"serial": serial}, None, str(account_id))
    if app.registrations.contract_covering(serial) is None:
        raise NotRegistered(f"Unit {serial} is not registered.", kind=Refusal.NOT_FOUND)
    return request.app.state.runtime.support_desk.registration(serial)


def _idempotency(account_id: str | None, action: str, key: str, *values: str) -> IdempotencyKey | None:
    """The confirmation screen's key: one registration per screen, however often it is posted."""
    if not key:
        return None
    fingerprint = hashlib.sha256("\n".join(values).encode("utf-8", "surrogatepass")).hexdigest()
    return IdempotencyKey(key[:100], fingerprint, scope=f"account:{account_id} portal {action}")


# --- サポートチケット一覧 ---------------------------------------------------------------------


@router.get("/sites/{site_id}/tickets")
def site_tickets(request: Request, customer: CustomerDep, site_id: UUID = OwnSite) -> Response:
    contract, site = _site(request, site_id)
    listing = request.app.state.runtime.support_desk.site_tickets(site_id)
    return render(request, "tickets/list.html", contract=contract, site=site,
                  registrations=listing["registrations"], status_ja=STATUS_JA, service_in_ja=SERVICE_IN_JA)


# --- チケット登録 -------------------------------------------------------------------------


def _ticket_input(request: Request, contract: Any, site: Any, form: Checked) -> Response:
    return render(request, "tickets/ticket_input.html", status_code=422 if form.errors else 200,
                  contract=contract, site=site, form=form)


@router.get("/sites/{site_id}/tickets/new")
def ticket_form(request: Request, customer: CustomerDep, site_id: UUID = OwnSite) -> Response:
    contract, site = _site(request, site_id)
    return _ticket_input(request, contract, site, typed(TICKET_FIELDS))


@router.post("/sites/{site_id}/tickets/new")
def ticket_check(
    request: Request, customer: CustomerDep, site_id: UUID = OwnSite,
    ticket_id: Annotated[str, Form()] = "", verification_code: Annotated[str, Form()] = "",
    serial: Annotated[str, Form()] = "",
) -> Response:
    contract, site = _site(request, site_id)
    form = ticket_forms.check_ticket(_app(request), site_id, ticket_id, verification_code, serial)
    if not form.ok:
        return _ticket_input(request, contract, site, form)
    return _confirmation(request, "tickets/ticket_confirm.html", form, contract=contract, site=site)


@router.post("/sites/{site_id}/tickets/confirm")
def ticket_register(
    request: Request, customer: CustomerDep, site_id: UUID = OwnSite,
    ticket_id: Annotated[str, Form()] = "", verification_code: Annotated[str, Form()] = "",
    serial: Annotated[str, Form()] = "", confirm_key: Annotated[str, Form()] = "",
) -> Response:
    contract, site = _site(request, site_id)
    form = typed(TICKET_FIELDS, ticket_id=ticket_id, verification_code=verification_code, serial=serial)
    values = [form.values[name] for name in TICKET_FIELDS]
    key = _idempotency(customer.account_id, f"ticket {site_id}", confirm_key, *values)
    return _confirmed(form, lambda: _app(request).registrations.register_ticket(site_id, *values, key),
                      lambda: _ticket_input(request, contract, site, form), "registered")


def _confirmation(request: Request, template: str, form: Checked, **context: Any) -> Response:
    """確認: what the command would register, and a key that makes its 登録する register once."""
    return render(request, template, form=form, answer=form.answer, confirm_key=secrets.token_urlsafe(16),
                  service_in_by=service_in_deadline(_app(request).today()), **context)


def _confirmed(form: Checked, command: Callable[[], dict[str, Any]], again: Callable[[], Response],
               what: str) -> Response:
    """登録する / 更新する: the completion page, or the input page again with the refusal at its field."""
    try:
        answer = command()
    except DomainError as error:
        form.refuse(error)
        return again()
    # See Other: reloading the completion page registers nothing again. Its read is strong
    # (the support desk waits for the read models to reach what was committed before it).
    return redirect(f"{PREFIX}/registrations/{answer['serial']}/{what}")


# --- バンドル登録 -------------------------------------------------------------------------


def _bundle_input(request: Request, contract: Any, site: Any, form: Checked, *, extra: int = 0,
                  focus_last: bool = False) -> Response:
    """As many option fields as the unit has options (at least one, and as many as typed),
    plus `extra` empty ones."""
    typed_options = form.options
    models = ticket_forms.option_models(_app(request), form.values["serial"]) if form.values.get("serial") else []
    count = max(1, len(models), len(typed_options)) + extra
    form.options = [*typed_options, *([""] * (count - len(typed_options)))]
    return render(request, "tickets/bundle_input.html", status_code=422 if form.errors else 200,
                  contract=contract, site=site, form=form, focus_last_option=focus_last, option_models=models)


@router.get("/sites/{site_id}/bundles/new")
def bundle_form(request: Request, customer: CustomerDep, site_id: UUID = OwnSite) -> Response:
    contract, site = _site(request, site_id)
    return _bundle_input(request, contract, site, typed(BUNDLE_FIELDS))


@router.post("/sites/{site_id}/bundles/new")
def bundle_check(
    request: Request, customer: CustomerDep, site_id: UUID = OwnSite,
    serial: Annotated[str, Form()] = "", option_serial: Annotated[list[str] | None, Form()] = None,
    action: Annotated[str, Form()] = "check",
) -> Response:
    contract, site = _site(request, site_id)
    if action == "add_option":  # one more field, without JavaScript: the form comes back with it
        form = typed(BUNDLE_FIELDS, serial=serial)
        form.options = [s.strip() for s in option_serial or []]
        return _bundle_input(request, contract, site, form, extra=1, focus_last=True)
    form = ticket_forms.check_bundle(_app(request), site_id, serial, list(option_serial or []))
    if not form.ok:
        return _bundle_input(request, contract, site, form)
    assert form.answer is not None
    unit = _app(request).shipments.shipped_unit(form.answer["serial"])
    option_models = {o.serial: o.model for o in (unit.bundle.options if unit.bundle else ())}
    return _confirmation(request, "tickets/bundle_confirm.html", form, contract=contract, site=site,
                         option_models=option_models, typed_options=[s for s in form.options if s])


@router.post("/sites/{site_id}/bundles/confirm")
def bundle_register(
    request: Request, customer: CustomerDep, site_id: UUID = OwnSite,
    serial: Annotated[str, Form()] = "", option_serial: Annotated[list[str] | None, Form()] = None,
    confirm_key: Annotated[str, Form()] = "",
) -> Response:
    contract, site = _site(request, site_id)
    form = typed(BUNDLE_FIELDS, serial=serial)
    form.options = [s.strip() for s in option_serial or [] if s.strip()]
    key = _idempotency(customer.account_id, f"bundle {site_id}", confirm_key, form.values["serial"], *form.options)
    return _confirmed(form, lambda: _app(request).registrations.register_bundle(site_id, form.values["serial"],
                                                                                form.options, key),
                      lambda: _bundle_input(request, contract, site, form), "registered")


# --- 更新 -------------------------------------------------------------------------------


def _renewal_context(request: Request, customer: Any, serial: str) -> dict[str, Any]:
    registration = _own_registration(request, customer.account_id, serial)
    contract, site = _site(request, UUID(str(registration["site_id"])))
    return {"contract": contract, "site": site, "registration": registration}


def _window_closed(registration: dict[str, Any]) -> RenewalWindowClosed | None:
    """R-2: the refusal the command would give, before anything is typed."""
    if registration["renewal_open"]:
        return None
    window = registration["renewal_window"]
    return RenewalWindowClosed(
        f"Unit {registration['serial']} can be renewed from {window['opens']} to {window['closes']}."
    )


def _renewal_input(request: Request, context: dict[str, Any], form: Checked) -> Response:
    closed = _window_closed(context["registration"])
    if closed is not None:
        form.refuse(closed, "")
    status = 409 if closed is not None else 422 if form.errors else 200
    return render(request, "tickets/renewal_input.html", status_code=status, form=form,
                  closed=closed is not None, **context)


@router.get("/registrations/{serial}/renewal")
def renewal_form(request: Request, serial: str, customer: CustomerDep) -> Response:
    return _renewal_input(request, _renewal_context(request, customer, serial), typed(RENEWAL_FIELDS))


@router.post("/registrations/{serial}/renewal")
def renewal_check(
    request: Request, serial: str, customer: CustomerDep,
    ticket_id: Annotated[str, Form()] = "", verification_code: Annotated[str, Form()] = "",
) -> Response:
    context = _renewal_context(request, customer, serial)
    form = ticket_forms.check_renewal(_app(request), serial, ticket_id, verification_code)
    if not form.ok:
        return _renewal_input(request, context, form)
    return _confirmation(request, "tickets/renewal_confirm.html", form, **context)


@router.post("/registrations/{serial}/renewal/confirm")
def renewal_register(
    request: Request, serial: str, customer: CustomerDep,
    ticket_id: Annotated[str, Form()] = "", verification_code: Annotated[str, Form()] = "",
    confirm_key: Annotated[str, Form()] = "",
) -> Response:
    context = _renewal_context(request, customer, serial)
    form = typed(RENEWAL_FIELDS, ticket_id=ticket_id, verification_code=verification_code)
    values = [form.values[name] for name in RENEWAL_FIELDS]
    key = _idempotency(customer.account_id, f"renewal {serial}", confirm_key, *values)
    return _confirmed(form, lambda: _app(request).registrations.renew(serial, *values, key),
                      lambda: _renewal_input(request, context, form), "renewed")


# --- 登録完了 / 更新完了 ----------------------------------------------------------------------


@router.get("/registrations/{serial}/registered")
def registered(request: Request, serial: str, customer: CustomerDep) -> Response:
    return _completion(request, serial, customer, renewed=False)


@router.get("/registrations/{serial}/renewed")
def renewed(request: Request, serial: str, customer: CustomerDep) -> Response:
    return _completion(request, serial, customer, renewed=True)


def _completion(request: Request, serial: str, customer: Any, *, renewed: bool) -> Response:
    """The support period and the latest day of the service-in mail (M-1), as the read
    models have them: the term just registered is the registration's latest."""
    context = _renewal_context(request, customer, serial)
    terms = context["registration"]["terms"]
    latest = max(terms, key=lambda term: term["period"]["start"]) if terms else None
    service_in = (latest or {}).get("service_in") or context["registration"].get("service_in")
    return render(request, "tickets/done.html", renewed=renewed, latest=latest, service_in=service_in, **context)
