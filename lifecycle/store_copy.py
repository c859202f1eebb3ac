"""`lifecycle store copy`: moves a store (the embedded SQLite file, typically) into an empty
PostgreSQL database (or any store into any empty one): the log with its notification ids
unchanged (so every leaf of the audit tree, which names its position, is the same, and so is
every root), and the tables beside the log that are state. Read models are not copied: they
are rebuilt on the target from the copied log, the audit tree among them.

What is state and not in the log (API keys, idempotency answers and mail records are events):
STATE_TABLES, the one list to extend when a table of state is added."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

from eventsourcing.postgres import PostgresDatastore

from lifecycle.adapters.personal_keys import KEK_CHECK
from lifecycle.adapters.side_tables import utc_text
from lifecycle.progress import Progress, no_progress

# Tables of state beside the log, copied row for row (customers' sessions, API keys' last use,
# uploaded bulk sheets, the mail timers with their sends and retries, the signed checkpoints).
STATE_TABLES: tuple[str, ...] = (
    "access_sessions",
    "api_key_uses",
    "bulk_uploads",
    "bulk_upload_rows",
    "notification_timers",
    "audit_checkpoints",
    "personal_data_keys",  # the per-subject keys that open sealed personal fields (docs/privacy.md)
)
# Rows a store makes for itself on first start, not copied and not counted as content: the
# proof that the key-encryption key opens the store's keys (the same KEK on both sides).
OWN_ROWS: dict[str, tuple[str, str]] = {"personal_data_keys": ("subject_id", KEK_CHECK)}
# Projections whose tables are copied above rather than rebuilt: their tracking positions too.
COPIED_TRACKING = ("notification_timers",)


class TargetNotEmpty(Exception):
    pass


@dataclass
class Store:
    """One store's database, reached through its datastore (PostgreSQL or SQLite)."""

    datastore: Any
    events_table: str

    @property
    def postgres(self) -> bool:
        return isinstance(self.datastore, PostgresDatastore)

    def name(self, table: str) -> str:
        return f'"{self.datastore.schema}".{table}' if self.postgres else table

    @property
    def tracking_table(self) -> str:
        return self.name("projection_tracking") if self.postgres else "tracking"

    def sql(self, statement: str) -> str:
        return statement if self.postgres else statement.replace("%s", "?")

    def rows(self, statement: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(self.sql(statement), tuple(params))
            return [dict(row) for row in cursor.fetchall()]

    def column_types(self, table: str) -> dict[str, str]:
        if self.postgres:
            rows = self.rows(
                "SELECT column_name AS name, data_type AS type FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name = %s", (self.datastore.schema, table))
        else:
            rows = self.rows(f"PRAGMA table_info({table})")
        return {r["name"]: r["type"].lower() for r in rows}


def _convert(value: Any, target_type: str) -> Any:
    """A value of one store's column as the other store's column holds it (instants: UTC text
    in SQLite, timestamptz in PostgreSQL; days: ISO text or date; bytes: BLOB or bytea)."""
    if value is None:
        return None
    if isinstance(value, memoryview):
        return bytes(value)
    if target_type.startswith("timestamp") and isinstance(value, str):
        return datetime.fromisoformat(value).replace(tzinfo=timezone.utc)
    if target_type == "date" and isinstance(value, str):
        return date.fromisoformat(value)
    if isinstance(value, datetime):
        return utc_text(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def _not_own(table: str) -> tuple[str, tuple[str, ...]]:
    if table not in OWN_ROWS:
        return "", ()
    column, value = OWN_ROWS[table]
    return f" WHERE {column} <> %s", (value,)


def check_empty(target: Store, head: int | None) -> None:
    if head:
        raise TargetNotEmpty(f"the target store already holds events (up to position {head}): it must be empty")
    for table in STATE_TABLES:
        where, params = _not_own(table)
        [row] = target.rows(f"SELECT COUNT(*) AS n FROM {target.name(table)}{where}", params)
        if row["n"]:
            raise TargetNotEmpty(f"the target store's {table} holds {row['n']} rows: it must be empty")


def copy_events(source_recorder: Any, target: Store, *, batch_size: int = 5000,
                progress: Progress = no_progress) -> int:
    """Every stored event, with its notification id; answers how many."""
    head = source_recorder.max_notification_id() or 0
    position, count = 0, 0
    progress(0, head)
    marks = "%s, %s, %s, %s, %s"
    if target.postgres:
        statement = (f"INSERT INTO {target.name(target.events_table)} "
                     f"(notification_id, originator_id, originator_version, topic, state) VALUES ({marks})")
    else:
        statement = (f"INSERT INTO {target.events_table} (rowid, originator_id, originator_version, topic, state) "
                     f"VALUES ({marks})").replace("%s", "?")
    while True:
        batch = source_recorder.select_notifications(start=position, limit=batch_size, inclusive_of_start=False)
        if not batch:
            break
        rows = [
            (n.id, n.originator_id if target.postgres else n.originator_id.hex, n.originator_version, n.topic,
             bytes(n.state))
            for n in batch
        ]
        with target.datastore.transaction(commit=True) as cursor:
            cursor.executemany(statement, rows)
        position, count = batch[-1].id, count + len(batch)
        progress(position, head)
    if target.postgres and count:
        with target.datastore.transaction(commit=True) as cursor:
            cursor.execute(
                "SELECT setval(pg_get_serial_sequence(%s, 'notification_id'), %s)",
                (f'"{target.datastore.schema}".{target.events_table}', position),
            )
    return count


def copy_state(source: Store, target: Store, progress: Progress = no_progress) -> dict[str, int]:
    """The STATE_TABLES row for row, and the copied projections' tracking positions."""
    copied: dict[str, int] = {}
    for number, table in enumerate(STATE_TABLES):
        progress(number, len(STATE_TABLES))
        types = target.column_types(table)
        where, params = _not_own(table)
        rows = source.rows(f"SELECT * FROM {source.name(table)}{where}", params)
        if rows:
            columns = [c for c in rows[0] if c in types]
            statement = target.sql(
                f"INSERT INTO {target.name(table)} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))})")
            with target.datastore.transaction(commit=True) as cursor:
                cursor.executemany(statement, [tuple(_convert(r[c], types[c]) for c in columns) for r in rows])
        copied[table] = len(rows)
    for name in COPIED_TRACKING:
        for row in source.rows(f"SELECT notification_id FROM {source.tracking_table} WHERE application_name = %s",
                               (name,)):
            with target.datastore.transaction(commit=True) as cursor:
                cursor.execute(target.sql(f"DELETE FROM {target.tracking_table} WHERE application_name = %s"), (name,))
                cursor.execute(target.sql(f"INSERT INTO {target.tracking_table} VALUES (%s, %s)"),
                               (name, row["notification_id"]))
    progress(len(STATE_TABLES), len(STATE_TABLES))
    return copied
