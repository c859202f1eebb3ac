"""Registering tickets and bundles at a site, and renewing them (T-*, P-*, B-*, R-*).

Each command saves, in one transaction, the contract's event with the ticket marked used and
the unit(s) marked covered: two concurrent registrations of one ticket or one unit cannot
both succeed, because the second save finds those aggregates at a newer version.
"""

from __future__ import annotations

from uuid import UUID

from lifecycle.aggregates.contract import Contract, Registration
from lifecycle.aggregates.index import site_key
from lifecycle.aggregates.shipments import Ticket, Unit
from lifecycle.application.base import Answer, IdempotencyKey
from lifecycle.application.contracts import ContractCommands
from lifecycle.application.shipments import ShipmentCommands
from lifecycle.application.views import registration_view
from lifecycle.domain.errors import (
    BundleOptionsInvalid,
    BundleOptionsMissing,
    NotABundle,
    NotRegistered,
    ProductCodeMismatch,
    Refusal,
    TicketKindMismatch,
    TicketNotEligible,
)
from lifecycle.domain.serials import normalise_serial, same_product


def check_ticket_fits_unit(ticket: Ticket, unit: Unit) -> None:
    """T-4: the first 5 digits of the ticket's and the unit's code No must agree."""
    if not same_product(ticket.code_no, unit.code_no):
        raise ProductCodeMismatch(
            f"Ticket {ticket.ticket_id} (code No {ticket.code_no}) is for another product than "
            f"unit {unit.serial} (code No {unit.code_no}).",
            ticket_code_no=ticket.code_no,
            unit_code_no=unit.code_no,
        )


class RegistrationCommands(ContractCommands, ShipmentCommands):
    def _view(self, contract: Contract, registration: Registration) -> Answer:
        return registration_view(contract, registration, self.today(), self.terms.renewal)

    def register_ticket(
        self,
        site_id: UUID,
        ticket_id: str,
        verification_code: str,
        serial: str,
        idempotency: IdempotencyKey | None = None,
    ) -> Answer:
        def decide():  # noqa: ANN202
            contract = self.contract_of_site(site_id)
            contract.check_site_ready_for_registration(site_id)
            unit = self.shipped_unit(normalise_serial(serial))
            ticket = self.sold_ticket(ticket_id, verification_code)
            if ticket.kind != "new":
                raise TicketKindMismatch(f"Ticket {ticket.ticket_id} is a renewal ticket, not a new one.")
            if not self.terms.is_new_ticket_service(ticket.service, ticket.term_years):
                raise TicketNotEligible(
                    f"Ticket {ticket.ticket_id} ({ticket.service}, {ticket.term_years} years) cannot "
                    "start a new coverage."
                )
            check_ticket_fits_unit(ticket, unit)
            today = self.today()
            period = self.terms.first_period(ticket.sold_on, ticket.term_years)
            ticket.use(unit.serial, contract.id)
            unit.cover(contract.id, unit.serial, period.end, today, self.terms.renewal)
            contract.register_ticket(
                site_id=site_id,
                serial=unit.serial,
                ticket_id=ticket.ticket_id,
                code_no=unit.code_no,
                model=unit.model,
                service=ticket.service,
                term_years=ticket.term_years,
                sold_on=ticket.sold_on,
                period=period,
                registered_on=today,
            )
            return self._view(contract, contract.registrations[unit.serial]), [contract, ticket, unit]

        return self._execute(decide, idempotency, serialize_on=self._indexed(site_key(site_id)))

    def register_bundle(
        self,
        site_id: UUID,
        serial: str,
        option_serials: list[str],
        idempotency: IdempotencyKey | None = None,
    ) -> Answer:
        def decide():  # noqa: ANN202
            contract = self.contract_of_site(site_id)
            contract.check_site_ready_for_registration(site_id)
            unit = self.shipped_unit(normalise_serial(serial))
            if unit.bundle is None:
                raise NotABundle(f"Unit {unit.serial} is not a maintenance bundle unit.", serial=unit.serial)
            bundle = unit.bundle
            given = [normalise_serial(s) for s in option_serials]
            expected = bundle.option_serials
            missing = [s for s in expected if s not in given]
            wrong = [s for s in given if s not in expected]
            if wrong:
                raise BundleOptionsInvalid(
                    f"Not options of bundle {unit.serial}: {', '.join(wrong)}.", serials=wrong
                )
            if missing:
                raise BundleOptionsMissing(
                    f"Bundle {unit.serial} needs the serials of its options: {', '.join(missing)}.",
                    serials=missing,
                )
            today = self.today()
            period = self.terms.first_period(bundle.sold_on, bundle.term_years)
            units = [unit, *(self.shipped_unit(s) for s in expected)]
            for covered in units:
                covered.cover(contract.id, unit.serial, period.end, today, self.terms.renewal)
            contract.register_bundle(
                site_id=site_id,
                serial=unit.serial,
                code_no=unit.code_no,
                model=unit.model,
                service=bundle.service,
                term_years=bundle.term_years,
                sold_on=bundle.sold_on,
                ticket_model=bundle.ticket_model,
                options=bundle.options,
                period=period,
                registered_on=today,
            )
            return self._view(contract, contract.registrations[unit.serial]), [contract, *units]

        return self._execute(decide, idempotency, serialize_on=self._indexed(site_key(site_id)))

    def _covered_unit(self, serial: str) -> tuple[Unit, Contract, Registration]:
        """The unit named in the path, the contract covering it and its registration."""
        unit = self.shipped_unit(normalise_serial(serial), kind=Refusal.NOT_FOUND)
        if unit.contract_id is None or unit.registration_serial is None:
            raise NotRegistered(f"Unit {unit.serial} is not registered.", kind=Refusal.NOT_FOUND)
        contract = self.company(unit.contract_id)
        return unit, contract, contract.registration(unit.registration_serial)

    def renew(
        self,
        serial: str,
        ticket_id: str,
        verification_code: str,
        idempotency: IdempotencyKey | None = None,
    ) -> Answer:
        def decide():  # noqa: ANN202
            unit, contract, registration = self._covered_unit(serial)
            ticket = self.sold_ticket(ticket_id, verification_code)
            if ticket.kind != "renewal":
                raise TicketKindMismatch(f"Ticket {ticket.ticket_id} is a new ticket, not a renewal one.")
            main_unit = unit if unit.serial == registration.serial else self.shipped_unit(registration.serial)
            check_ticket_fits_unit(ticket, main_unit)
            period = self.terms.renewal_period(registration.period, ticket.term_years)
            ticket.use(registration.serial, contract.id)
            contract.renew(
                serial=registration.serial,
                ticket_id=ticket.ticket_id,
                service=ticket.service,
                term_years=ticket.term_years,
                period=period,
                today=self.today(),
                policy=self.terms.renewal,
            )
            units = [main_unit, *(self.shipped_unit(o.serial) for o in registration.options)]
            for covered in units:
                covered.extend_coverage(period.end)
            return self._view(contract, contract.registrations[registration.serial]), [contract, ticket, *units]

        return self._execute(decide, idempotency)

    def upgrade_service_level(
        self, serial: str, service: str, reason: str, idempotency: IdempotencyKey | None = None
    ) -> Answer:
        """Q12: a sales action, offered as an internal command."""

        def decide():  # noqa: ANN202
            _, contract, registration = self._covered_unit(serial)
            contract.upgrade_service_level(registration.serial, service, reason)
            return self._view(contract, contract.registrations[registration.serial]), [contract]

        return self._execute(decide, idempotency)
