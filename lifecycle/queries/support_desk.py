"""The support desk's reads: a site's ticket list (サポートチケット一覧), the call-center
lookup by serial or ticket ID (seed p.21), the entitlement check, and whether a caller is a
party to a contract (SPEC Q-1). All from the read models; statuses as of today in Tokyo."""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import date
from typing import Any
from uuid import UUID

from lifecycle.application.views import registration_answer
from lifecycle.domain.errors import (
    ContractNotFound,
    DomainError,
    InquiryTargetMissing,
    NotRegistered,
    Refusal,
    SerialNotFound,
    SiteNotFound,
    TicketNotRegistered,
)
from lifecycle.domain.periods import ENDING_SOON_DAYS, RenewalPolicy, SupportPeriod, coverage_status
from lifecycle.domain.serials import normalise_serial, normalise_ticket_id
from lifecycle.ports import Clock
from lifecycle.projections.read_models import STRONG, ReadAt, ReadModels
from lifecycle.queries.base import ReadModelQueries

# The ticket list's order: what covers the unit now, what comes next, what is over.
ORDER = {"active": 0, "future": 1, "expired_renewable": 2, "lapsed": 3, "expired": 4}

MAX_ENTITLEMENT_SERIALS = 100


def _day(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


class SupportDesk(ReadModelQueries):
    def __init__(self, read_models: ReadModels, clock: Clock, policy: RenewalPolicy, ending_soon_days: int = ENDING_SOON_DAYS) -> None:
        super().__init__(read_models, clock, policy)
        self.ending_soon_days = ending_soon_days

    def _wait(self, read_at: ReadAt) -> None:
        self.read_models.wait_to_read(read_at, "coverage", "parties", "service_in")

    # --- shaping rows ------------------------------------------------------------------

    def _service_in(self, row: dict[str, Any] | None, today: date) -> dict[str, Any] | None:
        if row is None:
            return None
        deadline = date.fromisoformat(row["deadline"])
        state = "notified" if row["notified_at"] else ("overdue" if today > deadline else "waiting")
        return {"state": state, "deadline": deadline, "notified_at": row["notified_at"]}

    def _terms(self, registration: dict[str, Any], today: date) -> list[dict[str, Any]]:
        terms = self.coverage.query(
            "SELECT * FROM {terms} WHERE registration_id = :r ORDER BY seq", {"r": registration["registration_id"]}
        )
        notices = {
            row["term_key"]: row
            for row in self.service_in_view.query(
                "SELECT * FROM {service_ins} WHERE contract_id = :c AND serial = :s",
                {"c": registration["contract_id"], "s": registration["serial"]},
            )
        }
        last = len(terms)
        current = bool(registration["is_current"])
        rows = []
        for term in terms:
            start, end = date.fromisoformat(term["period_start"]), date.fromisoformat(term["period_end"])
            is_last = term["seq"] == last
            if today < start:
                status = "future"
            elif today <= end:
                status = "active"
            elif is_last:
                status = coverage_status(SupportPeriod(start, end), today, self.policy).value
            else:
                status = "expired"  # a later term continues the coverage
            rows.append(
                {
                    "ticket_id": term["ticket_id"],
                    "kind": term["source"],
                    "model": registration["model"],
                    "serial": registration["serial"],
                    "service": term["service"],
                    "term_years": term["term_years"],
                    "period": {"start": start, "end": end},
                    "status": status,
                    "ending_soon": status == "active" and (end - today).days <= self.ending_soon_days,
                    "service_in": self._service_in(notices.get(term["term_key"]), today),
                    "renewal_open": current and is_last and self.policy.is_open(end, today),
                    "registered_on": _day(term["registered_on"]),
                    "contract_number": registration.get("contract_number"),
                    "site_id": registration["site_id"],
                }
            )
        rows.sort(key=lambda r: (ORDER[r["status"]], r["period"]["start"]))
        return rows

    def _registration(self, row: dict[str, Any], today: date) -> dict[str, Any]:
        end = date.fromisoformat(row["period_end"])
        terms = self._terms(row, today)
        latest = max(terms, key=lambda t: t["period"]["start"]) if terms else None
        answer = registration_answer(
            serial=row["serial"],
            is_bundle=row["kind"] == "bundle",
            ticket_id=row["ticket_id"],
            model=row["model"],
            code_no=row["code_no"],
            service=row["service"],
            term_years=row["term_years"],
            period=SupportPeriod(date.fromisoformat(row["period_start"]), end),
            covered_from=date.fromisoformat(row["covered_from"]),
            registered_on=date.fromisoformat(row["registered_on"]),
            ticket_model=row["ticket_model"],
            option_serials=json.loads(row["option_serials"]),
            renewal_ticket_ids=json.loads(row["renewal_ticket_ids"]),
            site_id=row["site_id"],
            company_id=row["contract_id"],
            contract_number=row.get("contract_number"),
            current=bool(row["is_current"]),
            today=today,
            policy=self.policy,
        )
        return {
            **answer,
            "ending_soon": answer["status"] == "active" and (end - today).days <= self.ending_soon_days,
            "current": bool(row["is_current"]),
            "service_in": latest["service_in"] if latest else None,
            "terms": terms,
        }

    def _with_contracts(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        ids = sorted({r["contract_id"] for r in rows})
        if not ids:
            return rows
        marks = ", ".join(f":c{i}" for i in range(len(ids)))
        found = self.parties.query(
            f"SELECT contract_id, contract_number, name FROM {{contracts}} WHERE contract_id IN ({marks})",
            {f"c{i}": c for i, c in enumerate(ids)},
        )
        by_id = {r["contract_id"]: r for r in found}
        for row in rows:
            contract = by_id.get(row["contract_id"], {})
            row["contract_number"] = contract.get("contract_number")
            row["company_name"] = contract.get("name")
        return rows

    # --- a customer's companies ----------------------------------------------------------

    def companies_of(self, account_id: UUID, read_at: ReadAt = STRONG) -> list[dict[str, Any]]:
        """The account's installation companies with their sites, by contract number."""
        self._wait(read_at)
        contracts = self.parties.query(
            "SELECT contract_id, contract_number, name, account_id FROM {contracts} WHERE account_id = :a "
            "ORDER BY contract_number",
            {"a": str(account_id)},
        )
        if not contracts:
            return []
        marks = ", ".join(f":c{i}" for i in range(len(contracts)))
        sites = self.parties.query(
            f"SELECT site_id, contract_id, name, postal_code, prefecture, city FROM {{sites}} "
            f"WHERE contract_id IN ({marks}) ORDER BY name, site_id",
            {f"c{i}": c["contract_id"] for i, c in enumerate(contracts)},
        )
        by_contract: dict[str, list[dict[str, Any]]] = {}
        for site in sites:
            by_contract.setdefault(site.pop("contract_id"), []).append(site)
        return [
            {
                "company_id": c["contract_id"],
                "contract_number": c["contract_number"],
                "name": c["name"],
                "account_id": c["account_id"],
                "sites": by_contract.get(c["contract_id"], []),
            }
            for c in contracts
        ]

    # --- the site's ticket list ----------------------------------------------------------

    def site_tickets(self, site_id: UUID, read_at: ReadAt = STRONG) -> dict[str, Any]:
        self._wait(read_at)
        site = self.parties.fetch("sites", str(site_id))
        if site is None:
            raise SiteNotFound(f"Site {site_id} is not registered.")
        today = self.today()
        rows = self._with_contracts(
            self.coverage.query("SELECT * FROM {registrations} WHERE site_id = :s ORDER BY position", {"s": str(site_id)})
        )
        registrations = [self._registration(row, today) for row in rows]
        tickets = [term for registration in registrations for term in registration["terms"]]
        tickets.sort(key=lambda t: (ORDER[t["status"]], t["serial"], t["period"]["start"]))
        registrations.sort(key=lambda r: (ORDER.get(r["status"], 9), r["serial"]))
        return {"site_id": site_id, "site_name": site["name"], "registrations": registrations, "tickets": tickets}

    # --- the call-center lookup ------------------------------------------------------------

    def registration(self, serial: str, read_at: ReadAt = STRONG, *, for_customer: str | None = None) -> dict[str, Any]:
        """`for_customer` (an account id): as that customer sees it, earlier registrations of
        the unit by another company only counted (earlier_registrations_elsewhere)."""
        self._wait(read_at)
        looked_up = normalise_serial(serial)
        unit = self.coverage.fetch("units", looked_up)
        if unit is None:
            raise SerialNotFound(f"Serial {looked_up} is not in the shipment history.", kind=Refusal.NOT_FOUND)
        if not unit["registration_id"]:
            raise NotRegistered(f"Unit {looked_up} is not registered.", kind=Refusal.NOT_FOUND)
        return self._detail(unit["registration_id"], looked_up, for_customer)

    def registration_by_ticket(
        self, ticket_id: str, read_at: ReadAt = STRONG, *, for_customer: str | None = None
    ) -> dict[str, Any]:
        self._wait(read_at)
        normalised = normalise_ticket_id(ticket_id)
        terms = self.coverage.query("SELECT registration_id, serial FROM {terms} WHERE ticket_id = :t", {"t": normalised})
        if not terms:
            raise TicketNotRegistered(f"No registration uses ticket {normalised}.", ticket_id=normalised)
        return self._detail(terms[0]["registration_id"], terms[0]["serial"], for_customer)

    def _detail(self, registration_id: str, looked_up: str, for_customer: str | None = None) -> dict[str, Any]:
        row = self.coverage.fetch("registrations", registration_id)
        if row is None:  # pragma: no cover - the unit row names it
            raise NotRegistered(f"Unit {looked_up} is not registered.", kind=Refusal.NOT_FOUND)
        today = self.today()
        self._with_contracts([row])
        detail = self._registration(row, today)
        contract = self.parties.fetch("contracts", row["contract_id"]) or {}
        account = self.parties.fetch("accounts", contract.get("account_id") or "") or {}
        site = self.parties.fetch("sites", row["site_id"]) or {}
        contacts = self.parties.query(
            "SELECT * FROM {contacts} WHERE site_id = :s ORDER BY contact_id", {"s": row["site_id"]}
        )
        earlier = self.coverage.query(
            "SELECT * FROM {registrations} WHERE serial = :s AND registration_id <> :r ORDER BY position DESC",
            {"s": row["serial"], "r": registration_id},
        )
        elsewhere = 0
        if for_customer is not None:
            # Another company's sites and ids are not this customer's to see: only how many.
            own = [r for r in earlier if self._account_of(r["contract_id"]) == for_customer]
            elsewhere, earlier = len(earlier) - len(own), own
        return {
            **detail,
            "looked_up_serial": looked_up,
            "company_name": contract.get("name", ""),
            "user_name": account.get("name"),
            "site": {
                "site_id": row["site_id"],
                "name": site.get("name", ""),
                "address": "".join(site.get(k) or "" for k in ("prefecture", "city", "street", "building")),
                "person": site.get("person", ""),
                "phone": site.get("phone", ""),
            },
            "fault_contacts": [
                {k: c[k] for k in ("person", "company", "phone", "mail1", "mail2")} for c in contacts
            ],
            "earlier_registrations": [
                {
                    "serial": r["serial"],
                    "site_id": r["site_id"],
                    "company_id": r["contract_id"],
                    "period": {"start": _day(r["covered_from"]), "end": _day(r["period_end"])},
                    "registered_on": _day(r["registered_on"]),
                }
                for r in earlier
            ],
            "earlier_registrations_elsewhere": elsewhere,
        }

    def _account_of(self, contract_id: str) -> str | None:
        contract = self.parties.fetch("contracts", contract_id) or {}
        return contract.get("account_id")

    # --- entitlement check -------------------------------------------------------------------

    def check_entitlements(self, serials: list[str], read_at: ReadAt = STRONG) -> dict[str, Any]:
        """Covered / not covered / unknown for each serial, with its end date and service."""
        self._wait(read_at)
        today = self.today()
        normalised: list[str | None] = []
        for given in serials:
            try:
                normalised.append(normalise_serial(given))
            except DomainError:
                normalised.append(None)
        known = sorted({s for s in normalised if s})
        units: dict[str, dict[str, Any]] = {}
        if known:
            marks = ", ".join(f":s{i}" for i in range(len(known)))
            params = {f"s{i}": s for i, s in enumerate(known)}
            rows = self.coverage.query(
                "SELECT u.serial AS unit_serial, u.model AS unit_model, r.* FROM {units} u "
                f"LEFT JOIN {{registrations}} r ON r.registration_id = u.registration_id WHERE u.serial IN ({marks})",
                params,
            )
            units = {row["unit_serial"]: row for row in rows}
        results = []
        for given, serial in zip(serials, normalised, strict=True):
            row = units.get(serial) if serial else None
            if row is None:
                results.append({"serial": given, "normalised_serial": serial, "status": "unknown"})
                continue
            answer: dict[str, Any] = {
                "serial": given,
                "normalised_serial": serial,
                "model": row["unit_model"],
                "status": "not_covered",
                "end": None,
                "service": None,
                "registration_serial": None,
            }
            if row["registration_id"]:
                start, end = date.fromisoformat(row["covered_from"]), date.fromisoformat(row["period_end"])
                answer.update(
                    status="covered" if start <= today <= end else "not_covered",
                    start=start,
                    end=end,
                    service=row["service"],
                    registration_serial=row["serial"],
                )
            results.append(answer)
        return {"checked_on": today, "results": results}

    # --- is the caller a party? (Q-1) ------------------------------------------------------------

    def check_inquiry(
        self,
        *,
        contract_number: str | None = None,
        serial: str | None = None,
        email: str | None = None,
        phone: str | None = None,
        company: str | None = None,
        read_at: ReadAt = STRONG,
    ) -> dict[str, Any]:
        if not (contract_number or serial) or not (email or phone or company):
            raise InquiryTargetMissing("Name the contract or the unit, and who is calling.")
        self._wait(read_at)
        site_ids: list[str] | None = None
        if serial:
            detail = self.registration(serial, ReadAt(eventual=True))  # waited for above
            contract_id, site_ids = str(detail["company_id"]), [str(detail["site_id"])]
        else:
            number = (contract_number or "").strip().upper()
            found = self.parties.query("SELECT contract_id FROM {contracts} WHERE contract_number = :n", {"n": number})
            if not found:
                raise ContractNotFound(f"Contract {number} is not registered.", kind=Refusal.NOT_FOUND)
            contract_id = found[0]["contract_id"]
        contract = self.parties.fetch("contracts", contract_id) or {}
        account = self.parties.fetch("accounts", contract.get("account_id") or "") or {}
        sites = self.parties.query("SELECT * FROM {sites} WHERE contract_id = :c", {"c": contract_id})
        contacts = self.parties.query("SELECT * FROM {contacts} WHERE contract_id = :c", {"c": contract_id})
        if site_ids is not None:
            sites = [s for s in sites if s["site_id"] in site_ids]
            contacts = [c for c in contacts if c["site_id"] in site_ids]
        parties: list[tuple[str, dict[str, list[str]]]] = [
            ("registrant", {"email": [account.get("email")], "phone": [account.get("phone")],
                            "company": [account.get("company_name"), contract.get("name")]}),
            *(("site", {"email": [s["email"]], "phone": [s["phone"]], "company": [contract.get("name")]}) for s in sites),
            *(("fault_contact", {"email": [c["mail1"], c["mail2"]], "phone": [c["phone"]], "company": [c["company"]]})
              for c in contacts),
        ]
        caller = {"email": _email(email), "phone": _phone(phone), "company": _company(company)}
        normalise = {"email": _email, "phone": _phone, "company": _company}
        matched = []
        for role, values in parties:
            for field, given in caller.items():
                if given and given in {normalise[field](v) for v in values[field] if v}:
                    matched.append({"role": role, "field": field})
        unique = [dict(t) for t in dict.fromkeys(tuple(m.items()) for m in matched)]
        return {"contract_number": contract.get("contract_number"), "is_party": bool(unique), "matched": unique}


def _email(text: str | None) -> str:
    return (text or "").strip().casefold()


def _phone(text: str | None) -> str:
    return re.sub(r"\D", "", unicodedata.normalize("NFKC", text or ""))


def _company(text: str | None) -> str:
    folded = unicodedata.normalize("NFKC", text or "").casefold()
    return re.sub(r"[\s・]|株式会社|有限会社|\(株\)|\(有\)", "", folded)

