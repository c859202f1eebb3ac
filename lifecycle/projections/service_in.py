"""Service-in of each registration (SPEC M-1): every new ticket, bundle or renewal waits
for its completion mail, due no later than the 4th business day counting from the day after
registration; it leaves the waiting list when ServiceInNotified is recorded."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.persistence import Tracking

from lifecycle.aggregates.contract import Contract
from lifecycle.domain.business_calendar import JAPAN, BusinessCalendar
from lifecycle.domain.notifications import service_in_deadline
from lifecycle.projections.coverage import term_key
from lifecycle.projections.engine.projection import ReadModelProjection, topics_of
from lifecycle.projections.engine.views import Table

SERVICE_INS = Table(
    "service_ins",
    {
        "term_key": "text",
        "contract_id": "text",
        "serial": "text",
        "site_id": "text",
        "ticket_id": "text",
        "source": "text",  # new | bundle | renewal
        "registered_on": "text",
        "period_start": "text",
        "period_end": "text",
        "deadline": "text",
        "notified_at": "text",  # NULL while waiting
        "position": "bigint",
    },
    key="term_key",
    # Pages of the waiting list in each order, and each company's or site's waiting terms.
    indexes=(
        ("notified_at", "deadline", "position"),
        ("notified_at", "registered_on", "position"),
        ("contract_id", "notified_at", "deadline", "position"),
        ("site_id", "notified_at", "deadline", "position"),
    ),
)
# How many terms wait per deadline: the dashboard's counts without reading every waiting term.
WAITING_COUNTS = Table("waiting_counts", {"deadline": "text", "count": "integer"}, key="deadline")
# Per unit in a contract: its site, and which of its terms still wait, oldest first.
WAITING = Table("waiting", {"unit_key": "text", "site_id": "text", "term_keys": "text"}, key="unit_key")

class ServiceIn(ReadModelProjection):
    name = "service_in"
    tables = (SERVICE_INS, WAITING, WAITING_COUNTS)
    topics = topics_of(
        Contract.TicketRegistered, Contract.BundleRegistered, Contract.Renewed, Contract.ServiceInNotified
    )
    calendar: BusinessCalendar = JAPAN

    @singledispatchmethod
    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        """Other events do not change service-in."""

    def _waiting(self, contract_id: str, serial: str) -> dict[str, Any]:
        unit_key = f"{contract_id}:{serial}"
        return self.rows.get("waiting", unit_key) or {"unit_key": unit_key, "term_keys": "[]"}

    def _count_waiting(self, deadline: str, change: int) -> None:
        row = self.rows.get("waiting_counts", deadline) or {"deadline": deadline, "count": 0}
        row["count"] += change
        self.rows.put("waiting_counts", row)

    def _registered(self, e: Any, tracking: Tracking, source: str, registered_on: date, site_id: Any) -> None:
        contract_id = str(e.originator_id)
        ticket_id = getattr(e, "ticket_id", None)
        key = term_key(contract_id, e.serial, ticket_id)
        # A term is registered once (its ticket is used once; a bundle covers its unit once).
        row = self.rows.put(
            "service_ins",
            {
                "term_key": key,
                "contract_id": contract_id,
                "serial": e.serial,
                "site_id": str(site_id) if site_id else None,
                "ticket_id": ticket_id,
                "source": source,
                "registered_on": registered_on.isoformat(),
                "period_start": e.period.start.isoformat(),
                "period_end": e.period.end.isoformat(),
                "deadline": service_in_deadline(registered_on, self.calendar).isoformat(),
                "notified_at": None,
                "position": tracking.notification_id,
            },
        )
        self._count_waiting(row["deadline"], +1)
        waiting = self._waiting(contract_id, e.serial)
        waiting["term_keys"] = json.dumps([*json.loads(waiting["term_keys"]), key])
        waiting["site_id"] = str(site_id) if site_id else waiting.get("site_id")
        self.rows.put("waiting", waiting)

    @process_event.register(Contract.TicketRegistered)
    def _ticket_registered(self, e: Contract.TicketRegistered, tracking: Tracking) -> None:
        self._registered(e, tracking, "new", e.registered_on, e.site_id)

    @process_event.register(Contract.BundleRegistered)
    def _bundle_registered(self, e: Contract.BundleRegistered, tracking: Tracking) -> None:
        self._registered(e, tracking, "bundle", e.registered_on, e.site_id)

    @process_event.register(Contract.Renewed)
    def _renewed(self, e: Contract.Renewed, tracking: Tracking) -> None:
        # A renewal stays at the registration's site.
        site_id = self._waiting(str(e.originator_id), e.serial).get("site_id")
        self._registered(e, tracking, "renewal", e.renewed_on, site_id)

    @process_event.register(Contract.ServiceInNotified)
    def _notified(self, e: Contract.ServiceInNotified, _: Tracking) -> None:
        """The completion mail of the unit's waiting term with the mailed period (the
        oldest waiting one if none matches)."""
        contract_id = str(e.originator_id)
        waiting = self._waiting(contract_id, e.serial)
        keys = json.loads(waiting["term_keys"])
        period = getattr(e, "period", None)
        rows = [(key, self.rows.get("service_ins", key)) for key in keys]
        rows = [(key, row) for key, row in rows if row is not None]
        if not rows:
            return
        matching = [
            (key, row) for key, row in rows if period is not None and row["period_end"] == period.end.isoformat()
        ]
        key, row = (matching or rows)[0]
        sent_at = getattr(e, "sent_at", None) or e.timestamp
        if row["notified_at"] is None:
            self._count_waiting(row["deadline"], -1)
        row["notified_at"] = sent_at.isoformat()
        self.rows.put("service_ins", row)
        keys.remove(key)
        waiting["term_keys"] = json.dumps(keys)
        self.rows.put("waiting", waiting)
