"""What commands and queries answer: plain dicts of the domain's words."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date
from typing import Any

from lifecycle.aggregates.accounts import Account
from lifecycle.aggregates.contract import Contract, FaultContact, Registration, Site
from lifecycle.domain.periods import RenewalPolicy, SupportPeriod, coverage_status


def fields_of(source: object, *names: str) -> dict[str, Any]:
    """The named attributes of `source` under their own names, in the order given."""
    return {name: getattr(source, name) for name in names}


def period_view(period: SupportPeriod) -> dict[str, date]:
    return {"start": period.start, "end": period.end}


def account_view(account: Account) -> dict[str, Any]:
    return {
        "account_id": account.id,
        **fields_of(account, "email", "name", "company_name", "phone", "status"),
        # the address waiting for its confirmation mail; Q17: set the password again.
        "pending_email": (account.email_change() or {}).get("email"),
        "password_reset_required": account.password_reset_required,
    }


def company_view(contract: Contract) -> dict[str, Any]:
    return {
        "company_id": contract.id,
        **fields_of(contract, "contract_number", "name", "account_id"),
        "site_ids": [site.site_id for site in contract.sites.values()],
    }


def site_view(contract: Contract, site: Site) -> dict[str, Any]:
    view = asdict(site)
    view["company_id"] = contract.id
    view["contract_number"] = contract.contract_number
    view["fault_contact_ids"] = [c.contact_id for c in contract.fault_contacts_of(site.site_id)]
    return view


def fault_contact_view(contact: FaultContact) -> dict[str, Any]:
    return asdict(contact)


def registration_answer(
    *,
    serial: str,
    is_bundle: bool,
    ticket_id: str | None,
    model: str,
    code_no: str,
    service: str,
    term_years: int,
    period: SupportPeriod,
    covered_from: date,
    registered_on: date,
    ticket_model: str | None,
    option_serials: list[str],
    renewal_ticket_ids: list[str],
    site_id: Any,
    company_id: Any,
    contract_number: str | None,
    current: bool,
    today: date,
    policy: RenewalPolicy,
) -> dict[str, Any]:
    """A registration as every answer shows it (a command's, the ticket list's, the call
    center's), whether it comes from the contract or from the read models."""
    opens, closes = policy.window(period.end)
    return {
        "serial": serial,
        "kind": "bundle" if is_bundle else "ticket",
        "ticket_id": ticket_id,
        "model": model,
        "code_no": code_no,
        "service": service,
        "term_years": term_years,
        "period": period_view(period),
        "status": coverage_status(SupportPeriod(covered_from, period.end), today, policy).value,
        "renewal_open": current and policy.is_open(period.end, today),
        "renewal_window": {"opens": opens, "closes": closes},
        "registered_on": registered_on,
        "ticket_model": ticket_model,
        "option_serials": option_serials,
        "renewal_ticket_ids": renewal_ticket_ids,
        "site_id": site_id,
        "company_id": company_id,
        "contract_number": contract_number,
    }


def registration_view(
    contract: Contract, registration: Registration, today: date, policy: RenewalPolicy
) -> dict[str, Any]:
    assert registration.covered_from is not None
    return registration_answer(
        **fields_of(registration, "serial", "is_bundle", "ticket_id", "model", "code_no", "service", "term_years"),
        **fields_of(registration, "period", "covered_from", "registered_on", "ticket_model"),
        option_serials=[option.serial for option in registration.options],
        renewal_ticket_ids=list(registration.renewal_ticket_ids),
        site_id=registration.site_id,
        company_id=contract.id,
        contract_number=contract.contract_number,
        current=True,
        today=today,
        policy=policy,
    )
