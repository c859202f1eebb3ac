"""Where an event stands in the application's log (its notification id)."""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any
from uuid import UUID

from eventsourcing.postgres import PostgresApplicationRecorder
from eventsourcing.sqlite import SQLiteApplicationRecorder


def log_position_of(recorder: Any, originator_id: UUID, version: int) -> int:
    """The notification id of one stored event; the library answers this only for new
    recordings, and a replayed command answer needs it for its first save."""
    if isinstance(recorder, PostgresApplicationRecorder):
        statement = (
            f'SELECT notification_id FROM "{recorder.datastore.schema}"."{recorder.events_table_name}" '
            "WHERE originator_id = %s AND originator_version = %s"
        )
        with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, (originator_id, version))
            row = curs.fetchone()
            return int(row["notification_id"]) if row else 0
    if isinstance(recorder, SQLiteApplicationRecorder):
        with recorder.datastore.transaction(commit=False) as curs:
            curs.execute(
                f"SELECT rowid FROM {recorder.events_table_name} WHERE originator_id = ? AND originator_version = ?",
                (originator_id.hex, version),
            )
            row = curs.fetchone()
            return int(row[0]) if row else 0
    return recorder.max_notification_id() or 0


# The positions reached by the commands of the current request (the API's middleware sets a
# holder per request and answers the last one in a header); a context variable, so the
# application needs to know nothing of HTTP.
_reached: ContextVar[list[int] | None] = ContextVar("reached_positions", default=None)


def collect_positions() -> list[int]:
    """Starts collecting the positions reached in this context; returns the holder."""
    holder: list[int] = []
    _reached.set(holder)
    return holder


def note_position(position: int) -> None:
    holder = _reached.get()
    if holder is not None:
        holder.append(position)
