"""The event feed (GET /v1/events, role `events`): every event of the log in log order, as
CloudEvents 1.0, for internal services that react to what happens (a CRM, the order desk, a
data warehouse). A consumer keeps the `position` of the last event it handled and asks for what
comes after it; see docs/audit.md.

Why a consumer that restarts from its last position misses nothing and sees nothing twice:
positions are the store's notification ids, and a page never reaches past the log's head as
read before the page's query. On PostgreSQL the library's recorder takes a table lock on every
insert (`LOCK TABLE ... IN EXCLUSIVE MODE`), so ids are given in commit order: every id up to
the head read is committed, and no event can appear later below it. SQLite has one writer.
So `next` (the last event's position, or the head when the page is not full, which also steps
past events the `types` filter left out) is a safe place to resume.

A long poll (`wait`) holds no database connection while it waits: it sleeps on `HeadWatch`,
one per process, woken by the one listener of the process (the read models', which hear this
process's saves and PostgreSQL's NOTIFY on the events table's channel), or, without them, by
a LISTEN of its own or (SQLite) a look at the head every few ms while someone waits."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import msgspec
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import Notification
from eventsourcing.utils import get_topic

from lifecycle.aggregates.accounts import Account
from lifecycle.aggregates.api_keys import ApiKey, KeyRing
from lifecycle.aggregates.bulk_job import BulkJob
from lifecycle.aggregates.contract import Contract
from lifecycle.aggregates.idempotency import CommandAnswer
from lifecycle.aggregates.index import Index
from lifecycle.aggregates.shipments import Ticket, Unit
from lifecycle.application.history import plain
from lifecycle.application.sealing import Sealed
from lifecycle.application.transcodings import VALUE_TYPES
from lifecycle.domain.errors import EventTypeUnknown

AGGREGATES: tuple[type[Aggregate], ...] = (Contract, Account, Unit, Ticket, BulkJob, ApiKey, KeyRing, CommandAnswer, Index)
SPEC_VERSION = "1.0"
# Never in the feed, whoever reads it: credentials' hashes.
SECRET_FIELDS = frozenset({"password_hash", "secret_hash"})
ENVELOPE = frozenset({"originator_id", "originator_version", "timestamp", "originator_topic"})
_NOT_DATA = ENVELOPE | SECRET_FIELDS


def _event_types() -> dict[str, str]:
    """CloudEvents type (`lifecycle.Contract.TicketRegistered`) -> the stored topic."""
    types: dict[str, str] = {}
    for aggregate in AGGREGATES:
        for name, value in vars(aggregate).items():
            if isinstance(value, type) and issubclass(value, Aggregate.Event) and name != "Event":
                types[f"lifecycle.{aggregate.__name__}.{name}"] = get_topic(value)
    return types


EVENT_TYPES = _event_types()
TYPE_OF_TOPIC = {topic: name for name, topic in EVENT_TYPES.items()}
CONTRACT_TOPICS = frozenset(t for name, t in EVENT_TYPES.items() if name.startswith("lifecycle.Contract."))


SEALED = "(sealed)"  # a personal field as the `events` role sees it: sealed, never opened


def _visible(value: Any) -> Any:
    if isinstance(value, Sealed):
        return SEALED
    if isinstance(value, dict):
        return {k: _visible(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_visible(v) for v in value]
    return value


def visible_state(state: dict[str, Any]) -> dict[str, Any]:
    """A decoded event's state as JSON values, personal fields sealed (docs/privacy.md) shown as
    sealed; with `_visible_stored` (the same from the stored JSON), the place to adapt when a
    role may see them opened."""
    return _visible(plain(state))


def event_data(state: dict[str, Any]) -> dict[str, Any]:
    """The `data` of an event as the `events` role sees it, from its `visible_state`: the
    event's fields less the envelope and credentials' hashes."""
    return {k: v for k, v in state.items() if k not in _NOT_DATA}


class _TypeUnknown(Exception):
    pass


# The stored JSON's tagged values ({"_type_": name, "_data_": ...}, the transcoder's) as
# `visible_state` shows them once decoded: the same JSON values straight from the stored bytes,
# without making and unmaking the objects (most of a page's cost). A tag not listed takes the
# decoder (tests/unit/test_event_feed_rendering.py checks both agree for every event type).
_AS_TEXT = frozenset({"datetime_iso", "date_iso"})  # isoformat() both ways
_DATACLASSES = frozenset(cls.__name__ for cls in VALUE_TYPES)  # stored as their fields
_decode_stored = msgspec.json.Decoder().decode


def _visible_stored(value: Any) -> Any:
    if isinstance(value, dict):
        if "_type_" in value and "_data_" in value and len(value) == 2:
            tag, data = value["_type_"], value["_data_"]
            if tag in _AS_TEXT:
                return data
            if tag == "uuid_hex" and len(data) == 32:
                return f"{data[:8]}-{data[8:12]}-{data[12:16]}-{data[16:20]}-{data[20:]}"
            if tag == "sealed":
                return SEALED
            if tag in _DATACLASSES:
                return _visible_stored(data)
            raise _TypeUnknown(tag)
        return {k: _visible_stored(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_visible_stored(v) for v in value]
    return value


@dataclass(frozen=True)
class Page:
    events: list[dict[str, Any]]
    next: int  # where to resume: after=next


class HeadWatch:
    """Wakes the long polls of one process when the log grows."""

    def __init__(self, head: Callable[[], int], *, poll_seconds: float = 0.02) -> None:
        self._head = head
        self._poll_seconds = poll_seconds
        self._changed = threading.Condition()
        self._generation = 0
        self._waiting = 0
        self._poller: threading.Thread | None = None
        self._stopping = threading.Event()
        self.push = False  # True when something tells it of every save (PostgreSQL's LISTEN)

    def changed(self) -> None:
        with self._changed:
            self._generation += 1
            self._changed.notify_all()

    def wait(self, seen_head: int, timeout: float) -> None:
        """Returns when the log may have grown past `seen_head`, or after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            generation = self._generation
            self._waiting += 1
            if not self.push and (self._poller is None or not self._poller.is_alive()):
                self._poller = threading.Thread(target=self._poll, args=(seen_head,), name="events-head", daemon=True)
                self._poller.start()
            try:
                while self._generation == generation and not self._stopping.is_set():
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return
                    self._changed.wait(remaining)
            finally:
                self._waiting -= 1

    def _poll(self, head: int) -> None:
        """While anyone waits: one look at the head every poll_seconds, for the whole process."""
        while not self._stopping.wait(self._poll_seconds):
            with self._changed:
                if not self._waiting:
                    self._poller = None
                    return
            try:
                now = self._head()
            except Exception:  # noqa: BLE001 - the store away: the waiters time out, the next look tries again
                continue
            if now != head:
                head = now
                self.changed()

    def stop(self) -> None:
        self._stopping.set()
        self.changed()


class EventFeed:
    """The pages of the feed; a BackgroundService of the Runtime (its listener, if any)."""

    def __init__(self, app: Any, watch: HeadWatch, listener: Any = None, *, pushed: bool = False,
                 wait_max_seconds: float = 30.0, waiters_max: int = 16, numbers_max: int = 1000) -> None:
        self.app = app
        self.recorder = app.recorder
        self.decode = app.mapper.transcoder.decode
        self.watch = watch
        self.listener = listener  # PostgreSQL's LISTEN on the events channel, calling watch.changed
        # Told of every save by the read models (this process's and, by LISTEN, others'): no
        # listener of its own, nor polling.
        self._pushed = pushed
        watch.push = pushed or listener is not None
        self.wait_max_seconds = wait_max_seconds
        self._waiters = threading.BoundedSemaphore(waiters_max)
        self._numbers: dict[str, str] = {}  # contract id -> number, never changes once made
        self._numbers_max = numbers_max  # emptied before a page when it holds this many

    def topics_for(self, types: Sequence[str]) -> tuple[str, ...]:
        unknown = [t for t in types if t not in EVENT_TYPES]
        if unknown:
            raise EventTypeUnknown(
                f"Unknown event type {unknown[0][:80]!r}; types read like 'lifecycle.Contract.TicketRegistered'.",
                known=sorted(EVENT_TYPES),
            )
        return tuple(EVENT_TYPES[t] for t in types)

    def read(self, after: int, limit: int, types: Sequence[str] = (), wait: float = 0.0) -> Page:
        topics = self.topics_for(types)
        deadline = time.monotonic() + min(max(wait, 0.0), self.wait_max_seconds)
        waiting = False
        try:
            while True:
                head = self.recorder.max_notification_id() or 0
                if head > after:
                    batch = self.recorder.select_notifications(
                        start=after, limit=limit, stop=head, topics=topics, inclusive_of_start=False
                    )
                    following = batch[-1].id if len(batch) == limit else head
                    if batch:
                        return Page(self._cloud_events(batch), following)
                    after = following  # past the events the filter left out
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return Page([], after)
                if not waiting:
                    if not self._waiters.acquire(blocking=False):
                        return Page([], after)  # enough consumers wait already: this one asks again
                    waiting = True
                self.watch.wait(head, remaining)
        finally:
            if waiting:
                self._waiters.release()

    def _visible_state(self, notification: Notification) -> dict[str, Any]:
        try:
            return _visible_stored(_decode_stored(notification.state))
        except (_TypeUnknown, msgspec.DecodeError):
            return visible_state(self.decode(notification.state))

    def _cloud_events(self, batch: Sequence[Notification]) -> list[dict[str, Any]]:
        states = [self._visible_state(n) for n in batch]
        if len(self._numbers) >= self._numbers_max:
            self._numbers.clear()  # what this page needs is read again below
        for n, state in zip(batch, states):
            if n.topic in CONTRACT_TOPICS and "contract_number" in state:
                self._numbers[str(n.originator_id)] = state["contract_number"]
        missing = {str(n.originator_id) for n in batch if n.topic in CONTRACT_TOPICS} - self._numbers.keys()
        for originator in missing:
            self._numbers[originator] = self._contract_number(UUID(originator))
        events = []
        for n, state in zip(batch, states):
            originator = str(n.originator_id)
            name = TYPE_OF_TOPIC.get(n.topic) or "lifecycle." + n.topic.rpartition(":")[2]
            event = {
                "specversion": SPEC_VERSION,
                "id": f"{originator}/{n.originator_version}",
                "source": f"/lifecycle/{name.split('.')[1]}/{originator}",
                "type": name,
                "time": state.get("timestamp"),
                "sequence": str(n.originator_version),
                "position": n.id,
                "datacontenttype": "application/json",
                "data": event_data(state),
            }
            number = self._numbers.get(originator)
            if number is not None:
                event["subject"] = number
            events.append(event)
        return events

    def _contract_number(self, contract_id: UUID) -> str:
        """From the contract's first event (its number never changes)."""
        [created] = self.recorder.select_events(contract_id, lte=1, limit=1)
        return self.decode(created.state)["contract_number"]

    def start(self) -> None:
        self.app.save_listeners.append(self.watch.changed)
        if self.listener is not None:
            self.listener.start()

    def stop(self) -> None:
        if self.watch.changed in self.app.save_listeners:
            self.app.save_listeners.remove(self.watch.changed)
        if self.listener is not None:
            self.listener.stop()
        self.watch.stop()


json_batch = msgspec.json.Encoder().encode  # a page's events as one CloudEvents JSON batch
