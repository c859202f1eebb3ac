"""The stored events of many aggregates in one query (the library reads one aggregate per
query): a bulk batch needs the units, tickets and row claims of hundreds of rows at once,
and one round trip per aggregate was most of its time."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from uuid import UUID

from eventsourcing.persistence import InterfaceError, OperationalError, StoredEvent
from eventsourcing.postgres import PostgresAggregateRecorder
from eventsourcing.sqlite import SQLiteAggregateRecorder
from eventsourcing.utils import retry


def select_events_of(recorder: Any, ids: Sequence[UUID]) -> dict[UUID, list[StoredEvent]]:
    """Every stored event of each aggregate named, in version order (absent ones: no key)."""
    found: dict[UUID, list[StoredEvent]] = {}
    if not ids:
        return found
    if isinstance(recorder, PostgresAggregateRecorder):
        statement = (
            f'SELECT originator_id, originator_version, topic, state FROM "{recorder.datastore.schema}".'
            f'"{recorder.events_table_name}" WHERE originator_id = ANY(%s) ORDER BY originator_id, originator_version'
        )
        with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, (list(ids),))
            rows = [(row["originator_id"], row) for row in curs.fetchall()]
    elif isinstance(recorder, SQLiteAggregateRecorder):
        marks = ",".join("?" * len(ids))
        statement = (
            f"SELECT originator_id, originator_version, topic, state FROM {recorder.events_table_name} "
            f"WHERE originator_id IN ({marks}) ORDER BY originator_id, originator_version"
        )
        with recorder.datastore.transaction(commit=False) as curs:
            curs.execute(statement, [i.hex for i in ids])
            rows = [(UUID(row["originator_id"]), row) for row in curs.fetchall()]
    else:  # the in-memory store: one aggregate at a time
        return {i: list(events) for i in ids if (events := recorder.select_events(i))}
    return _by_aggregate(rows)


@retry((InterfaceError, OperationalError), max_attempts=10, wait=0.2)  # as the library's own reads
def select_events_after(recorder: Any, after: Mapping[UUID, int]) -> dict[UUID, list[StoredEvent]]:
    """The stored events of each aggregate named, after the version given for it (0: all of
    them), in version order, in one query: a command's aggregates read together."""
    if not after:
        return {}
    if isinstance(recorder, PostgresAggregateRecorder):
        statement = (
            f'SELECT originator_id, originator_version, topic, state FROM "{recorder.datastore.schema}".'
            f'"{recorder.events_table_name}" e JOIN unnest(%s::uuid[], %s::bigint[]) AS a(id, version) '
            "ON e.originator_id = a.id AND e.originator_version > a.version ORDER BY originator_id, originator_version"
        )
        with recorder.datastore.get_connection() as conn, conn.cursor() as curs:
            curs.execute(statement, (list(after), list(after.values())), prepare=True)
            rows = [(row["originator_id"], row) for row in curs.fetchall()]
    elif isinstance(recorder, SQLiteAggregateRecorder):
        where = " OR ".join(["(originator_id = ? AND originator_version > ?)"] * len(after))
        statement = (
            f"SELECT originator_id, originator_version, topic, state FROM {recorder.events_table_name} "
            f"WHERE {where} ORDER BY originator_id, originator_version"
        )
        with recorder.datastore.transaction(commit=False) as curs:
            curs.execute(statement, [value for i, v in after.items() for value in (i.hex, v)])
            rows = [(UUID(row["originator_id"]), row) for row in curs.fetchall()]
    else:  # the in-memory store: one aggregate at a time
        return {i: list(events) for i, v in after.items() if (events := recorder.select_events(i, gt=v or None))}
    return _by_aggregate(rows)


def _by_aggregate(rows: list[tuple[UUID, Any]]) -> dict[UUID, list[StoredEvent]]:
    found: dict[UUID, list[StoredEvent]] = {}
    for originator_id, row in rows:
        found.setdefault(originator_id, []).append(
            StoredEvent(
                originator_id=originator_id,
                originator_version=row["originator_version"],
                topic=row["topic"],
                state=bytes(row["state"]),
            )
        )
    return found


def delete_snapshots_of(recorder: Any, originator_id: UUID) -> None:
    """Deletes an aggregate's snapshots (copies of its state, not events: the next load
    replays its events and a new one is taken): those taken before personal fields were
    sealed hold them in clear (docs/privacy.md)."""
    if isinstance(recorder, PostgresAggregateRecorder):
        statement = f'DELETE FROM "{recorder.datastore.schema}"."{recorder.events_table_name}" WHERE originator_id = %s'
        with recorder.datastore.transaction(commit=True) as curs:
            curs.execute(statement, (originator_id,))
    elif isinstance(recorder, SQLiteAggregateRecorder):
        with recorder.datastore.transaction(commit=True) as curs:
            curs.execute(f"DELETE FROM {recorder.events_table_name} WHERE originator_id = ?", (originator_id.hex,))
    else:  # the in-memory store
        with recorder._database_lock:  # noqa: SLF001 - the POPO recorder keeps them in a dict
            recorder._stored_events_index.pop(str(originator_id), None)  # noqa: SLF001
