"""Read-model views: the tables a projection writes, in the event store's own database,
changed in the same transaction as the projection's tracking position.

Each view is one of the eventsourcing library's tracking recorders (PostgreSQL or SQLite)
extended with the projection's tables. A batch of changes is committed only if the tracking
position is still the one the batch started from (compare-and-set), so two processes that
both believe they run a projection can never apply the same events twice.
"""

from __future__ import annotations

import hashlib
import re
from abc import abstractmethod
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.persistence import TrackingRecorder
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteDatastore, SQLiteTrackingRecorder

from lifecycle.ports import PositionMoved

Row = dict[str, Any]

TRACKING_TABLE = "projection_tracking"  # PostgreSQL; SQLite's recorder has one fixed table
REBUILD_SUFFIX = "__rebuild"


@dataclass(frozen=True)
class Table:
    """One table of a read model: its columns (name -> SQL type), key and indexes."""

    name: str
    columns: Mapping[str, str]
    key: str
    indexes: tuple[tuple[str, ...], ...] = ()

    def blank(self) -> Row:
        return dict.fromkeys(self.columns)


class RebuildBehind(Exception):
    """The live read model has moved past the rebuilt one: not switched; catch up and retry."""


@dataclass
class Changes:
    """What one batch changes: rows to write and keys to delete, per table."""

    upserts: dict[str, dict[Any, Row]] = field(default_factory=dict)
    deletes: dict[str, set[Any]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return any(self.upserts.values()) or any(self.deletes.values())

    def copy(self) -> Changes:
        return Changes(
            {name: {key: dict(row) for key, row in rows.items()} for name, rows in self.upserts.items()},
            {name: set(keys) for name, keys in self.deletes.items()},
        )


_NAMED_PARAM = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


class ReadModelView(TrackingRecorder):
    """What both stores share. `suffix` names a generation: "" is the live one, a rebuild
    writes into tables with REBUILD_SUFFIX and swaps them in."""

    projection_name: str
    tables: dict[str, Table]
    suffix: str
    topics: tuple[str, ...] = ()
    revision: int = 1  # of the projection's handlers: a fix to how rows are derived rebuilds them

    def _setup(self, projection_name: str, tables: Iterable[Table], suffix: str) -> None:
        self.projection_name = projection_name
        self.tables = {t.name: t for t in tables}
        self.suffix = suffix

    # --- names ----------------------------------------------------------------------

    @property
    def tracking_name(self) -> str:
        return f"{self.projection_name}{self.suffix}"

    @property
    def generation_name(self) -> str:
        """The tracking row counting the rebuilds switched in (its "position"): a runner whose
        cached rows came from older tables finds its batch refused (PositionMoved)."""
        return f"{self.tracking_name}#generation"

    def generation(self) -> int:
        return self.max_tracking_id(self.generation_name) or 0

    def bare(self, name: str, suffix: str | None = None) -> str:
        """The stored name of one of this read model's tables."""
        return f"rm_{self.projection_name}_{name}{self.suffix if suffix is None else suffix}"

    def table(self, name: str, suffix: str | None = None) -> str:
        """The name as queries give it (PostgreSQL: within the store's schema)."""
        return self.qualify(self.bare(name, suffix))

    def qualify(self, name: str) -> str:
        return name

    def _index_name(self, table: Table, columns: tuple[str, ...], suffix: str) -> str:
        digest = hashlib.blake2b(f"{self.projection_name}.{table.name}.{columns}".encode(), digest_size=4).hexdigest()
        return f"ix_{self.projection_name}_{table.name}_{digest}{suffix}"[:63]

    # --- the store's own ways (implemented per store) ---------------------------------

    @abstractmethod
    def _execute_script(self, statements: Sequence[str]) -> None:
        ...

    @abstractmethod
    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        """Runs a read with `:name` parameters; `{name}` in the SQL is this view's table."""
        ...

    @abstractmethod
    def tracked_transaction(
        self, expected: int | None, position: int, generation: int | None = None
    ) -> AbstractContextManager[Any]:
        """A transaction that commits only if the tracking position is still `expected`
        (else PositionMoved), and moves it to `position` with whatever the caller wrote:
        the one tracking mechanism of every read model and of the timer table. With a
        `generation`, also only if no rebuild was switched in since the caller read it."""

    @abstractmethod
    def resetting_transaction(self) -> AbstractContextManager[Any]:
        """A transaction that also forgets the tracking position."""

    @abstractmethod
    def commit(self, expected: int | None, position: int, changes: Changes, generation: int | None = None) -> None:
        ...

    @abstractmethod
    def swap_in(self, fresh: ReadModelView) -> None:
        """Switches the rebuilt tables in for the live ones in one transaction, the live
        position becoming the rebuilt one's; RebuildBehind (nothing switched) when the live
        model is ahead of the rebuilt one, so that no read ever sees fewer events than it was
        promised. Counts a generation, so the live runners drop their cached rows."""

    # --- shared ---------------------------------------------------------------------

    def create_tables(self) -> None:
        statements = []
        for t in self.tables.values():
            columns = ", ".join(f"{name} {kind}" for name, kind in t.columns.items())
            statements.append(f"CREATE TABLE IF NOT EXISTS {self.table(t.name)} ({columns}, PRIMARY KEY ({t.key}))")
            for index in t.indexes:
                statements.append(
                    f"CREATE INDEX IF NOT EXISTS {self._index_name(t, index, self.suffix)} "
                    f"ON {self.table(t.name)} ({', '.join(index)})"
                )
        self._execute_script(statements)

    def analyze(self) -> None:
        """Fresh planner statistics, after many rows changed at once (a catch-up, a rebuild)."""
        self._execute_script([f"ANALYZE {self.table(t)}" for t in self.tables])

    def fingerprint(self) -> str:
        """Of the tables, of the events that fill them and of the handlers' revision: a change
        to any of them rebuilds."""
        spec = repr(
            [(t.name, sorted(t.columns.items()), t.key, t.indexes) for t in self.tables.values()]
            + sorted(getattr(self, "topics", ()))
            + ([("revision", self.revision)] if self.revision != 1 else [])
        )
        return hashlib.blake2b(spec.encode(), digest_size=8).hexdigest()

    def ensure_definition(self) -> None:
        """Tables made by another definition of this read model (an older release) are
        dropped with their tracking position, so the runner rebuilds them from zero."""
        self._execute_script(
            [f"CREATE TABLE IF NOT EXISTS {self.qualify('projection_definitions')} "
             "(projection_name text PRIMARY KEY, fingerprint text)"]
        )
        name = {"name": self.projection_name}
        stored = self.query(
            f"SELECT fingerprint FROM {self.qualify('projection_definitions')} WHERE projection_name = :name", name
        )
        if stored and stored[0]["fingerprint"] == self.fingerprint():
            return
        self.drop_tables()
        self._store_fingerprint()

    @abstractmethod
    def _store_fingerprint(self) -> None:
        ...

    def drop_tables(self) -> None:
        self._execute_script([f"DROP TABLE IF EXISTS {self.table(t)}" for t in self.tables])
        self._reset_tracking()

    @abstractmethod
    def _reset_tracking(self) -> None:
        ...

    def position(self) -> int:
        return self.max_tracking_id(self.tracking_name) or 0

    def fetch(self, table: str, key: Any) -> Row | None:
        t = self.tables[table]
        rows = self.query(f"SELECT * FROM {{{table}}} WHERE {t.key} = :key", {"key": key})
        return rows[0] if rows else None

    def _sql(self, sql: str) -> str:
        return sql.format(**{name: self.table(name) for name in self.tables})

    def _upsert_sql(self, table: Table, placeholder: str) -> str:
        columns = list(table.columns)
        values = ", ".join(placeholder.format(c) for c in columns)
        updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c != table.key)
        return (
            f"INSERT INTO {self.table(table.name)} ({', '.join(columns)}) VALUES ({values}) "
            f"ON CONFLICT ({table.key}) DO UPDATE SET {updates}"
        )


class PostgresReadModel(ReadModelView, PostgresTrackingRecorder):
    def __init__(
        self, datastore: PostgresDatastore, *, projection_name: str, tables: Iterable[Table], suffix: str = ""
    ) -> None:
        super().__init__(datastore, tracking_table_name=TRACKING_TABLE)
        self._setup(projection_name, tables, suffix)

    def qualify(self, name: str) -> str:
        return f'"{self.datastore.schema}".{name}'

    def _execute_script(self, statements: Sequence[str]) -> None:
        with self.datastore.transaction(commit=True) as curs:
            # Schema changes, ANALYZE and rebuild swaps may wait for one another and take long:
            # not bounded by LIFECYCLE_DATABASE_STATEMENT_TIMEOUT_SECONDS, which is for requests.
            curs.execute("SET LOCAL statement_timeout = 0")
            # Server processes starting together would race on CREATE ... IF NOT EXISTS
            # (a duplicate pg_type row): one schema change at a time.
            curs.execute("SELECT pg_advisory_xact_lock(hashtext('lifecycle read-model ddl'))")
            for statement in statements:
                curs.execute(statement)  # type: ignore[arg-type]

    def _pg(self, sql: str) -> str:
        return _NAMED_PARAM.sub(r"%(\1)s", self._sql(sql).replace("%", "%%"))

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        with self.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(self._pg(sql), dict(_holdable(params or {})), prepare=True)  # type: ignore[arg-type]
            return [dict(row) for row in curs.fetchall()]

    def _tracking_sql(self, sql: str) -> str:
        return sql.format(tracking=f'"{self.datastore.schema}"."{self.tracking_table_name}"')

    @contextmanager
    def tracked_transaction(self, expected: int | None, position: int, generation: int | None = None) -> Iterator[Any]:
        with self.datastore.transaction(commit=True) as curs:
            # Without waiting for the WAL flush: a crash can lose only whole batches, rows and
            # position together, and the runner applies them again from the log.
            curs.execute("SET LOCAL synchronous_commit TO OFF")
            if not expected:
                # No row to lock yet: two first batches would both insert one.
                curs.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"tracking {self.tracking_name}",))
            curs.execute(
                self._tracking_sql(
                    "SELECT application_name, notification_id FROM {tracking} "
                    "WHERE application_name IN (%s, %s) FOR UPDATE"
                ),
                (self.tracking_name, self.generation_name),
            )
            _check_tracking(self, _positions(curs.fetchall()), expected, generation)
            yield curs
            curs.execute(
                self._tracking_sql(
                    "INSERT INTO {tracking} VALUES (%s, %s) ON CONFLICT (application_name) "
                    "DO UPDATE SET notification_id = excluded.notification_id"
                ),
                (self.tracking_name, position),
            )

    @contextmanager
    def resetting_transaction(self) -> Iterator[Any]:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"tracking {self.tracking_name}",))
            yield curs
            curs.execute(
                self._tracking_sql("DELETE FROM {tracking} WHERE application_name = %s"), (self.tracking_name,)
            )

    def commit(self, expected: int | None, position: int, changes: Changes, generation: int | None = None) -> None:
        with self.tracked_transaction(expected, position, generation) as curs:
            self._write_changes(curs, changes)

    # Above this many rows a table's changes go through COPY into a temporary table and one
    # INSERT ... ON CONFLICT: several times faster than a statement per row when catching up.
    COPY_FROM_ROWS = 200

    def _write_changes(self, curs: Any, changes: Changes) -> None:
        small = Changes(deletes={name: {_holdable_value(k) for k in keys} for name, keys in changes.deletes.items()})
        for name, rows in changes.upserts.items():
            rows = {key: _holdable(row) for key, row in rows.items()}
            if len(rows) < self.COPY_FROM_ROWS:
                small.upserts[name] = rows
                continue
            table = self.tables[name]
            columns = list(table.columns)
            names = ", ".join(columns)
            staging = f"staging_{self.projection_name}_{name}"[:63]
            curs.execute(  # temporary tables belong to the session: made once per connection
                f"CREATE TEMPORARY TABLE IF NOT EXISTS {staging} (LIKE {self.table(name)}) ON COMMIT DELETE ROWS"
            )
            with curs.copy(f"COPY {staging} ({names}) FROM STDIN") as copy:
                for row in rows.values():
                    copy.write_row([row[c] for c in columns])
            updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c != table.key)
            curs.execute(
                f"INSERT INTO {self.table(name)} ({names}) SELECT {names} FROM {staging} "
                f"ON CONFLICT ({table.key}) DO UPDATE SET {updates}"
            )
        _write_changes(curs, self, small, "%({})s")

    def _reset_tracking(self) -> None:
        with self.resetting_transaction():
            pass

    def analyze(self) -> None:
        # VACUUM too: it sets the visibility map that lets the dashboards count from indexes alone.
        with self.datastore.get_connection() as conn:
            for t in self.tables:
                conn.execute(f"VACUUM (ANALYZE) {self.table(t)}")  # type: ignore[arg-type]

    def _store_fingerprint(self) -> None:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(  # type: ignore[arg-type]
                f"INSERT INTO {self.qualify('projection_definitions')} VALUES (%s, %s) "
                "ON CONFLICT (projection_name) DO UPDATE SET fingerprint = excluded.fingerprint",
                (self.projection_name, self.fingerprint()),
            )

    def swap_in(self, fresh: ReadModelView) -> None:
        """Replaces the live tables by the rebuilt ones in one transaction: readers wait
        for the swap (milliseconds), never see a half-built model, and never stop."""
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(
                self._tracking_sql("SELECT notification_id FROM {tracking} WHERE application_name = %s FOR UPDATE"),
                (self.tracking_name,),
            )
            _check_not_behind(curs, self._tracking_sql("{tracking}"), "%s", self, fresh)
            for t in self.tables.values():
                curs.execute(f"DROP TABLE IF EXISTS {self.table(t.name)}")  # type: ignore[arg-type]
                curs.execute(f"ALTER TABLE {fresh.table(t.name)} RENAME TO {self.bare(t.name)}")  # type: ignore[arg-type]
                for index in t.indexes:
                    old, new = self._index_name(t, index, fresh.suffix), self._index_name(t, index, self.suffix)
                    curs.execute(f"ALTER INDEX {self.qualify(old)} RENAME TO {new}")  # type: ignore[arg-type]
                pkey = f"{self.bare(t.name, fresh.suffix)}_pkey"[:63]
                curs.execute(  # type: ignore[arg-type]
                    f"ALTER INDEX IF EXISTS {self.qualify(pkey)} RENAME TO {self.bare(t.name)}_pkey"
                )
            _move_tracking(curs, self._tracking_sql("{tracking}"), fresh.tracking_name, self.tracking_name, "%s")
            _count_generation(curs, self._tracking_sql("{tracking}"), self.generation_name, "%s")


class SQLiteReadModel(ReadModelView, SQLiteTrackingRecorder):
    def __init__(
        self, datastore: SQLiteDatastore, *, projection_name: str, tables: Iterable[Table], suffix: str = ""
    ) -> None:
        super().__init__(datastore)
        self._setup(projection_name, tables, suffix)

    def _execute_script(self, statements: Sequence[str]) -> None:
        with self.datastore.transaction(commit=True) as curs:
            for statement in statements:
                curs.execute(statement)

    def query(self, sql: str, params: Mapping[str, Any] | None = None) -> list[Row]:
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._sql(sql), dict(params or {}))
            return [dict(row) for row in curs.fetchall()]

    @contextmanager
    def tracked_transaction(self, expected: int | None, position: int, generation: int | None = None) -> Iterator[Any]:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(
                "SELECT application_name, notification_id FROM tracking WHERE application_name IN (?, ?)",
                (self.tracking_name, self.generation_name),
            )
            _check_tracking(self, _positions(curs.fetchall()), expected, generation)
            yield curs
            curs.execute(
                "INSERT INTO tracking VALUES (?, ?) ON CONFLICT (application_name) "
                "DO UPDATE SET notification_id = excluded.notification_id",
                (self.tracking_name, position),
            )

    @contextmanager
    def resetting_transaction(self) -> Iterator[Any]:
        with self.datastore.transaction(commit=True) as curs:
            yield curs
            curs.execute("DELETE FROM tracking WHERE application_name = ?", (self.tracking_name,))

    def commit(self, expected: int | None, position: int, changes: Changes, generation: int | None = None) -> None:
        with self.tracked_transaction(expected, position, generation) as curs:
            _write_changes(curs, self, changes, ":{}")

    def _reset_tracking(self) -> None:
        with self.resetting_transaction():
            pass

    def _store_fingerprint(self) -> None:
        with self.datastore.transaction(commit=True) as curs:
            curs.execute(
                "INSERT INTO projection_definitions VALUES (?, ?) "
                "ON CONFLICT (projection_name) DO UPDATE SET fingerprint = excluded.fingerprint",
                (self.projection_name, self.fingerprint()),
            )

    def swap_in(self, fresh: ReadModelView) -> None:
        with self.datastore.transaction(commit=True) as curs:
            _check_not_behind(curs, "tracking", "?", self, fresh)
            for t in self.tables.values():
                curs.execute(f"DROP TABLE IF EXISTS {self.table(t.name)}")
                curs.execute(f"ALTER TABLE {fresh.table(t.name)} RENAME TO {self.bare(t.name)}")
                # SQLite cannot rename an index: make the live-named ones anew.
                for index in t.indexes:
                    curs.execute(f"DROP INDEX IF EXISTS {self._index_name(t, index, fresh.suffix)}")
                    curs.execute(
                        f"CREATE INDEX IF NOT EXISTS {self._index_name(t, index, self.suffix)} "
                        f"ON {self.table(t.name)} ({', '.join(index)})"
                    )
            _move_tracking(curs, "tracking", fresh.tracking_name, self.tracking_name, "?")
            _count_generation(curs, "tracking", self.generation_name, "?")


def _holdable_value(value: Any) -> Any:
    return value.replace("\x00", "\ufffd") if type(value) is str and "\x00" in value else value


def _holdable(row: Mapping[str, Any]) -> Mapping[str, Any]:
    """PostgreSQL's text cannot hold NUL. The door refuses it now, but an event stored before
    it did must still reach the read models rather than stop them for good: there its NUL
    reads U+FFFD (the event keeps the original), in rows, keys and lookups alike."""
    for value in row.values():
        if type(value) is str and "\x00" in value:
            return {k: _holdable_value(v) for k, v in row.items()}
    return row


def _write_changes(curs: Any, view: ReadModelView, changes: Changes, placeholder: str) -> None:
    for name, keys in changes.deletes.items():
        if keys:
            t = view.tables[name]
            mark = placeholder.format("key")
            curs.executemany(f"DELETE FROM {view.table(name)} WHERE {t.key} = {mark}", [{"key": k} for k in keys])
    for name, rows in changes.upserts.items():
        if rows:
            curs.executemany(view._upsert_sql(view.tables[name], placeholder), list(rows.values()))


def _positions(rows: Iterable[Any]) -> dict[str, int]:
    """Tracking rows (PostgreSQL's as dicts, SQLite's as tuples) by name."""
    return {r["application_name"]: r["notification_id"] for r in rows} if rows and isinstance(
        next(iter(rows)), dict) else {r[0]: r[1] for r in rows}


def _check_tracking(view: ReadModelView, found: Mapping[str, int], expected: int | None, generation: int | None) -> None:
    if (found.get(view.tracking_name) or 0) != (expected or 0):
        raise PositionMoved(f"{view.tracking_name}: expected {expected}, found {found.get(view.tracking_name)}")
    if generation is not None and (found.get(view.generation_name) or 0) != generation:
        raise PositionMoved(f"{view.tracking_name}: a rebuild was switched in")


def _check_not_behind(curs: Any, table: str, mark: str, live: ReadModelView, fresh: ReadModelView) -> None:
    """In the switch's transaction, the live row locked: the live model is not ahead."""
    curs.execute(
        f"SELECT application_name, notification_id FROM {table} WHERE application_name IN ({mark}, {mark})",
        (live.tracking_name, fresh.tracking_name),
    )
    found = _positions(curs.fetchall())
    live_position, rebuilt = found.get(live.tracking_name) or 0, found.get(fresh.tracking_name) or 0
    if live_position > rebuilt:
        raise RebuildBehind(f"{live.tracking_name}: live at {live_position}, rebuilt at {rebuilt}")


def _count_generation(curs: Any, table: str, name: str, mark: str) -> None:
    curs.execute(
        f"INSERT INTO {table} VALUES ({mark}, 1) ON CONFLICT (application_name) "
        f"DO UPDATE SET notification_id = {table}.notification_id + 1",
        (name,),
    )


def _move_tracking(curs: Any, table: str, source: str, target: str, mark: str) -> None:
    curs.execute(f"SELECT notification_id FROM {table} WHERE application_name = {mark}", (source,))
    found = curs.fetchone()
    position = (found["notification_id"] if isinstance(found, dict) else found[0]) if found else 0
    curs.execute(f"DELETE FROM {table} WHERE application_name IN ({mark}, {mark})", (source, target))
    curs.execute(f"INSERT INTO {table} VALUES ({mark}, {mark})", (target, position))


def build_view(
    datastore: Any,
    projection_name: str,
    tables: Iterable[Table],
    suffix: str = "",
    topics: Iterable[str] = (),
    revision: int = 1,
) -> ReadModelView:
    """The view for the event store's database, its tables created when missing."""
    view: ReadModelView
    if isinstance(datastore, PostgresDatastore):
        view = PostgresReadModel(datastore, projection_name=projection_name, tables=tables, suffix=suffix)
    elif isinstance(datastore, SQLiteDatastore):
        view = SQLiteReadModel(datastore, projection_name=projection_name, tables=tables, suffix=suffix)
    else:  # pragma: no cover - the settings only make these two
        raise TypeError(f"No read-model view for {type(datastore).__name__}")
    view.topics = tuple(topics)
    view.revision = revision
    view.create_table()  # the library's tracking table
    if not suffix:
        view.ensure_definition()
    view.create_tables()
    return view
