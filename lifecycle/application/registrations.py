"""Registering tickets and bundles at a site, and renewing them (T-*, P-*, B-*, R-*).

Each command saves, in one transaction, the contract's event with the ticket marked used and
the unit(s) marked covered: two concurrent registrations of one ticket or one unit cannot
both succeed, because the second save finds those aggregates at a newer version.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol
from uuid import UUID

from lifecycle.aggregates.contract import Contract, Registration
from lifecycle.aggregates.index import site_key
from lifecycle.aggregates.shipments import Ticket, Unit
from lifecycle.application.commands import Answer, Decision, IdempotencyKey
from lifecycle.application.views import fields_of, registration_view
from lifecycle.domain.errors import (
    DomainError,
    NotRegistered,
    Refusal,
)
from lifecycle.domain.serials import normalise_serial, normalise_ticket_id

if TYPE_CHECKING:
    from lifecycle.application.app import LifecycleApplication
    from lifecycle.application.companies import Companies
    from lifecycle.application.shipments import ShipmentHistory


def _unit_id(serial: str) -> UUID | None:
    """The id of the unit a printed serial names; None when it names none (the command then
    refuses it where it always did)."""
    try:
        return Unit.create_id(normalise_serial(serial))
    except DomainError:
        return None


class Shipments(Protocol):
    """Where a decision finds units and tickets: the store (ShipmentHistory), or in a batch
    the store as changed by the batch's earlier rows."""

    def shipped_unit(self, serial: str, **refusal: object) -> Unit: ...

    def sold_ticket(self, ticket_id: str, verification_code: str) -> Ticket: ...


class Registrations:
    """New tickets, bundles, renewals and service upgrades (T-*, P-*, B-*, R-*, Q12)."""

    def __init__(self, app: LifecycleApplication, companies: Companies, shipments: ShipmentHistory) -> None:
        self.app = app
        self.companies = companies
        self.shipments = shipments

    def _view(self, contract: Contract, registration: Registration) -> Answer:
        return registration_view(contract, registration, self.app.today(), self.app.terms.renewal)

    def _view_if(self, view: bool, contract: Contract, serial: str) -> Answer:
        # A sheet row's answer is its status, not the registration's view: not built for it.
        return self._view(contract, contract.registrations[serial]) if view else {}

    def register_ticket(
        self,
        site_id: UUID,
        ticket_id: str,
        verification_code: str,
        serial: str,
        idempotency: IdempotencyKey | None = None,
    ) -> Answer:
        contract_id = self.app.indexed(site_key(site_id))

        def decide():  # noqa: ANN202
            unit_id, ticket_id_ = _unit_id(serial), Ticket.create_id(normalise_ticket_id(ticket_id))
            with self.app.read_ahead(unit_id, ticket_id_, contract_id=contract_id):
                contract = self.companies.contract_of_site(site_id)
                return self.decide_ticket(contract, site_id, ticket_id, verification_code, serial, self.shipments)

        return self.app.execute(decide, idempotency, serialize_on=contract_id)

    def register_bundle(
        self,
        site_id: UUID,
        serial: str,
        option_serials: list[str],
        idempotency: IdempotencyKey | None = None,
    ) -> Answer:
        contract_id = self.app.indexed(site_key(site_id))

        def decide():  # noqa: ANN202
            with self.app.read_ahead(_unit_id(serial), contract_id=contract_id):
                contract = self.companies.contract_of_site(site_id)
                return self.decide_bundle(contract, site_id, serial, option_serials, self.shipments)

        return self.app.execute(decide, idempotency, serialize_on=contract_id)

    def decide_ticket(
        self, contract: Contract, site_id: UUID, ticket_id: str, verification_code: str, serial: str,
        shipments: Shipments, *, view: bool = True,
    ) -> Decision:
        contract.check_site_ready_for_registration(site_id)
        unit = shipments.shipped_unit(normalise_serial(serial))
        ticket = shipments.sold_ticket(ticket_id, verification_code)
        ticket.check_can_start_coverage(self.app.terms)
        ticket.check_fits(unit)
        today = self.app.today()
        period = self.app.terms.first_period(ticket.sold_on, ticket.term_years)
        ticket.use(unit.serial, contract.id)
        unit.cover(contract.id, unit.serial, period.end, today, self.app.terms.renewal)
        contract.register_ticket(
            site_id=site_id,
            **fields_of(unit, "serial", "code_no", "model"),
            **fields_of(ticket, "ticket_id", "service", "term_years", "sold_on"),
            period=period,
            registered_on=today,
        )
        return self._view_if(view, contract, unit.serial), [contract, ticket, unit]

    def decide_bundle(
        self, contract: Contract, site_id: UUID, serial: str, option_serials: Sequence[str], shipments: Shipments,
        *, view: bool = True,
    ) -> Decision:
        contract.check_site_ready_for_registration(site_id)
        unit = shipments.shipped_unit(normalise_serial(serial))
        unit.check_is_bundle()
        assert unit.bundle is not None
        bundle = unit.bundle
        unit.check_bundle_options([normalise_serial(s) for s in option_serials])
        expected = bundle.option_serials
        today = self.app.today()
        period = self.app.terms.first_period(bundle.sold_on, bundle.term_years)
        units = [unit, *(shipments.shipped_unit(s) for s in expected)]
        for covered in units:
            covered.cover(contract.id, unit.serial, period.end, today, self.app.terms.renewal)
        contract.register_bundle(
            site_id=site_id,
            **fields_of(unit, "serial", "code_no", "model"),
            **fields_of(bundle, "service", "term_years", "sold_on", "ticket_model", "options"),
            period=period,
            registered_on=today,
        )
        return self._view_if(view, contract, unit.serial), [contract, *units]

    # --- what a command would do, for a confirmation screen ----------------------------------
    # Each decides as its command does (the same checks and refusals, the same answer) on
    # aggregates loaded for it, and saves nothing: what a person confirms is what registers,
    # unless the shipment history or the contract changes in between (the command decides again).

    def preview_ticket(self, site_id: UUID, ticket_id: str, verification_code: str, serial: str) -> Answer:
        contract = self.companies.contract_of_site(site_id)
        answer, _ = self.decide_ticket(contract, site_id, ticket_id, verification_code, serial, self.shipments)
        return answer

    def preview_bundle(self, site_id: UUID, serial: str, option_serials: list[str]) -> Answer:
        contract = self.companies.contract_of_site(site_id)
        answer, _ = self.decide_bundle(contract, site_id, serial, option_serials, self.shipments)
        return answer

    def preview_renewal(self, serial: str, ticket_id: str, verification_code: str) -> Answer:
        unit, contract, registration = self.covered_unit(serial)
        answer, _ = self.decide_renewal(unit, contract, registration, ticket_id, verification_code, self.shipments)
        return answer

    def contract_covering(self, serial: str) -> Contract | None:
        """The contract whose registration covers the unit now (None: unknown or not covered)."""
        try:
            unit = self.app.load(Unit.create_id(normalise_serial(serial)), Unit)
        except DomainError:
            return None
        if unit is None or unit.contract_id is None:
            return None
        return self.companies.find(unit.contract_id)

    def contract_using_ticket(self, ticket_id: str) -> Contract | None:
        ticket = self.app.load(Ticket.create_id(normalise_ticket_id(ticket_id)), Ticket)
        if ticket is None or ticket.used_by is None:
            return None
        return self.companies.find(ticket.used_by)

    def covered_unit(
        self, serial: str, shipments: Shipments | None = None, within: Contract | None = None
    ) -> tuple[Unit, Contract, Registration]:
        """The unit named in the path, the contract covering it and its registration
        (`within`: only that contract's; another company's unit looks unregistered)."""
        unit = (shipments or self.shipments).shipped_unit(normalise_serial(serial), kind=Refusal.NOT_FOUND)
        if unit.contract_id is None or unit.registration_serial is None:
            raise NotRegistered(f"Unit {unit.serial} is not registered.", kind=Refusal.NOT_FOUND)
        if within is not None and unit.contract_id != within.id:
            raise NotRegistered(f"Unit {unit.serial} is not registered.", kind=Refusal.NOT_FOUND)
        contract = within or self.companies.company(unit.contract_id)
        return unit, contract, contract.registration(unit.registration_serial)

    def renew(
        self,
        serial: str,
        ticket_id: str,
        verification_code: str,
        idempotency: IdempotencyKey | None = None,
    ) -> Answer:
        def decide():  # noqa: ANN202
            unit, contract, registration = self.covered_unit(serial)
            return self.decide_renewal(unit, contract, registration, ticket_id, verification_code, self.shipments)

        return self.app.execute(decide, idempotency)

    def decide_renewal(
        self,
        unit: Unit,
        contract: Contract,
        registration: Registration,
        ticket_id: str,
        verification_code: str,
        shipments: Shipments,
        *,
        view: bool = True,
    ) -> Decision:
        ticket = shipments.sold_ticket(ticket_id, verification_code)
        ticket.check_is_renewal()
        main_unit = unit if unit.serial == registration.serial else shipments.shipped_unit(registration.serial)
        ticket.check_fits(main_unit)
        period = self.app.terms.renewal_period(registration.period, ticket.term_years)
        ticket.use(registration.serial, contract.id)
        contract.renew(
            serial=registration.serial,
            ticket_id=ticket.ticket_id,
            service=ticket.service,
            term_years=ticket.term_years,
            period=period,
            today=self.app.today(),
            policy=self.app.terms.renewal,
        )
        units = [main_unit, *(shipments.shipped_unit(o.serial) for o in registration.options)]
        for covered in units:
            covered.extend_coverage(period.end)
        return self._view_if(view, contract, registration.serial), [contract, ticket, *units]

    def upgrade_service_level(
        self, serial: str, service: str, reason: str, idempotency: IdempotencyKey | None = None
    ) -> Answer:
        """Q12: a sales action, offered as an internal command."""

        def decide():  # noqa: ANN202
            _, contract, registration = self.covered_unit(serial)
            contract.upgrade_service_level(registration.serial, service, reason)
            return self._view(contract, contract.registrations[registration.serial]), [contract]

        return self.app.execute(decide, idempotency)

