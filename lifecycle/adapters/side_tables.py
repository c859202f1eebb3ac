"""Operational rows kept in the event store's own database beside the events (customers'
sessions, API keys' last use, uploaded bulk sheets): not events, since what they hold is not a
change to record. SQL is written once with %s placeholders; SQLite's spelling is made from it.
Instants are fixed-width UTC text, so that comparing text compares instants in both stores."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any

from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore

# The read models' DDL lock: processes starting together change the schema one at a time.
DDL_LOCK = "SELECT pg_advisory_xact_lock(hashtext('lifecycle read-model ddl'))"


def utc_text(at: datetime) -> str:
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")


def utc_instant(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


class SideTables:
    """Tables of the store's database, on PostgreSQL (in the store's schema) or SQLite."""

    def __init__(self, datastore: Any) -> None:
        self.datastore = datastore
        self.postgres = isinstance(datastore, PostgresDatastore)
        if not self.postgres and not isinstance(datastore, SQLiteDatastore):
            raise TypeError(f"no {type(self).__name__} for {type(datastore).__name__}")
        self._prefix = f'"{datastore.schema}".' if self.postgres else ""

    def qualified(self, table: str) -> str:
        return f"{self._prefix}{table}"

    @contextmanager
    def _cursor(self, commit: bool) -> Iterator[Any]:
        with self.datastore.transaction(commit=commit) as cursor:
            yield cursor

    def _run(self, cursor: Any, statement: str, params: tuple[Any, ...] = ()) -> None:
        cursor.execute(statement if self.postgres else statement.replace("%s", "?"), params)

    def _create(self, *statements: str) -> None:
        with self._cursor(True) as cursor:
            if self.postgres:
                self._run(cursor, DDL_LOCK)
            for statement in statements:
                self._run(cursor, statement)
