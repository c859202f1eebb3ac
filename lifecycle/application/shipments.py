"""Recording the shipment history: shipped units (with bundles) and sold tickets."""

from __future__ import annotations

import re
from dataclasses import asdict
from datetime import date
from typing import TYPE_CHECKING, Any

from lifecycle.aggregates.shipments import BundleTerms, OptionUnit, Ticket, Unit
from lifecycle.application.commands import Answer, IdempotencyKey
from lifecycle.application.views import fields_of
from lifecycle.domain.errors import (
    InvalidTicketId,
    InvalidTicketTerm,
    NotInShipmentHistory,
    SerialNotFound,
    ShipmentAlreadyRecorded,
    TicketAlreadyRecorded,
)
from lifecycle.domain.limits import check_date_in_range
from lifecycle.domain.serials import normalise_code_no, normalise_serial, normalise_ticket_id

if TYPE_CHECKING:
    from lifecycle.application.app import LifecycleApplication

TICKET_KINDS = ("new", "renewal")


def unit_view(unit: Unit) -> dict[str, Any]:
    return {
        **fields_of(unit, "serial", "code_no", "model", "shipped_on"),
        "bundle": asdict(unit.bundle) if unit.bundle else None,
        "bundle_serial": unit.bundle_serial,
    }


class ShipmentHistory:
    """The vendor's shipment history: recording units and tickets, and checking
    registrations against it (E4, E5)."""

    def __init__(self, app: LifecycleApplication) -> None:
        self.app = app

    def record_shipment(
        self,
        serial: str,
        code_no: str,
        model: str,
        shipped_on: date,
        bundle: dict[str, Any] | None = None,
        idempotency: IdempotencyKey | None = None,
    ) -> Answer:
        def decide():  # noqa: ANN202
            main_serial = normalise_serial(serial)
            check_date_in_range(shipped_on, "shipped_on")
            terms = None
            if bundle is not None:
                self.app.terms.check_term(bundle["term_years"])
                check_date_in_range(bundle["sold_on"], "bundle.sold_on")
                options = tuple(
                    OptionUnit(normalise_serial(o["serial"]), normalise_code_no(o["code_no"]), o["model"])
                    for o in bundle.get("options", ())
                )
                terms = BundleTerms(
                    service=bundle["service"],
                    term_years=bundle["term_years"],
                    sold_on=bundle["sold_on"],
                    ticket_model=bundle["ticket_model"],
                    options=options,
                )
            units = [Unit(main_serial, normalise_code_no(code_no), model, shipped_on, terms, None)]
            for option in terms.options if terms else ():
                units.append(Unit(option.serial, option.code_no, option.model, shipped_on, None, main_serial))
            serials = [u.serial for u in units]
            if len(set(serials)) != len(serials):
                raise ShipmentAlreadyRecorded("A serial appears twice in this shipment.", serials=serials)
            recorded = [u.serial for u in units if self.app.exists(u.id)]
            if recorded:
                raise ShipmentAlreadyRecorded(
                    f"Already in the shipment history: {', '.join(recorded)}.", serials=recorded
                )
            return unit_view(units[0]), units

        return self.app.execute(decide, idempotency)

    def record_ticket_sale(
        self,
        ticket_id: str,
        verification_code: str,
        code_no: str,
        service: str,
        term_years: int,
        kind: str,
        sold_on: date,
        idempotency: IdempotencyKey | None = None,
    ) -> Answer:
        def decide():  # noqa: ANN202
            self.app.terms.check_term(term_years)
            check_date_in_range(sold_on, "sold_on")  # the period is computed from it (P-1)
            if kind not in TICKET_KINDS:
                raise InvalidTicketTerm(f"A ticket is 'new' or 'renewal', not {kind!r}.")
            normalised_id = normalise_ticket_id(ticket_id)
            if not re.fullmatch(r"\d{8}", normalised_id):
                raise InvalidTicketId(f"{ticket_id!r} is not an 8-digit ticket ID.")
            ticket = Ticket(
                ticket_id=normalised_id,
                verification_code=verification_code.strip(),
                code_no=normalise_code_no(code_no),
                service=service,
                term_years=term_years,
                kind=kind,
                sold_on=sold_on,
            )
            if self.app.exists(ticket.id):
                raise TicketAlreadyRecorded(f"Ticket {ticket.ticket_id} is already recorded.")
            return ticket_view(ticket), [ticket]

        return self.app.execute(decide, idempotency)

    # --- checks against the shipment history (E4, E5) --------------------------------

    def shipped_unit(self, serial: str, **refusal: Any) -> Unit:
        unit = self.app.load(Unit.create_id(serial), Unit)
        if unit is None:
            raise SerialNotFound(f"Serial {serial} is not in the shipment history.", serial=serial, **refusal)
        return unit

    def sold_ticket(self, ticket_id: str, verification_code: str) -> Ticket:
        ticket = self.app.load(Ticket.create_id(normalise_ticket_id(ticket_id)), Ticket)
        if ticket is None:
            raise NotInShipmentHistory(f"Ticket {ticket_id} is not in the shipment history.")
        ticket.check_verification_code(verification_code)
        return ticket


def ticket_view(ticket: Ticket) -> dict[str, Any]:
    return {
        **fields_of(ticket, "ticket_id", "code_no", "service", "term_years", "kind", "sold_on"),
        "registered_serial": ticket.used_for,
    }
