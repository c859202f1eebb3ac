"""Bulk registration's rows (K-1): the rows of a sheet decided for one company, each as its
single command decides it (Registrations' decide_* functions: the same checks, events and
refusals), and saved a batch at a time.

A row's refusal stays on its row; a row already registered by an earlier upload is
answered ALREADY_REGISTERED through an Index named by the company and the row's content
(`bulk_row_key`), claimed in the same transaction as the registration.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING
from uuid import UUID

from eventsourcing.domain import Aggregate

from lifecycle.aggregates.contract import Contract
from lifecycle.aggregates.index import Index
from lifecycle.aggregates.shipments import Ticket, Unit
from lifecycle.application.commands import Decision
from lifecycle.bulk.sheets import RowResult, RowStatus, SheetRow, normalise_site
from lifecycle.domain.errors import (
    BulkRowAlreadyRegistered,
    BulkRowValid,
    BulkSiteAmbiguous,
    DomainError,
    SiteNotFound,
)
from lifecycle.domain.serials import normalise_ticket_id

if TYPE_CHECKING:
    from lifecycle.application.app import LifecycleApplication
    from lifecycle.application.companies import Companies
    from lifecycle.application.registrations import Registrations
    from lifecycle.application.shipments import ShipmentHistory


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


class BulkRows:
    """K-1: a sheet's rows registered for one company, a batch per transaction."""

    def __init__(
        self, app: LifecycleApplication, registrations: Registrations, companies: Companies, shipments: ShipmentHistory
    ) -> None:
        self.app = app
        self.registrations = registrations
        self.companies = companies
        self.shipments = shipments

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
            _, changed = self.registrations.decide_ticket(
                contract, site_id, row.ticket_id, row.verification_code, row.serial, shipments, view=False
            )
        elif row.kind == "bundle":
            site_id = self._site_named(contract, row.site)
            _, changed = self.registrations.decide_bundle(
                contract, site_id, row.serial, row.option_serials, shipments, view=False
            )
        else:
            unit, _, registration = self.registrations.covered_unit(row.serial, shipments, within=contract)
            _, changed = self.registrations.decide_renewal(
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
