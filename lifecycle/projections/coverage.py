"""Coverage of units: each registration (a unit covered at a site by a ticket or a bundle)
with its current period, each term of it (the first ticket or bundle, then each renewal:
the rows of the site's ticket list, サポートチケット一覧), and every shipped unit with the
registration that covers it now. The ticket list, the call-center lookup, the entitlement
check and the expiry dashboard read it."""

from __future__ import annotations

import json
from typing import Any

from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.persistence import Tracking

from lifecycle.aggregates.contract import Contract
from lifecycle.aggregates.shipments import Unit
from lifecycle.projections.engine.projection import ReadModelProjection, topics_of
from lifecycle.projections.engine.views import Table

REGISTRATIONS = Table(
    "registrations",
    {
        "registration_id": "text",
        "serial": "text",
        "contract_id": "text",
        "site_id": "text",
        "kind": "text",  # ticket | bundle
        "ticket_id": "text",
        "code_no": "text",
        "model": "text",
        "service": "text",
        "term_years": "integer",
        "period_start": "text",  # ISO dates compare as text in both stores
        "period_end": "text",
        "end_month": "text",  # YYYY-MM of period_end, for the dashboard's grouping
        "covered_from": "text",
        "registered_on": "text",
        "ticket_model": "text",
        "option_serials": "text",  # JSON list
        "renewal_ticket_ids": "text",  # JSON list
        "is_current": "integer",  # 0 once the unit is covered by a later registration
        "terms": "integer",
        "position": "bigint",
    },
    key="registration_id",
    # (is_current, period_end, serial, contract_id) serves the expiry dashboard from the index
    # alone: counts per end date, pages in end order, counts per company.
    indexes=(
        ("site_id",),
        ("is_current", "period_end", "serial", "contract_id"),
        ("contract_id", "is_current", "period_end", "serial"),
        ("serial",),
        # Pages of a list sorted by serial or by model, and its counts filtered by service or model.
        ("is_current", "serial", "period_end"),
        ("is_current", "model", "period_end", "serial", "contract_id"),
        ("is_current", "service", "period_end", "contract_id"),
    ),
)
TERMS = Table(
    "terms",
    {
        "term_key": "text",  # contract:serial:ticket (or "bundle")
        "registration_id": "text",
        "serial": "text",
        "seq": "integer",
        "source": "text",  # new | bundle | renewal
        "ticket_id": "text",
        "service": "text",
        "term_years": "integer",
        "period_start": "text",
        "period_end": "text",
        "registered_on": "text",
        "position": "bigint",
    },
    key="term_key",
    indexes=(("registration_id",), ("ticket_id",)),
)
# How many current registrations end on each day: the expiry dashboard's counts without
# reading every registration (coverage ends on month ends, so there are few rows).
END_COUNTS = Table("end_counts", {"period_end": "text", "count": "integer"}, key="period_end")
# The same per company and end date: the dashboard's counts per company (and its pages sorted
# by company) read these, a row per company and month end, instead of every registration.
COMPANY_END_COUNTS = Table(
    "company_end_counts",
    {"company_end": "text", "period_end": "text", "contract_id": "text", "count": "integer"},
    key="company_end",
    indexes=(("period_end", "contract_id", "count"),),
)
# And per service and model: the counts of a list filtered by either (few rows).
KIND_END_COUNTS = Table(
    "kind_end_counts",
    {"kind_end": "text", "period_end": "text", "service": "text", "model": "text", "count": "integer"},
    key="kind_end",
)
UNITS = Table(
    "units",
    {
        "serial": "text",
        "code_no": "text",
        "model": "text",
        "bundle_serial": "text",
        "registration_id": "text",
    },
    key="serial",
)


_COUNT_KEYS = {t.name: t.key for t in (END_COUNTS, COMPANY_END_COUNTS, KIND_END_COUNTS)}


def term_key(contract_id: Any, serial: str, ticket_id: str | None) -> str:
    return f"{contract_id}:{serial}:{ticket_id or 'bundle'}"


class Coverage(ReadModelProjection):
    name = "coverage"
    tables = (REGISTRATIONS, TERMS, UNITS, END_COUNTS, COMPANY_END_COUNTS, KIND_END_COUNTS)
    revision = 2  # 2: a renewal's registered_on is its Tokyo date (was the UTC one)
    topics = topics_of(
        Unit.Shipped,
        Contract.TicketRegistered,
        Contract.BundleRegistered,
        Contract.Renewed,
        Contract.ServiceLevelUpgraded,
    )

    @singledispatchmethod
    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        """Other events do not change coverage."""

    def _count(self, registration: dict[str, Any], change: int) -> None:
        """Counts a current registration in (+1) or out (-1) of the dashboard's counts."""
        end = registration["period_end"]
        for table, key, fields in (
            ("end_counts", end, {}),
            ("company_end_counts", f"{end}|{registration['contract_id']}", {"contract_id": registration["contract_id"]}),
            ("kind_end_counts", f"{end}|{registration['service']}|{registration['model']}",
             {"service": registration["service"], "model": registration["model"]}),
        ):
            row = self.rows.get(table, key) or {_COUNT_KEYS[table]: key, "period_end": end, **fields, "count": 0}
            row["count"] += change
            self.rows.put(table, row)

    @process_event.register(Unit.Shipped)
    def _shipped(self, e: Unit.Shipped, _: Tracking) -> None:
        self.rows.put(
            "units",
            {"serial": e.serial, "code_no": e.code_no, "model": e.model, "bundle_serial": e.bundle_serial},
        )

    def _registered(self, e: Any, tracking: Tracking, kind: str, options: list[str]) -> None:
        contract_id = str(e.originator_id)
        ticket_id = getattr(e, "ticket_id", None)
        registration_id = f"{e.serial}@{tracking.notification_id}"
        for serial in (e.serial, *options):
            unit = self.rows.get("units", serial) or {"serial": serial}
            previous = unit.get("registration_id")
            if previous and previous != registration_id:
                earlier = self.rows.get("registrations", previous)
                if earlier is not None and earlier["serial"] == serial and earlier["is_current"]:
                    self._count(earlier, -1)
                    earlier["is_current"] = 0
                    self.rows.put("registrations", earlier)
            unit["registration_id"] = registration_id
            self.rows.put("units", unit)
        key = term_key(contract_id, e.serial, ticket_id)
        registration = self.rows.put(
            "registrations",
            {
                "registration_id": registration_id,
                "serial": e.serial,
                "contract_id": contract_id,
                "site_id": str(e.site_id),
                "kind": kind,
                "ticket_id": ticket_id,
                "code_no": e.code_no,
                "model": e.model,
                "service": e.service,
                "term_years": e.term_years,
                "period_start": e.period.start.isoformat(),
                "period_end": e.period.end.isoformat(),
                "end_month": e.period.end.isoformat()[:7],
                "covered_from": e.period.start.isoformat(),
                "registered_on": e.registered_on.isoformat(),
                "ticket_model": getattr(e, "ticket_model", None),
                "option_serials": json.dumps(options),
                "renewal_ticket_ids": "[]",
                "is_current": 1,
                "terms": 1,
                "position": tracking.notification_id,
            },
        )
        self._count(registration, +1)
        self.rows.put(
            "terms",
            {
                "term_key": key,
                "registration_id": registration_id,
                "serial": e.serial,
                "seq": 1,
                "source": "new" if kind == "ticket" else "bundle",
                "ticket_id": ticket_id,
                "service": e.service,
                "term_years": e.term_years,
                "period_start": e.period.start.isoformat(),
                "period_end": e.period.end.isoformat(),
                "registered_on": e.registered_on.isoformat(),
                "position": tracking.notification_id,
            },
        )

    @process_event.register(Contract.TicketRegistered)
    def _ticket_registered(self, e: Contract.TicketRegistered, tracking: Tracking) -> None:
        self._registered(e, tracking, "ticket", [])

    @process_event.register(Contract.BundleRegistered)
    def _bundle_registered(self, e: Contract.BundleRegistered, tracking: Tracking) -> None:
        self._registered(e, tracking, "bundle", [option.serial for option in e.options])

    def _registration_of(self, e: Any) -> dict[str, Any] | None:
        unit = self.rows.get("units", e.serial)
        if unit is None or not unit.get("registration_id"):
            return None
        registration = self.rows.get("registrations", unit["registration_id"])
        if registration is None or registration["contract_id"] != str(e.originator_id):
            return None
        return registration

    @process_event.register(Contract.Renewed)
    def _renewed(self, e: Contract.Renewed, tracking: Tracking) -> None:
        registration = self._registration_of(e)
        if registration is None:
            return
        if registration["is_current"]:
            self._count(registration, -1)
        renewals = [*json.loads(registration["renewal_ticket_ids"]), e.ticket_id]
        registration.update(
            service=e.service,
            term_years=e.term_years,
            period_start=e.period.start.isoformat(),
            period_end=e.period.end.isoformat(),
            end_month=e.period.end.isoformat()[:7],
            renewal_ticket_ids=json.dumps(renewals),
            terms=registration["terms"] + 1,
        )
        self.rows.put("registrations", registration)
        if registration["is_current"]:
            self._count(registration, +1)
        self.rows.put(
            "terms",
            {
                "term_key": term_key(e.originator_id, e.serial, e.ticket_id),
                "registration_id": registration["registration_id"],
                "serial": e.serial,
                "seq": registration["terms"],
                "source": "renewal",
                "ticket_id": e.ticket_id,
                "service": e.service,
                "term_years": e.term_years,
                "period_start": e.period.start.isoformat(),
                "period_end": e.period.end.isoformat(),
                "registered_on": e.renewed_on.isoformat(),  # the Tokyo date, not the UTC one
                "position": tracking.notification_id,
            },
        )

    @process_event.register(Contract.ServiceLevelUpgraded)
    def _upgraded(self, e: Contract.ServiceLevelUpgraded, _: Tracking) -> None:
        registration = self._registration_of(e)
        if registration is None:
            return
        if registration["is_current"]:
            self._count(registration, -1)
        registration["service"] = e.service
        self.rows.put("registrations", registration)
        if registration["is_current"]:
            self._count(registration, +1)
