"""Registering tickets and bundles at a site, and renewing them (T-*, P-*, B-*, R-*).

Each command saves, in one transaction, the contract's event with the ticket marked used and
the unit(s) marked covered: two concurrent registrations of one ticket or one unit cannot
both succeed, because the second save finds those aggregates at a newer version.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol
from uuid import UUID

from eventsourcing.domain import Aggregate

from lifecycle.aggregates.contract import Contract, Registration
from lifecycle.aggregates.index import site_key
from lifecycle.aggregates.shipments import Ticket, Unit
from lifecycle.aggregates.index import Index
from lifecycle.application.commands import Answer, Decision, IdempotencyKey
from lifecycle.application.views import registration_view
from lifecycle.bulk.sheets import RowResult, RowStatus, SheetRow, normalise_site
from lifecycle.domain.errors import (
    BulkRowAlreadyRegistered,
    BulkRowValid,
    BulkSiteAmbiguous,
    DomainError,
    NotRegistered,
    Refusal,
    SiteNotFound,
)
from lifecycle.domain.serials import normalise_serial, normalise_ticket_id

if TYPE_CHECKING:
    from lifecycle.application.app import LifecycleApplication
    from lifecycle.application.companies import Companies
    from lifecycle.application.shipments import ShipmentHistory


class Shipments(Protocol):
    """Where a decision finds units and tickets: the store (ShipmentHistory), or in a batch
    the store as changed by the batch's earlier rows."""

    def shipped_unit(self, serial: str, **refusal: object) -> Unit: ...

    def sold_ticket(self, ticket_id: str, verification_code: str) -> Ticket: ...


class _BatchShipments:
    """The shipment history as a batch's earlier rows left it: a row gets its own copy, so a
    refused row's half-made changes (a ticket used before its unit was refused) are dropped."""

    def __init__(self, shipments: ShipmentHistory, read: dict[UUID, Aggregate] | None = None) -> None:
        self.shipments = shipments
        self.changed: dict[UUID, Aggregate] = {}
        # Read for the whole batch in one query; each is handed out once (a second use reads again).
        self.read = read or {}

    def _take(self, aggregate_id: UUID) -> Aggregate | None:
        changed = self.changed.get(aggregate_id)
        if changed is not None:
            return copy.deepcopy(changed)
        return self.read.pop(aggregate_id, None)

    def shipped_unit(self, serial: str, **refusal: object) -> Unit:
        unit = self._take(Unit.create_id(serial))
        return unit if isinstance(unit, Unit) else self.shipments.shipped_unit(serial, **refusal)

    def sold_ticket(self, ticket_id: str, verification_code: str) -> Ticket:
        ticket = self._take(Ticket.create_id(normalise_ticket_id(ticket_id)))
        if not isinstance(ticket, Ticket):
            return self.shipments.sold_ticket(ticket_id, verification_code)
        ticket.check_verification_code(verification_code)
        return ticket


def _ids_to_read(company_id: UUID, rows: Sequence[SheetRow]) -> list[UUID]:
    """What a batch's rows will read: their claims, units and tickets."""
    ids: list[UUID] = []
    for row in rows:
        ids.append(Index.create_id(bulk_row_key(company_id, row.content_key)))
        ids.extend(Unit.create_id(serial) for serial in (row.serial, *row.option_serials) if serial)
        if row.ticket_id:
            try:
                ids.append(Ticket.create_id(normalise_ticket_id(row.ticket_id)))
            except DomainError:
                pass  # refused when the row is decided
    return ids


class _HalfDecided(Exception):
    """A refused row had already changed the contract: the batch cannot go on in memory."""


def bulk_row_key(company_id: UUID, content_key: str) -> str:
    """K-1: a sheet row registered for a company, by what it asks (SheetRow.content_key)."""
    return f"/bulk-rows/{company_id}/{content_key}"


# What a batch saves with its registrations, made from its rows' results: the job's progress.
Recorder = Callable[[list[RowResult], float], list[Aggregate]]


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
        def decide():  # noqa: ANN202
            contract = self.companies.contract_of_site(site_id)
            return self._decide_ticket(contract, site_id, ticket_id, verification_code, serial, self.shipments)

        return self.app.execute(decide, idempotency, serialize_on=self.app.indexed(site_key(site_id)))

    def register_bundle(
        self,
        site_id: UUID,
        serial: str,
        option_serials: list[str],
        idempotency: IdempotencyKey | None = None,
    ) -> Answer:
        def decide():  # noqa: ANN202
            contract = self.companies.contract_of_site(site_id)
            return self._decide_bundle(contract, site_id, serial, option_serials, self.shipments)

        return self.app.execute(decide, idempotency, serialize_on=self.app.indexed(site_key(site_id)))

    def _decide_ticket(
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
        return self._view_if(view, contract, unit.serial), [contract, ticket, unit]

    def _decide_bundle(
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
        return self._view_if(view, contract, unit.serial), [contract, *units]

    # --- what a command would do, for a confirmation screen ----------------------------------
    # Each decides as its command does (the same checks and refusals, the same answer) on
    # aggregates loaded for it, and saves nothing: what a person confirms is what registers,
    # unless the shipment history or the contract changes in between (the command decides again).

    def preview_ticket(self, site_id: UUID, ticket_id: str, verification_code: str, serial: str) -> Answer:
        contract = self.companies.contract_of_site(site_id)
        answer, _ = self._decide_ticket(contract, site_id, ticket_id, verification_code, serial, self.shipments)
        return answer

    def preview_bundle(self, site_id: UUID, serial: str, option_serials: list[str]) -> Answer:
        contract = self.companies.contract_of_site(site_id)
        answer, _ = self._decide_bundle(contract, site_id, serial, option_serials, self.shipments)
        return answer

    def preview_renewal(self, serial: str, ticket_id: str, verification_code: str) -> Answer:
        unit, contract, registration = self._covered_unit(serial)
        answer, _ = self._decide_renewal(unit, contract, registration, ticket_id, verification_code, self.shipments)
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

    def _covered_unit(
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
            unit, contract, registration = self._covered_unit(serial)
            return self._decide_renewal(unit, contract, registration, ticket_id, verification_code, self.shipments)

        return self.app.execute(decide, idempotency)

    def _decide_renewal(
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
            _, contract, registration = self._covered_unit(serial)
            contract.upgrade_service_level(registration.serial, service, reason)
            return self._view(contract, contract.registrations[registration.serial]), [contract]

        return self.app.execute(decide, idempotency)

    # --- bulk registration (K-1) ----------------------------------------------------------

    def register_rows(
        self,
        company_id: UUID,
        rows: Sequence[SheetRow],
        *,
        job_id: UUID | None = None,
        dry_run: bool = False,
        record: Recorder | None = None,
        take_snapshots: bool = True,
    ) -> list[RowResult]:
        """K-1: rows of a sheet for one company in one transaction. The contract is loaded
        once; each row is decided as its single command decides (the same checks, events and
        refusals); everything the accepted rows changed is saved in one `save`, with an Index
        per row (a re-upload answers ALREADY_REGISTERED) and what `record` adds (the job's
        progress), so a batch is registered and recorded together or not at all. A batch
        that loses a race to a concurrent command is done again row by row, each row its own
        transaction with the usual retries. A dry run decides and saves nothing."""
        started = time.monotonic()
        with self.app.command_lock(company_id):
            try:
                results, changed = self._decide_rows(company_id, rows, job_id)
            except _HalfDecided:
                pass
            else:
                if dry_run:
                    return [self._dry(result) for result in results]
                extra = record(results, time.monotonic() - started) if record else []
                if self.app.save_once(*changed, *extra, take_snapshots=take_snapshots) is not None:
                    return results
        results = []
        for row in rows:

            def decide(row: SheetRow = row) -> Decision:
                row_started = time.monotonic()
                found, changed = self._decide_rows(company_id, [row], job_id)
                if dry_run:
                    return {"results": [self._dry(result) for result in found]}, []
                extra = record(found, time.monotonic() - row_started) if record else []
                return {"results": found}, [*changed, *extra]

            results += self.app.execute(decide, None, serialize_on=company_id)["results"]
        return results

    @staticmethod
    def _dry(result: RowResult) -> RowResult:
        if result.status not in (RowStatus.REGISTERED, RowStatus.RENEWED) or result.code:
            return result
        valid = BulkRowValid(f"Row {result.row} can be registered; this was a dry run.")
        return RowResult(result.row, result.status, valid.code, valid.message_ja, valid.detail)

    def _decide_rows(
        self, company_id: UUID, rows: Sequence[SheetRow], job_id: UUID | None
    ) -> tuple[list[RowResult], list[Aggregate]]:
        contract = self.companies.company(company_id)
        read = self.app.load_many(_ids_to_read(company_id, rows))
        shipments = _BatchShipments(self.shipments, read)
        results: list[RowResult] = []
        claims: list[Aggregate] = []
        for row in rows:
            before = len(contract.pending_events)
            try:
                result, changed = self._decide_row(contract, row, shipments, job_id, read)
            except DomainError as error:
                if len(contract.pending_events) != before:  # not expected: contracts change last
                    if claims:
                        raise _HalfDecided from error
                    contract = self.companies.company(company_id)
                results.append(RowResult.refused(row.row, error))
                continue
            for aggregate in changed:
                if isinstance(aggregate, Index):
                    claims.append(aggregate)
                else:
                    shipments.changed[aggregate.id] = aggregate
            results.append(result)
        changed_all: list[Aggregate] = [contract, *shipments.changed.values(), *claims] if claims else []
        return results, changed_all

    def _decide_row(
        self, contract: Contract, row: SheetRow, shipments: _BatchShipments, job_id: UUID | None,
        read: dict[UUID, Aggregate],
    ) -> tuple[RowResult, list[Aggregate]]:
        key = bulk_row_key(contract.id, row.content_key)
        status = RowStatus.RENEWED if row.kind == "renewal" else RowStatus.REGISTERED
        claim = read.get(Index.create_id(key))  # read with the batch; absent: not claimed then
        earlier = claim.ref if isinstance(claim, Index) else None
        if earlier is not None:
            if earlier == job_id:  # this job registered it (a resumed batch): say so again
                return RowResult(row.row, status), []
            again = BulkRowAlreadyRegistered(
                f"Row {row.row} asks for what an earlier upload (job {earlier}) registered.", job_id=str(earlier)
            )
            return RowResult(row.row, RowStatus.ALREADY_REGISTERED, again.code, again.message_ja, again.detail), []
        if row.kind == "new":
            site_id = self._site_named(contract, row.site)
            _, changed = self._decide_ticket(
                contract, site_id, row.ticket_id, row.verification_code, row.serial, shipments, view=False
            )
        elif row.kind == "bundle":
            site_id = self._site_named(contract, row.site)
            _, changed = self._decide_bundle(
                contract, site_id, row.serial, row.option_serials, shipments, view=False
            )
        else:
            unit, _, registration = self._covered_unit(row.serial, shipments, within=contract)
            _, changed = self._decide_renewal(
                unit, contract, registration, row.ticket_id, row.verification_code, shipments, view=False
            )
        claimed = [a for a in changed if a is not contract]
        return RowResult(row.row, status), [*claimed, Index(key, job_id or contract.id)]

    @staticmethod
    def _site_named(contract: Contract, text: str) -> UUID:
        """A sheet names a site by its id or its name (compared as the sheet reads it)."""
        wanted = normalise_site(text)
        if wanted.lower() in contract.sites:
            return UUID(wanted.lower())
        named = [s.site_id for s in contract.sites.values() if normalise_site(s.name).casefold() == wanted.casefold()]
        if len(named) == 1:
            return named[0]
        if named:
            raise BulkSiteAmbiguous(f"{len(named)} sites of the company are named {wanted!r}.", site=wanted)
        raise SiteNotFound(f"The company has no site {wanted!r}.", site=wanted)
