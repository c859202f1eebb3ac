"""What every read model's projection has: its tables and topics, one handler per event
(the library's `Projection.process_event`, dispatched on the event's class), and the rows
of the batch being applied."""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

from eventsourcing.dispatch import singledispatchmethod
from eventsourcing.persistence import Notification, Tracking
from eventsourcing.projection import Projection
from eventsourcing.utils import get_topic

from lifecycle.projections.engine.views import Changes, ReadModelView, Row, Table

_MISSING = object()


class Rows:
    """The rows a batch reads and writes. Reads go through a cache kept across batches (the
    runner is the only writer of its view), so catching up does not query row by row; the
    cache is dropped whenever a batch is rolled back."""

    def __init__(self, view: ReadModelView, capacity: int = 200_000) -> None:
        self.view = view
        self.capacity = capacity
        self.changes = Changes()
        self._cache: dict[str, dict[Any, Row | None]] = {name: {} for name in view.tables}
        self._size = 0
        # True while the cache, with the keys evicted from it, covers every row of the view:
        # a key in neither then has no row, and is not looked up.
        self._complete = False
        self._evicted: dict[str, set[Any]] = {name: set() for name in view.tables}

    def begin(self) -> None:
        # A new Changes: the previous batch's may still be being committed.
        self.changes = Changes()
        if self._size == 0 and not self._complete:
            self._complete = self.view.position() == 0

    def over_capacity(self) -> bool:
        return self._size > self.capacity

    def end(self) -> None:
        """After a commit (and none pending): keeps the cache within its capacity."""
        self.changes = Changes()
        if self._size > self.capacity:
            self._evict_oldest_half()

    def _evict_oldest_half(self) -> None:
        for name, cache in self._cache.items():
            keys = list(itertools.islice(cache, len(cache) // 2))
            for key in keys:
                if cache.pop(key) is not None:
                    self._evicted[name].add(key)
        self._size = sum(len(cache) for cache in self._cache.values())

    def forget(self) -> None:
        self._cache = {name: {} for name in self.view.tables}
        self._evicted = {name: set() for name in self.view.tables}
        self._size = 0
        self._complete = False

    def get(self, table: str, key: Any) -> Row | None:
        """The row (to change in place and `put` back), or None."""
        cache = self._cache[table]
        row = cache.get(key, _MISSING)
        if row is _MISSING:
            known_missing = self._complete and key not in self._evicted[table]
            row = None if known_missing else self.view.fetch(table, key)
            cache[key] = row
            self._size += 1
        return row  # type: ignore[return-value]

    def put(self, table: str, row: Row) -> Row:
        spec = self.view.tables[table]
        if row.keys() != spec.columns.keys():
            row = {**spec.blank(), **{k: v for k, v in row.items() if k in spec.columns}}
        key = row[spec.key]
        if self._cache[table].get(key, _MISSING) is _MISSING:
            self._size += 1
        self._cache[table][key] = row
        self.changes.upserts.setdefault(table, {})[key] = row
        deletes = self.changes.deletes.get(table)
        if deletes:
            deletes.discard(key)
        return row

    def delete(self, table: str, key: Any) -> None:
        self._cache[table][key] = None
        self.changes.upserts.get(table, {}).pop(key, None)
        self.changes.deletes.setdefault(table, set()).add(key)


class StoredEventFailed(Exception):
    """`process_stored` could not apply this stored event (the cause is chained)."""

    def __init__(self, notification: Notification) -> None:
        super().__init__(f"stored event at position {notification.id}")
        self.notification = notification


def topics_of(*event_classes: type) -> tuple[str, ...]:
    return tuple(get_topic(cls) for cls in event_classes)


class ReadModelProjection(Projection[ReadModelView]):
    """A projection into tables. Subclasses give `name`, `tables`, `topics` and register one
    handler per event class on `process_event`."""

    name = ""
    tables: ClassVar[tuple[Table, ...]] = ()
    topics: tuple[str, ...] = ()
    # Raised when the handlers change how rows are derived: the read model is rebuilt once.
    revision: ClassVar[int] = 1
    # True for a projection of the stored bytes themselves (the audit tree): the runner hands
    # it each batch of stored events (`process_stored`) instead of domain events one by one.
    reads_stored_events: ClassVar[bool] = False
    # The pause between batches while saves keep coming, when this projection wants its own
    # (None: the setting's): one that no read waits for can gather more per transaction.
    gather_seconds: ClassVar[float | None] = None

    def __init__(self, view: ReadModelView) -> None:
        super().__init__(view)
        self.rows = Rows(view)

    @classmethod
    def table_specs(cls) -> Iterable[Table]:
        return cls.tables

    @singledispatchmethod
    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        """Events this read model does not show change nothing."""

    def process_stored(self, notifications: Sequence[Notification]) -> None:
        """A batch of stored events, as the log holds them (projections that `reads_stored_events`);
        raises StoredEventFailed from the error at an event it cannot apply. Each row it puts is a
        new dict, never changed afterwards: the batch is committed while the next is applied."""
        raise NotImplementedError
