"""Running projections: read the application's log after the view's tracking position, apply
a batch of events to the read model, commit the rows with the new position, repeat.

The log is polled (SQLite's recorder has no subscriptions) and the poll is cut short when
the application saves in this process or, on PostgreSQL, when another process NOTIFYs the
events channel. With several API processes on PostgreSQL each projection is run by the one
process that holds its advisory lock; the others stand by and take over when that process
dies (its session, and so its lock, ends). The compare-and-set on the tracking position in
`ReadModelView.commit` keeps even a mistaken second runner from applying anything twice.

An event the projection cannot apply (a handler raises, or the store refuses the rows made
from it, as PostgreSQL refuses a NUL in text) stops the runner at that event: retrying would
fail the same way forever. It says so in one log line (projection, position, topic, error
type; ids only, no personal data), health shows the failed event, and reads that would wait
for the read model are refused at once. On PostgreSQL the stopped runner gives up its lock,
so each standing-by process meets the event once and knows it too. A restart (after a fix)
or a rebuild tries again.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from eventsourcing.application import Application
from eventsourcing.persistence import DataError, Notification, PersistenceError, Tracking
from eventsourcing.postgres import PostgresDatastore

from lifecycle.availability import OutageLog, is_outage
from lifecycle.ports import Leadership, PositionMoved
from lifecycle.progress import Progress, no_progress
from lifecycle.projections.engine.projection import ReadModelProjection, StoredEventFailed
from lifecycle.projections.engine.views import Changes

log = logging.getLogger(__name__)

ANALYZE_AFTER_ROWS = 20_000
# While the store is away: how soon a loop tries again (the store's own probe makes the
# attempts in between fail at once, so this costs nothing).
OUTAGE_RETRY_SECONDS = 0.5

# What the store answers when it cannot hold the rows of a batch: the same on every retry.
STORE_REFUSALS = (DataError, UnicodeError)
# A handler reads rows as it goes: an outage then is no fault of the event, and is retried.
TRANSIENT = (PersistenceError, OSError)


@dataclass(frozen=True)
class FailedEvent:
    """The event a projection stopped at: ids and names only, never the event's data."""

    position: int
    topic: str
    originator_id: UUID
    originator_version: int
    error_type: str

    @classmethod
    def of(cls, notification: Notification, error: BaseException) -> FailedEvent:
        return cls(
            notification.id, notification.topic, notification.originator_id,
            notification.originator_version, type(error).__name__,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "position": self.position,
            "topic": self.topic,
            "originator_id": str(self.originator_id),
            "originator_version": self.originator_version,
            "error_type": self.error_type,
        }


class EventNotApplied(Exception):
    """The projection cannot apply this event; it stops here."""

    def __init__(self, projection: str, failed: FailedEvent) -> None:
        super().__init__(
            f"projection {projection} stopped: cannot apply the event at position {failed.position} "
            f"(topic {failed.topic}, aggregate {failed.originator_id} version {failed.originator_version}): "
            f"{failed.error_type}"
        )
        self.failed = failed


class _BatchRefused(Exception):
    """The store refused a batch of several events: look for the event one at a time."""


class PostgresWakeups:
    """LISTENs to the events table's channel, so a runner hears of saves made by other
    processes at once instead of at its next poll."""

    def __init__(self, datastore: PostgresDatastore, channel: str, wake: Callable[[], None]) -> None:
        self._datastore = datastore
        self._channel = channel
        self._wake = wake
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._listen, name=f"listen-{channel}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)

    def _listen(self) -> None:
        from psycopg.sql import SQL, Identifier

        outage = OutageLog(log, f"listening on {self._channel}")
        while not self._stopping.is_set():
            try:
                # A connection of its own, held while the process runs: not one of the pool's.
                with self._datastore.own_connection() as conn:
                    conn.execute(SQL("LISTEN {}").format(Identifier(self._channel)))
                    outage.succeeded()
                    self._wake()  # saves made while it was not listening
                    while not self._stopping.is_set():
                        for _ in conn.notifies(timeout=0.5, stop_after=1):
                            self._wake()
                    conn.execute(SQL("UNLISTEN {}").format(Identifier(self._channel)))
            except Exception as error:
                # The connection is not the pool's: a driver error is an outage when the store
                # itself does not answer now.
                if is_outage(error) or self._store_is_down():
                    outage.failed(error)
                    self._stopping.wait(OUTAGE_RETRY_SECONDS)
                else:
                    log.warning("listening for new events failed; retrying", exc_info=True)
                    self._stopping.wait(2.0)

    def _store_is_down(self) -> bool:
        probe = getattr(self._datastore, "probe", None)
        return probe is not None and probe() is not None


class ProjectionRunner:
    """Keeps one read model up to date with the log. A BackgroundService of the Runtime."""

    def __init__(
        self,
        app: Application[Any],
        projection: ReadModelProjection,
        *,
        leadership: Leadership | None = None,
        batch_size: int = 1000,
        poll_interval: float = 1.0,
        gather_seconds: float = 0.05,
    ) -> None:
        self.app = app
        self.projection = projection
        self.view = projection.view
        self.name = projection.name
        self.leadership = leadership or Leadership()
        self.batch_size = batch_size
        self.poll_interval = poll_interval
        # While saves keep coming, the pause between batches: fewer, larger transactions
        # instead of one per save. A read waiting for its write cuts it short.
        self.gather_seconds = gather_seconds
        self.is_leader = False
        self.events_processed = 0
        self.batches_committed = 0
        self.last_error: str | None = None
        self.failed_event: FailedEvent | None = None  # set when stopped at an event
        # After the store refused a batch: events one at a time up to this position, to find
        # the one it cannot hold.
        self._single_until: int | None = None
        self._committed: int | None = None  # the position this process knows is committed
        # The rebuilds switched in when the cached rows were first read (None: read it again).
        self._generation: int | None = None
        self._rows_since_analyze = 0
        self._wake = threading.Event()
        self._hurry = threading.Event()
        self._stopping = threading.Event()
        self._advanced = threading.Condition()
        self._thread: threading.Thread | None = None
        self._outage = OutageLog(log, f"projection {self.name}")
        self._store_back = threading.Event()

    # --- the log ---------------------------------------------------------------------

    def head(self) -> int:
        return self.app.recorder.max_notification_id() or 0

    def position(self) -> int:
        """The committed tracking position, as stored."""
        position = self.view.position()
        self._note_committed(position)
        return position

    def run_once(self) -> int:
        """Applies the next batch; answers how many notifications it moved past (0: none new)."""
        start = self._start()
        head = self.head()
        if head <= start:
            self._analyze_after_catching_up()
            return 0
        notifications, end = self._fetch(start, head)
        changes, count = self._apply(notifications)
        try:
            self._commit(start, end, changes, notifications)
        except BaseException:
            self._abandon()
            raise
        self._committed_batch(end, changes, count)
        self.projection.rows.end()
        return end - start

    def catch_up(
        self, until: int | None = None, deadline: float | None = None, progress: Progress = no_progress
    ) -> int:
        """Runs batches until the view reaches `until` (default: the head now), or until the
        monotonic `deadline`. Pipelined: while one batch is applied to the rows, the next is
        read from the log and the previous one committed; a failed commit abandons them all.
        Raises EventNotApplied at an event the projection cannot apply. Reports the log
        position read against the target after each batch."""
        with self._pipeline_threads() as (reader, committer):
            while True:
                try:
                    return self._catch_up(reader, committer, until, deadline, progress)
                except _BatchRefused:
                    continue  # again from the last commit, one event at a time

    @contextmanager
    def _pipeline_threads(self) -> Iterator[tuple[ThreadPoolExecutor, ThreadPoolExecutor]]:
        """One thread reading the next batch ahead, one committing the previous one."""
        with (
            ThreadPoolExecutor(1, thread_name_prefix=f"read-{self.name}") as reader,
            ThreadPoolExecutor(1, thread_name_prefix=f"commit-{self.name}") as committer,
        ):
            yield reader, committer

    def _catch_up(
        self, reader: ThreadPoolExecutor, committer: ThreadPoolExecutor, until: int | None, deadline: float | None,
        progress: Progress = no_progress,
    ) -> int:
        target = self.head() if until is None else until
        start = self._start()
        first = start
        progress(start, target)
        pending: tuple[Future[None], int, Changes, int, Sequence[Notification]] | None = None
        try:
            fetched = reader.submit(self._fetch, start, target) if start < target else None
            while (
                fetched is not None
                and not self._stopping.is_set()
                and (deadline is None or time.monotonic() < deadline)
            ):
                notifications, end = fetched.result()
                fetched = reader.submit(self._fetch, end, target) if end < target else None
                changes, count = self._apply(notifications)
                if pending is not None:
                    self._finish(pending)
                pending = (
                    committer.submit(self._commit, start, end, changes, notifications), end, changes, count,
                    notifications,
                )
                start = end
                progress(end, target)
                if self.projection.rows.over_capacity():
                    self._finish(pending)
                    pending = None
                    self.projection.rows.end()
            if pending is not None:
                self._finish(pending)
            self.projection.rows.end()
        except BaseException:
            self._abandon()
            raise
        if start >= target:
            self._analyze_after_catching_up()
        return start - first

    def start_of_catch_up(self) -> int | None:
        """Where a catch-up together with other read models would start this one (None: it
        goes alone, being stopped or looking for a refused event one at a time)."""
        if self.failed_event is not None or self._single_until is not None:
            return None
        return self._start()

    def _start(self) -> int:
        """The position the next batch starts from. After a reset, the generation is read
        before the position: a rebuild switched in between makes the first commit refused."""
        if self._generation is None:
            self._generation = self.view.generation()
        return self._committed if self._committed is not None else self.position()

    def _fetch(self, start: int, head: int) -> tuple[Sequence[Notification], int]:
        """The next batch of this projection's events after `start`, up to `head`, and the
        position it reaches."""
        # A bounded range of the log per query: its cost does not depend on how far behind the
        # projection is, nor on the planner's statistics for the events table.
        stop = min(head, start + max(10 * self.batch_size, 10_000))
        single = self._single_until is not None and start < self._single_until
        limit = 1 if single else self.batch_size
        notifications = self.app.recorder.select_notifications(
            start=start,
            limit=limit,
            stop=stop,
            topics=self.projection.topics,
            inclusive_of_start=False,
        )
        # Every event up to `stop` has been read when the batch is not full.
        return notifications, notifications[-1].id if len(notifications) == limit else stop

    def _apply(self, notifications: Sequence[Notification]) -> tuple[Changes, int]:
        """Applies a batch to the rows; answers its changes."""
        rows = self.projection.rows
        rows.begin()
        try:
            if self.projection.reads_stored_events:
                try:
                    self.projection.process_stored(notifications)
                except StoredEventFailed as failed:
                    error = failed.__cause__ or failed
                    raise EventNotApplied(self.name, FailedEvent.of(failed.notification, error)) from error
                # Not copied: such a projection puts new rows in each batch, and changes none after.
                return rows.changes, len(notifications)
            to_event = self.app.mapper.to_domain_event
            tracking_name = self.view.tracking_name
            process_event = self.projection.process_event  # bound once: dispatching rebinds on each access
            for notification in notifications:
                try:
                    process_event(to_event(notification), Tracking(tracking_name, notification.id))
                except STORE_REFUSALS as error:
                    raise EventNotApplied(self.name, FailedEvent.of(notification, error)) from error
                except TRANSIENT:
                    raise
                except Exception as error:
                    raise EventNotApplied(self.name, FailedEvent.of(notification, error)) from error
        except BaseException:
            self._abandon()
            raise
        # Copies: the next batch changes the cached rows while this one is being committed.
        return rows.changes.copy(), len(notifications)

    def _commit(self, start: int, end: int, changes: Changes, notifications: Sequence[Notification]) -> None:
        try:
            self.view.commit(start, end, changes, self._generation)
        except STORE_REFUSALS as error:
            if len(notifications) == 1:
                raise EventNotApplied(self.name, FailedEvent.of(notifications[0], error)) from error
            if not notifications:
                raise
            self._single_until = end
            raise _BatchRefused() from error

    def _finish(self, pending: tuple[Future[None], int, Changes, int, Sequence[Notification]]) -> None:
        future, end, changes, count, _ = pending
        future.result()
        self._committed_batch(end, changes, count)

    def _committed_batch(self, end: int, changes: Changes, count: int) -> None:
        if self._single_until is not None and end >= self._single_until:
            self._single_until = None  # the refused batch went in one event at a time after all
        self._rows_since_analyze += sum(len(r) for r in changes.upserts.values())
        self.events_processed += count
        self.batches_committed += 1
        self._note_committed(end, force=True)

    def _abandon(self) -> None:
        self.projection.rows.forget()  # the cache may hold rows of rolled-back batches
        self._committed = None
        self._generation = None

    def _analyze_after_catching_up(self) -> None:
        if self._rows_since_analyze > ANALYZE_AFTER_ROWS:
            self.view.analyze()  # after a large catch-up: fresh statistics for the planner
            self._rows_since_analyze = 0

    def _note_committed(self, position: int, *, force: bool = False) -> None:
        with self._advanced:
            if force or self._committed is None or position > self._committed:
                self._committed = position
            self._advanced.notify_all()

    # --- read-your-writes ------------------------------------------------------------

    def wait_for(self, position: int, timeout: float) -> bool:
        """Blocks until the read model has reached `position` or `timeout` seconds passed."""
        deadline = time.monotonic() + timeout
        self.hurry()
        delay = 0.005
        while True:
            known = self._committed
            if known is not None and known >= position:
                return True
            if not self.is_leader or known is None:
                if self.position() >= position:  # another process may run it
                    return True
            if self.failed_event is not None:
                return False  # stopped: it will not get there
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with self._advanced:
                self._advanced.wait(min(remaining, delay))
            delay = min(delay * 2, 0.1)

    # --- as a background service -----------------------------------------------------

    def nudge(self) -> None:
        """New events were saved: look at the log."""
        self._wake.set()

    def hurry(self) -> None:
        """A read waits for this read model: look at the log now, without gathering."""
        self._hurry.set()
        self._wake.set()

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name=f"projection-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self.request_stop()
        self.join(timeout)

    def store_recovered(self) -> None:
        """The store answers again after an outage: try to lead again now."""
        self._store_back.set()
        self.hurry()

    def request_stop(self) -> None:
        self._stopping.set()
        self._store_back.set()
        self.hurry()

    def join(self, timeout: float) -> None:
        if self._thread is not None:
            self._thread.join(timeout=max(timeout, 0.0))
        self.leadership.release()
        self.is_leader = False

    def _run(self) -> None:
        # Kept for the runner's lifetime, not started again for every batch.
        with self._pipeline_threads() as (reader, committer):
            self._run_with(reader, committer)

    def stop_at(self, stopped: EventNotApplied) -> None:
        """Stops at an event it cannot apply: one log line, the failed event kept for health
        and for the reads that would wait, and the lock given up for another process."""
        self.failed_event = stopped.failed
        self.last_error = f"stopped at position {stopped.failed.position}: {stopped.failed.error_type}"
        log.error("%s", stopped)
        # The traceback may quote the event's data: only for whoever turns debugging on.
        log.debug("projection %s: the error", self.name, exc_info=stopped.__cause__)
        with self._advanced:
            self._advanced.notify_all()  # waiting reads answer now
        self.is_leader = False
        self.leadership.release()

    def _run_with(self, reader: ThreadPoolExecutor, committer: ThreadPoolExecutor) -> None:
        backoff = 0.5
        while not self._stopping.is_set() and self.failed_event is None:
            self.is_leader = self.leadership.acquire()
            if not self.is_leader:
                # Standing by for the process that runs it, or for the store to come back.
                self._store_back.wait(2.0)
                self._store_back.clear()
                continue
            try:
                moved = self._catch_up(reader, committer, None, None)
                self.last_error = None
                backoff = 0.5
                self._outage.succeeded()
            except PositionMoved:
                log.info("projection %s: position moved elsewhere; reloading", self.name)
                continue
            except _BatchRefused:
                continue  # at once, one event at a time
            except EventNotApplied as stopped:
                self.stop_at(stopped)
                return
            except Exception as error:
                self.last_error = f"{type(error).__name__}: {error}"
                if is_outage(error):  # the store is away: one line per outage, and resume soon after
                    self._outage.failed(error)
                    self._stopping.wait(OUTAGE_RETRY_SECONDS)
                    continue
                log.exception("projection %s failed; retrying in %.1fs", self.name, backoff)
                self._stopping.wait(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            if moved == 0:
                self._wake.wait(self.poll_interval)
                self._wake.clear()
            elif self.gather_seconds > 0:
                self._hurry.wait(self.gather_seconds)
            self._hurry.clear()

    def status(self) -> dict[str, Any]:
        head = self.head()
        position = self.position()
        return {
            "name": self.name,
            "position": position,
            "head": head,
            "lag": max(head - position, 0),
            "running_here": self.is_leader,
            "events_processed": self.events_processed,
            "last_error": self.last_error,
            "state": "stopped" if self.failed_event else "running" if self.is_leader else "standby",
            "failed_event": self.failed_event.as_dict() if self.failed_event else None,
        }


@dataclass
class _Member:
    """A read model in a catch-up together: where it is, what it reads, its batch in commit."""

    runner: ProjectionRunner
    start: int
    topics: frozenset[str] | None  # None: every event
    committer: ThreadPoolExecutor
    pending: tuple[Future[None], int, Changes, int, Sequence[Notification]] | None = None
    applied: list[Notification] = field(default_factory=list)  # of the page being applied
    failed: bool = False

    def wants(self, notification: Notification) -> bool:
        return notification.id > self.start and (self.topics is None or notification.topic in self.topics)


def catch_up_together(
    app: Application[Any],
    runners: Sequence[ProjectionRunner],
    *,
    page_size: int = 10_000,
    deadline: float | None = None,
    progress: Progress = no_progress,
) -> None:
    """Brings several read models towards the head of the log reading it once: one reader
    fetches pages of the events any of them shows (the next page while this one is applied),
    each event is decoded once and handed to every read model that shows it (then dropped:
    no page of decoded events is kept), and each read model commits its rows with its own
    position in its own transaction (its own thread), as when it runs alone. A read model
    that meets anything but success here (an event it cannot apply, a refused batch, a moved
    position) leaves the group with its cache dropped; its own `catch_up` then goes on from
    its committed position and says what happened. Used at start, by rebuilds and by
    `ReadModels.catch_up`."""
    target = app.recorder.max_notification_id() or 0
    with contextlib.ExitStack() as stack:
        members: list[_Member] = []
        for runner in runners:
            start = runner.start_of_catch_up()
            if start is not None and start < target:
                committer = stack.enter_context(ThreadPoolExecutor(1, thread_name_prefix=f"commit-{runner.name}"))
                topics = frozenset(runner.projection.topics) or None
                members.append(_Member(runner, start, topics, committer))
        if not members:
            return
        every_topic = any(m.topics is None for m in members)
        topics = () if every_topic else tuple(sorted(set().union(*(m.topics or () for m in members))))
        reader = stack.enter_context(ThreadPoolExecutor(1, thread_name_prefix="read-together"))

        def fetch(start: int) -> tuple[Sequence[Notification], int]:
            stop = min(target, start + 10 * page_size)
            page = app.recorder.select_notifications(
                start=start, limit=page_size, stop=stop, topics=topics, inclusive_of_start=False
            )
            return page, page[-1].id if len(page) == page_size else stop

        low = min(m.start for m in members)
        progress(low, target)
        fetched: Future[tuple[Sequence[Notification], int]] | None = reader.submit(fetch, low)
        try:
            while fetched is not None and members and (deadline is None or time.monotonic() < deadline):
                page, end = fetched.result()
                fetched = reader.submit(fetch, end) if end < target else None
                _apply_page(app, [m for m in members if end > m.start], page)
                for member in list(members):
                    if member.failed or (end > member.start and not _hand_to_committer(member, end)):
                        _leave(member)
                        members.remove(member)
                progress(end, target)
        finally:
            for member in members:
                _settle(member)


def _apply_page(app: Application[Any], members: Sequence[_Member], page: Sequence[Notification]) -> None:
    """Each event of the page to each member that shows it, in log order, decoded once."""
    to_event = app.mapper.to_domain_event
    for member in members:
        member.runner.projection.rows.begin()
        member.applied = []
    for notification in page:
        event = None
        for member in members:
            if member.failed or not member.wants(notification):
                continue
            projection = member.runner.projection
            try:
                if projection.reads_stored_events:
                    projection.process_stored([notification])
                else:
                    if event is None:
                        event = to_event(notification)
                    projection.process_event(event, Tracking(member.runner.view.tracking_name, notification.id))
            except Exception:
                log.debug("projection %s leaves the catch-up together at position %s", member.runner.name,
                          notification.id, exc_info=True)
                member.failed = True
                continue
            member.applied.append(notification)


def _hand_to_committer(member: _Member, end: int) -> bool:
    """The member's page of changes to its committer (once its previous batch is in); False
    when that batch was not committed."""
    runner = member.runner
    changes = runner.projection.rows.changes.copy()  # the next page changes the cached rows
    if member.pending is not None:
        pending, member.pending = member.pending, None
        try:
            runner._finish(pending)
        except Exception:
            log.debug("projection %s: a batch of the catch-up together was not committed", runner.name,
                      exc_info=True)
            return False
    applied = member.applied
    member.pending = (
        member.committer.submit(runner._commit, member.start, end, changes, applied), end, changes, len(applied),
        applied,
    )
    member.start = end
    if runner.projection.rows.over_capacity():
        _settle(member)
    return True


def _leave(member: _Member) -> None:
    """Out of the group: its batch in commit settled, its cache dropped."""
    if member.pending is not None:
        member.pending[0].exception()
        member.pending = None
    member.runner._abandon()


def _settle(member: _Member) -> None:
    """Waits for the member's batch in commit."""
    if member.pending is None:
        return
    pending, member.pending = member.pending, None
    try:
        member.runner._finish(pending)
        member.runner.projection.rows.end()
    except Exception:
        log.debug("projection %s: a batch of the catch-up together was not committed", member.runner.name,
                  exc_info=True)
        member.runner._abandon()
