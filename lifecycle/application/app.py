"""The lifecycle application: one event store, one way to run a command, and the
commands of each area (accounts, shipment history, companies and sites, registrations,
mail records, the auditor's history) as services that share it.

Every command decides against freshly loaded aggregates and saves everything it changed in
one transaction. A concurrent change to any of them makes the save fail on the store's
version constraint; the command then decides again on the new state, so a lost race ends in
the proper domain refusal (already registered, ...) rather than a generic conflict.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent, Repository
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError, JSONTranscoder, Mapper

from lifecycle.aggregates.bulk_job import BulkJob
from lifecycle.aggregates.contract import Contract
from lifecycle.aggregates.idempotency import CommandAnswer
from lifecycle.aggregates.index import Index
from lifecycle.application.after_answer import AfterAnswer
from lifecycle.application.commands import Answer, Decision, IdempotencyKey
from lifecycle.application.event_reads import select_events_after
from lifecycle.application.positions import log_position_of, note_position
from lifecycle.application.sealing import SealedAsBase64, Sealer, SealingMapper
from lifecycle.application.transcodings import register_value_types
from lifecycle.domain.dates import tokyo_today
from lifecycle.domain.errors import ConcurrentUpdate, DomainError, IdempotencyKeyReused, RecordedRefusal
from lifecycle.domain.terms import SupportTerms
from lifecycle.ports import Clock, PostalCodeDirectory, SubjectKeys

if TYPE_CHECKING:
    from lifecycle.application.accounts import Accounts
    from lifecycle.application.bulk_rows import BulkRows
    from lifecycle.application.companies import Companies
    from lifecycle.application.history import ContractHistory
    from lifecycle.application.mail_records import MailRecords
    from lifecycle.application.registrations import Registrations
    from lifecycle.application.shipments import ShipmentHistory

A = TypeVar("A", bound=Aggregate)


def snapshot_due(version: int, interval: int) -> bool:
    """Every `interval` events while the contract is short, then every quarter of its length
    or less (`interval` times a power of two). Each snapshot holds the whole contract, so a
    fixed interval made the bytes and CPU each event pays for snapshots grow with the
    contract; this way they stay flat, and a process loading it cold replays at most a
    quarter of it after the snapshot."""
    step = interval
    while step * 8 <= version:
        step *= 2
    return version % step == 0


def apply_events(aggregate: Any, domain_events: Iterable[Any]) -> Any:
    """The library's `project_aggregate` without its per-event protocol check (an
    `isinstance` against a runtime-checkable Protocol costs more than applying the event)."""
    for domain_event in domain_events:
        aggregate = domain_event.mutate(aggregate)
    return aggregate


class _ReadAhead(threading.local):
    """The events a thread read ahead for the loads of the command it is deciding
    (LifecycleApplication.read_ahead): for each aggregate, the version they follow."""

    after: dict[UUID, int] | None = None
    found: dict[UUID, list[Any]]


class _EventsReadAhead:
    """The event store as the repositories see it: a load of an aggregate this thread read
    ahead (a cached contract's fast-forward, a unit's or ticket's replay) takes its events
    from what was read, instead of a query of its own. Any other read is the store's."""

    def __init__(self, events: Any, ahead: _ReadAhead, to_domain_event: Callable[[Any], Any]) -> None:
        self._events = events
        self._ahead = ahead
        self._to_domain_event = to_domain_event

    def get(self, originator_id: UUID, *, gt: int | None = None, lte: int | None = None,
            desc: bool = False, limit: int | None = None) -> Any:
        after = self._ahead.after
        if after is not None and lte is None and not desc and limit is None:
            read_after = after.get(originator_id)
            if read_after is not None and (gt or 0) >= read_after:
                return [
                    self._to_domain_event(stored)
                    for stored in self._ahead.found.get(originator_id, ())
                    if stored.originator_version > (gt or 0)
                ]
        return self._events.get(originator_id, gt=gt, lte=lte, desc=desc, limit=limit)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._events, name)


class LifecycleApplication(Application[UUID]):
    """Accounts, shipment history, contracts and registrations in one event store, so that a
    registration saves the contract, the ticket and the unit atomically. Each area's
    commands are a service of its own (`app.registrations.register_ticket(...)`)."""

    name = "Lifecycle"
    # The first interval: it grows with the contract (snapshot_due).
    snapshotting_intervals: ClassVar[dict[type[Aggregate], int]] = {Contract: 100}
    max_attempts = 8
    # The commands and queries of each area, sharing this store: set by lifecycle.bootstrap.
    accounts: Accounts
    shipments: ShipmentHistory
    companies: Companies
    registrations: Registrations
    mail_records: MailRecords
    history: ContractHistory
    bulk_rows: BulkRows

    def __init__(
        self,
        *,
        clock: Clock,
        postal_codes: PostalCodeDirectory,
        terms: SupportTerms,
        secret_key: str,
        password_hasher: Callable[[str], str],
        env: dict[str, str] | None = None,
        contract_cache_size: int = 1000,
        personal_keys: Callable[[Any], SubjectKeys],
        job_cache_size: int = 100,
        index_cache_size: int = 50_000,
    ) -> None:
        # The data subjects' keys, made from the store's datastore by construct_mapper (which
        # the library's __init__ calls): bootstrap passes the table beside the events, or keys
        # in memory for an in-memory store.
        self._personal_keys_for = personal_keys
        super().__init__(env=env)
        self.store_env = dict(env or {})  # as given: bootstrap creates side tables under its DDL lock
        self.clock = clock
        self.postal_codes = postal_codes
        self.terms = terms
        self.secret_key = secret_key.encode()
        self.hash_password = password_hasher
        # Called after each save, e.g. to wake this process's projection runners.
        self.save_listeners: list[Callable[[], None]] = []
        # What a command reads ahead, in one query, for its loads (read_ahead).
        self._read_ahead = _ReadAhead()
        events = _EventsReadAhead(self.events, self._read_ahead, self.mapper.to_domain_event)
        # Other aggregates are small and never snapshotted: they are read without first asking
        # the snapshot store (one query instead of two per aggregate).
        self._unsnapshotted = Repository(event_store=events)
        # Contracts grow with every registration of their company, and nearly every command
        # loads one: recently used ones stay in memory and each load reads only the events
        # saved since (by any process), instead of a snapshot and the events after it.
        self._contracts = Repository(
            event_store=events,
            snapshot_store=self.snapshots,
            cache_maxsize=contract_cache_size if contract_cache_size > 0 else None,
            fastforward=True,
        )
        # A bulk job gains one event per batch of rows, and its progress is asked for while it
        # runs (the worker reloads it for each batch too): kept like contracts, so a load reads
        # only the batches recorded since instead of every one.
        self._jobs = Repository(
            event_store=self.events, cache_maxsize=job_cache_size if job_cache_size > 0 else None, fastforward=True
        )
        # Striped: commands on one contract in this process take turns (see _execute).
        self._command_locks = [threading.Lock() for _ in range(64)]
        # Index aggregates never change once claimed: key -> ref, found ones only, emptied
        # when it holds index_cache_size.
        self._index_refs: dict[str, UUID] = {}
        self._index_cache_size = index_cache_size
        # Work done after a command's answer (a password-reset request's lookup).
        self.after_answer = AfterAnswer()

    def construct_mapper(self) -> Mapper[UUID]:
        """Personal fields sealed per data subject on their way to the store (sealing.py)."""
        self.personal_keys = self._personal_keys_for(getattr(self.factory, "datastore", None))
        return SealingMapper(self.construct_transcoder(), Sealer(self.personal_keys))

    def close(self) -> None:
        self.after_answer.close()
        super().close()

    def register_transcodings(self, transcoder: JSONTranscoder) -> None:
        super().register_transcodings(transcoder)
        register_value_types(transcoder)
        transcoder.register(SealedAsBase64())

    def today(self):  # noqa: ANN201 - a date in Asia/Tokyo
        return tokyo_today(self.clock.now())

    # --- loading ----------------------------------------------------------------------

    def load(self, aggregate_id: UUID, cls: type[A]) -> A | None:
        """The one place where an id becomes an aggregate of a given kind. Ids are uuid5 of
        natural keys that anyone can compute, so an id of another kind (an account's id given
        as a bulk job's, a key's token built from a contract's id) is answered as an unknown
        one: None, never an error that tells the two apart."""
        repository = self._contracts if cls is Contract else self._jobs if cls is BulkJob else self._unsnapshotted
        try:
            aggregate = repository.get(aggregate_id, projector_func=apply_events)
        except AggregateNotFoundError:
            return None
        if not isinstance(aggregate, cls):
            if repository.cache is not None:  # not kept among the contracts or jobs it is not
                try:
                    repository.cache.get(aggregate_id, evict=True)
                except KeyError:
                    pass
            return None
        return aggregate

    def load_many(self, aggregate_ids: Iterable[UUID]) -> dict[UUID, Aggregate]:
        """Aggregates that are never snapshotted (units, tickets, Index), read in one query;
        the ones not found are left out."""
        from lifecycle.application.event_reads import select_events_of

        stored = select_events_of(self.recorder, list(dict.fromkeys(aggregate_ids)))
        return {
            aggregate_id: apply_events(None, (self.mapper.to_domain_event(e) for e in events))
            for aggregate_id, events in stored.items()
        }

    @contextmanager
    def read_ahead(self, *aggregate_ids: UUID | None, contract_id: UUID | None = None) -> Iterator[None]:
        """Reads the aggregates a command is about to load in one query instead of one each:
        inside the block, loading any of them (`load`) takes its events from this read. Each
        is read whole, except the contract `contract_id` when this process has it cached:
        only its events after the cached version (what its load's fast-forward would read).
        A concurrent change is caught by the save, as for any load."""
        after = {aggregate_id: 0 for aggregate_id in aggregate_ids if aggregate_id is not None}
        if contract_id is not None and self._contracts.cache is not None:
            try:
                after[contract_id] = self._contracts.cache.get(contract_id).version
            except KeyError:
                pass  # loaded as usual, from its snapshot
        found = select_events_after(self.recorder, after)
        ahead = self._read_ahead
        outer = ahead.after, getattr(ahead, "found", {})
        ahead.after, ahead.found = after, found
        try:
            yield
        finally:
            ahead.after, ahead.found = outer

    def exists(self, aggregate_id: UUID) -> bool:
        return aggregate_id in self.repository

    def indexed(self, key: str) -> UUID | None:
        ref = self._index_refs.get(key)
        if ref is None:
            index = self.load(Index.create_id(key), Index)
            if index is None:
                return None
            if len(self._index_refs) >= self._index_cache_size:
                self._index_refs.clear()
                if not self._index_cache_size:
                    return index.ref
            ref = self._index_refs[key] = index.ref
        return ref

    def forget_cached_personal_data(self) -> None:
        """After a subject is forgotten: the Index keys this process remembers are login IDs."""
        self._index_refs.clear()

    # --- running commands -------------------------------------------------------------

    def execute(
        self, decide: Callable[[], Decision], idempotency: IdempotencyKey | None, *, serialize_on: UUID | None = None
    ) -> Answer:
        """Runs a command; `serialize_on` (an aggregate id) makes this process's commands on
        that aggregate take turns instead of racing each other to the store."""
        if serialize_on is None:
            return self._execute_optimistically(decide, idempotency)
        with self.command_lock(serialize_on):
            return self._execute_optimistically(decide, idempotency)

    def command_lock(self, aggregate_id: UUID) -> threading.Lock:
        """This process's commands on one aggregate take turns under its lock."""
        return self._command_locks[aggregate_id.int % len(self._command_locks)]

    def save_once(self, *aggregates: Aggregate, take_snapshots: bool = True) -> int | None:
        """Saves a decision made by the caller in one transaction, without deciding again:
        the log position reached, or None when a concurrent change won (nothing saved).
        `take_snapshots=False`: the caller snapshots later (`snapshot`)."""
        position = self._save_at(*aggregates, take_snapshots=take_snapshots)
        if position is not None:
            note_position(position)
        return position

    def _execute_optimistically(self, decide: Callable[[], Decision], idempotency: IdempotencyKey | None) -> Answer:
        if idempotency is not None:
            # Bodies may hold passwords: the log keeps only a keyed hash of their fingerprint.
            sealed = hmac.new(self.secret_key, idempotency.fingerprint.encode(), hashlib.sha256).hexdigest()
            idempotency = IdempotencyKey(idempotency.key, sealed, idempotency.scope)
        for attempt in range(self.max_attempts):
            if attempt:  # lost a race (to another process): let the winners finish first
                time.sleep(random.uniform(0, 0.002 * 2**attempt))
            if idempotency is not None:
                recorded = self._recorded_answer(idempotency)
                if recorded is not None:
                    return recorded
            try:
                answer, changed = decide()
            except DomainError as refusal:
                if idempotency is None or isinstance(refusal, RecordedRefusal):
                    raise
                if not self._save_or_conflict(
                    CommandAnswer(idempotency.scoped, idempotency.fingerprint, None, refusal.as_dict())
                ):
                    continue  # another request with this key answered first
                raise
            if idempotency is not None:
                changed = [
                    *changed,
                    CommandAnswer(idempotency.scoped, idempotency.fingerprint, answer, None),
                ]
            position = self._save_at(*changed)
            if position is not None:
                # The log position reached: reads may ask to see at least this (read-your-writes).
                note_position(position)
                return {**answer, "position": position}
        raise ConcurrentUpdate("The command lost too many races with concurrent commands.")

    def _save_or_conflict(self, *aggregates: Aggregate) -> bool:
        return self._save_at(*aggregates) is not None

    def _save_at(self, *aggregates: Aggregate, take_snapshots: bool = True) -> int | None:
        """Saves in one transaction; answers the log position reached, or None when a
        concurrent change won the race."""
        try:
            recordings = self.save(*aggregates, take_snapshots=take_snapshots)
        except IntegrityError:
            return None
        if recordings:
            return recordings[-1].notification.id
        return self.recorder.max_notification_id() or 0

    def save(self, *objs: Any, take_snapshots: bool = True, **kwargs: Any) -> list[Any]:
        """The library's `save`, collecting aggregates' events without its two runtime
        Protocol checks per object (a bulk batch saves ~750 aggregates: ~10 ms of them);
        anything but an aggregate is collected by the library as before."""
        processing_event: ProcessingEvent[UUID] = ProcessingEvent()
        for obj in objs:
            if isinstance(obj, Aggregate):
                processing_event.events.extend(obj.collect_events())
                processing_event.aggregates[obj.id] = obj
            elif obj is not None:
                processing_event.collect_events(obj)
        processing_event.saved_kwargs.update(kwargs)
        recordings = self._record(processing_event)
        if take_snapshots:
            self._take_snapshots(processing_event)
        self._notify(recordings)
        self.notify(processing_event.events)  # the library's deprecated hook, as its save calls it
        return recordings

    def _record(self, processing_event: ProcessingEvent[UUID]) -> list[Any]:
        """The library's, and what was saved goes into this process's caches of contracts
        and jobs: a load right after (the next command, a bulk job's next batch) then finds
        it there, instead of reading back and replaying the events this process just wrote
        (a whole batch's: every contract event of a bulk job was decoded and applied twice).
        A copy is cached, so the saved object stays the caller's; a save by another process
        is still read by the next load (fastforward)."""
        recordings = super()._record(processing_event)
        cached = {Contract: self._contracts, BulkJob: self._jobs}
        for aggregate in processing_event.aggregates.values():
            repository = cached.get(type(aggregate))
            if repository is not None and repository.cache is not None:
                repository.cache.put(aggregate.id, copy.deepcopy(aggregate))
        return recordings

    def _take_snapshots(self, processing_event: ProcessingEvent[UUID]) -> None:
        """Snapshots the aggregates just saved whose events reached a snapshot point, once
        each, as saved (at their last version): from the objects in memory, rather than by
        replaying them from the store up to that point as the library does."""
        if self.snapshots is None:
            return
        due: dict[UUID, Aggregate] = {}
        for domain_event in processing_event.events:
            aggregate = processing_event.aggregates.get(domain_event.originator_id)
            interval = self.snapshotting_intervals.get(type(aggregate))
            if interval is not None and snapshot_due(domain_event.originator_version, interval):
                due[aggregate.id] = aggregate
        for aggregate in due.values():
            self.snapshots.put([type(aggregate).Snapshot.take(aggregate)])

    def snapshot(self, contract_id: UUID, *, unless_at: int | None = None) -> None:
        """Snapshots the contract as it is now (after saves that deferred their snapshots),
        unless it is still at version `unless_at` or a snapshot of this version exists."""
        contract = self.load(contract_id, Contract)
        if contract is None or self.snapshots is None or contract.version == unless_at:
            return
        try:
            self.snapshots.put([Contract.Snapshot.take(contract)])
        except IntegrityError:  # another process took this one
            pass

    def _notify(self, recordings: list[Any]) -> None:
        for listener in self.save_listeners:
            listener()

    def _recorded_answer(self, idempotency: IdempotencyKey) -> Answer | None:
        record = self.load(CommandAnswer.create_id(idempotency.scoped), CommandAnswer)
        if record is None:
            return None
        if record.fingerprint != idempotency.fingerprint:
            raise IdempotencyKeyReused(
                f"Idempotency-Key {idempotency.key!r} was first used for a different request."
            )
        if record.refusal is not None:
            raise RecordedRefusal.from_dict(record.refusal)
        # Saved last in the command's transaction: its position is the first answer's.
        position = log_position_of(self.recorder, record.id, 1)
        note_position(position)
        return {**record.answer, "position": position}
