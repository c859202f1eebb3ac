"""The vendor's shipment history (出荷履歴): shipped units and sold support tickets.
Registrations are checked against it (E4, E5)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from lifecycle.aggregates.audited import AuditedCreated, AuditedEvent
from lifecycle.domain.errors import (
    BundleOptionsInvalid,
    BundleOptionsMissing,
    NotABundle,
    NotInShipmentHistory,
    ProductCodeMismatch,
    TicketAlreadyRegistered,
    TicketKindMismatch,
    TicketNotEligible,
    UnitAlreadyRegistered,
)
from lifecycle.domain.periods import RenewalPolicy
from lifecycle.domain.serials import same_product
from lifecycle.domain.terms import SupportTerms


@dataclass(frozen=True)
class OptionUnit:
    """A standard option (module, power supply) shipped inside a maintenance bundle."""

    serial: str
    code_no: str
    model: str


@dataclass(frozen=True)
class BundleTerms:
    """The support a maintenance bundle (保守バンドル製品) was sold with."""

    service: str
    term_years: int
    sold_on: date
    ticket_model: str
    options: tuple[OptionUnit, ...] = ()

    def __post_init__(self) -> None:  # JSON gives lists back
        object.__setattr__(self, "options", tuple(self.options))

    @property
    def option_serials(self) -> list[str]:
        return [option.serial for option in self.options]


class Unit(Aggregate):
    """A shipped unit, identified by its serial number; covered at one site at a time (T-7)."""

    @staticmethod
    def create_id(serial: str, **_: object) -> UUID:
        return uuid5(NAMESPACE_URL, f"/units/{serial}")

    class Shipped(AuditedCreated):
        serial: str
        code_no: str
        model: str
        shipped_on: date
        bundle: BundleTerms | None
        bundle_serial: str | None

    @event(Shipped)
    def __init__(
        self,
        serial: str,
        code_no: str,
        model: str,
        shipped_on: date,
        bundle: BundleTerms | None,
        bundle_serial: str | None,
    ) -> None:
        self.serial = serial
        self.code_no = code_no
        self.model = model
        self.shipped_on = shipped_on
        self.bundle = bundle  # set on a bundle's main unit
        self.bundle_serial = bundle_serial  # set on an option shipped in a bundle
        self.contract_id: UUID | None = None
        self.registration_serial: str | None = None
        self.coverage_end: date | None = None

    @property
    def is_bundle(self) -> bool:
        return self.bundle is not None

    def check_is_bundle(self) -> None:
        """B-1: only a maintenance bundle unit is registered as a bundle."""
        if self.bundle is None:
            raise NotABundle(f"Unit {self.serial} is not a maintenance bundle unit.", serial=self.serial)

    def check_bundle_options(self, given: list[str]) -> None:
        """B-2: the serials of every standard option, and no others, in the same registration."""
        self.check_is_bundle()
        assert self.bundle is not None
        expected = self.bundle.option_serials
        wrong = [s for s in given if s not in expected]
        if wrong:
            raise BundleOptionsInvalid(f"Not options of bundle {self.serial}: {', '.join(wrong)}.", serials=wrong)
        missing = [s for s in expected if s not in given]
        if missing:
            raise BundleOptionsMissing(
                f"Bundle {self.serial} needs the serials of its options: {', '.join(missing)}.", serials=missing
            )

    def check_can_be_covered(self, today: date, policy: RenewalPolicy) -> None:
        """T-7: refused while a coverage is current or still renewable."""
        if self.coverage_end is not None and not policy.has_lapsed(self.coverage_end, today):
            raise UnitAlreadyRegistered(
                f"Unit {self.serial} is already registered.", serial=self.serial
            )

    def cover(
        self, contract_id: UUID, registration_serial: str, end: date, today: date, policy: RenewalPolicy
    ) -> None:
        self.check_can_be_covered(today, policy)
        self._covered(contract_id, registration_serial, end)

    class Covered(AuditedEvent):
        contract_id: UUID
        registration_serial: str
        end: date

    @event(Covered)
    def _covered(self, contract_id: UUID, registration_serial: str, end: date) -> None:
        self.contract_id = contract_id
        self.registration_serial = registration_serial
        self.coverage_end = end

    class CoverageExtended(AuditedEvent):
        end: date

    @event(CoverageExtended)
    def extend_coverage(self, end: date) -> None:
        self.coverage_end = end


class Ticket(Aggregate):
    """A sold support ticket (サポートチケット), used once (T-6)."""

    @staticmethod
    def create_id(ticket_id: str, **_: object) -> UUID:
        return uuid5(NAMESPACE_URL, f"/tickets/{ticket_id}")

    class Sold(AuditedCreated):
        ticket_id: str
        verification_code: str
        code_no: str
        service: str
        term_years: int
        kind: str
        sold_on: date

    @event(Sold)
    def __init__(
        self,
        ticket_id: str,
        verification_code: str,
        code_no: str,
        service: str,
        term_years: int,
        kind: str,
        sold_on: date,
    ) -> None:
        self.ticket_id = ticket_id
        self.verification_code = verification_code
        self.code_no = code_no
        self.service = service
        self.term_years = term_years
        self.kind = kind
        self.sold_on = sold_on
        self.used_for: str | None = None  # the serial it was registered for
        self.used_by: UUID | None = None  # and the contract that registered it

    def check_verification_code(self, verification_code: str) -> None:
        if verification_code.strip() != self.verification_code:
            raise NotInShipmentHistory(
                f"Ticket {self.ticket_id} with this verification code is not in the shipment history."
            )

    def check_fits(self, unit: Unit) -> None:
        """T-4: the first 5 digits of the ticket's and the unit's code No must agree."""
        if not same_product(self.code_no, unit.code_no):
            raise ProductCodeMismatch(
                f"Ticket {self.ticket_id} (code No {self.code_no}) is for another product than "
                f"unit {unit.serial} (code No {unit.code_no}).",
                ticket_code_no=self.code_no,
                unit_code_no=unit.code_no,
            )

    def check_can_start_coverage(self, terms: SupportTerms) -> None:
        """T-5: a new coverage needs a new ticket of a service and term that may start one."""
        if self.kind != "new":
            raise TicketKindMismatch(f"Ticket {self.ticket_id} is a renewal ticket, not a new one.")
        if not terms.is_new_ticket_service(self.service, self.term_years):
            raise TicketNotEligible(
                f"Ticket {self.ticket_id} ({self.service}, {self.term_years} years) cannot start a new coverage."
            )

    def check_is_renewal(self) -> None:
        """T-5, R-1: a renewal needs a renewal ticket."""
        if self.kind != "renewal":
            raise TicketKindMismatch(f"Ticket {self.ticket_id} is a new ticket, not a renewal one.")

    def use(self, serial: str, contract_id: UUID) -> None:
        if self.used_for is not None:
            raise TicketAlreadyRegistered(
                f"Ticket {self.ticket_id} is already registered.", ticket_id=self.ticket_id
            )
        self._used(serial, contract_id)

    class Used(AuditedEvent):
        serial: str
        contract_id: UUID

    @event(Used)
    def _used(self, serial: str, contract_id: UUID) -> None:
        self.used_for = serial
        self.used_by = contract_id
