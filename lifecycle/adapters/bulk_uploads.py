"""Uploaded bulk-registration sheets and who is working on them: rows in the event store's
own database beside the events (as lifecycle/adapters/credentials.py does), so any process
can resume a job. A job's progress is not here: it is the BulkJob's events.

A worker holds a job by a lease (holder, until). A worker that dies leaves its lease to
run out; `stalled()` then names the job again and another worker takes it. Two workers on
one job would still register nothing twice (the job's events and the registrations are
saved together, under the store's version constraint): the lease only saves the work.

A job handed to the broker and not yet taken holds the lease of QUEUED until its message may
be taken as lost (Redis flushed): a job waiting behind others is not handed out again at
every sweep, by every sweeper, as it was, to be taken by several workers in turn. `requeue`
moves that lease atomically, so of several sweepers only one hands out a stalled job.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from lifecycle.adapters.side_tables import SideTables
from lifecycle.adapters.side_tables import utc_text as _text
from lifecycle.aggregates.bulk_job import QUEUED


class BulkUploadStore(SideTables):
    def __init__(self, datastore: Any) -> None:
        super().__init__(datastore)
        self.table = self.qualified("bulk_uploads")
        self.rows_table = self.qualified("bulk_upload_rows")

    def create_tables(self) -> None:
        blob = "BYTEA" if self.postgres else "BLOB"
        self._create(
            f"CREATE TABLE IF NOT EXISTS {self.table} (job_id TEXT PRIMARY KEY, content {blob} NOT NULL, "
            "created_at TEXT NOT NULL, lease_holder TEXT, lease_until TEXT, finished INTEGER NOT NULL DEFAULT 0)",
            # The rows the upload's reading left to register, as read (a table of its own, so a
            # database made before it keeps working: a job without them reads its file again).
            f"CREATE TABLE IF NOT EXISTS {self.rows_table} (job_id TEXT PRIMARY KEY, rows TEXT NOT NULL)",
        )

    def put(self, job_id: UUID, content: bytes, at: datetime, rows: str | None = None) -> None:
        with self._cursor(True) as cursor:
            self._run(
                cursor,
                f"INSERT INTO {self.table} (job_id, content, created_at) VALUES (%s, %s, %s)",
                (str(job_id), content, _text(at)),
            )
            if rows is not None:
                self._run(cursor, f"INSERT INTO {self.rows_table} (job_id, rows) VALUES (%s, %s)", (str(job_id), rows))

    def rows(self, job_id: UUID) -> str | None:
        with self._cursor(False) as cursor:
            self._run(cursor, f"SELECT rows FROM {self.rows_table} WHERE job_id = %s", (str(job_id),))
            row = cursor.fetchone()
        return None if row is None else str(row["rows"])

    def content(self, job_id: UUID) -> bytes | None:
        with self._cursor(False) as cursor:
            self._run(cursor, f"SELECT content FROM {self.table} WHERE job_id = %s", (str(job_id),))
            row = cursor.fetchone()
        return None if row is None else bytes(row["content"])

    def claim(self, job_id: UUID, holder: str, at: datetime, lease: timedelta) -> bool:
        """Takes or renews the job's lease; False while another holder's lease runs (a job
        waiting in the queue is anybody's)."""
        with self._cursor(True) as cursor:
            self._run(
                cursor,
                f"UPDATE {self.table} SET lease_holder = %s, lease_until = %s WHERE job_id = %s AND finished = 0 "
                "AND (lease_holder IS NULL OR lease_holder IN (%s, %s) OR lease_until < %s)",
                (holder, _text(at + lease), str(job_id), holder, QUEUED, _text(at)),
            )
            return self._changed(cursor)

    def requeue(self, job_id: UUID, at: datetime, wait: timedelta, *, stalled_after: timedelta | None = None) -> bool:
        """Marks the job as waiting in the queue until `at + wait`; True when it was not held
        (with `stalled_after`: only if it is still stalled, see `stalled`): then, and only
        then, the caller hands it to the broker."""
        condition = "lease_holder IS NULL OR lease_until < %s"
        params: tuple[str, ...] = (_text(at),)
        if stalled_after is not None:
            condition = "(lease_until IS NULL AND created_at < %s) OR lease_until < %s"
            params = (_text(at - stalled_after), _text(at))
        with self._cursor(True) as cursor:
            self._run(
                cursor,
                f"UPDATE {self.table} SET lease_holder = %s, lease_until = %s WHERE job_id = %s AND finished = 0 "
                f"AND ({condition})",
                (QUEUED, _text(at + wait), str(job_id), *params),
            )
            return self._changed(cursor)

    @staticmethod
    def _changed(cursor: Any) -> bool:
        # The library's SQLite cursor wraps sqlite3's (and does not pass rowcount on).
        return getattr(cursor, "sqlite_cursor", cursor).rowcount == 1

    def release(self, job_id: UUID, holder: str, *, finished: bool) -> None:
        with self._cursor(True) as cursor:
            self._run(
                cursor,
                f"UPDATE {self.table} SET lease_holder = NULL, lease_until = NULL, finished = %s "
                "WHERE job_id = %s AND lease_holder = %s",
                (1 if finished else 0, str(job_id), holder),
            )

    def finish(self, job_id: UUID) -> None:
        with self._cursor(True) as cursor:
            self._run(cursor, f"UPDATE {self.table} SET finished = 1 WHERE job_id = %s", (str(job_id),))

    def stalled(self, at: datetime, older_than: timedelta) -> list[UUID]:
        """Unfinished jobs nobody holds (a worker's lease or the queue's run out, or never
        queued nor taken for a while)."""
        with self._cursor(False) as cursor:
            self._run(
                cursor,
                f"SELECT job_id FROM {self.table} WHERE finished = 0 AND "
                "((lease_until IS NULL AND created_at < %s) OR lease_until < %s) ORDER BY created_at",
                (_text(at - older_than), _text(at)),
            )
            return [UUID(row["job_id"]) for row in cursor.fetchall()]
