"""Which process runs a singleton job (a projection, the timer scheduler) when several
processes share one store: on PostgreSQL the holder of a session-level advisory lock; the
others stand by and take over when its session ends.

A holder that stops answering without closing its connection (frozen by SIGSTOP, a paused
VM, a hung host) would keep the lock for ever: the server would never end the session, and
no mail would be scheduled or read model kept by anyone. So the lock's session carries
`idle_session_timeout`: the server ends it once the holder has sent nothing on it for that
long. A live holder speaks on it at every turn of its job's loop (`acquire`), far more often."""

from __future__ import annotations

import hashlib
import logging
import time
from typing import Any

from eventsourcing.postgres import PostgresDatastore

from lifecycle.ports import Leadership

log = logging.getLogger(__name__)


class AdvisoryLock(Leadership):
    """A PostgreSQL session-level advisory lock held on a connection of its own for as long
    as this process runs the job."""

    # How often a held lock's session is checked. Between checks a runner may go on after
    # its session died; the jobs' compare-and-set on their positions keeps that harmless.
    RECHECK_SECONDS = 1.0

    def __init__(self, datastore: PostgresDatastore, key: str, timeout_seconds: float = 30.0) -> None:
        self._datastore = datastore
        self._key = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)
        self._timeout_ms = str(max(1, int(timeout_seconds * 1000)))
        self._conn: Any = None
        self._checked_at = 0.0

    def acquire(self) -> bool:
        if self._conn is not None:
            if time.monotonic() - self._checked_at < self.RECHECK_SECONDS:
                return True
            try:
                self._conn.execute("SELECT 1")
                self._checked_at = time.monotonic()
                return True
            except Exception:  # the session ended: so did the lock
                self.release()
        availability = getattr(self._datastore, "availability", None)
        if availability is not None and not availability.is_up:
            return False  # the store is away (lifecycle.adapters.event_store): stand by without waiting on the pool
        try:
            conn = self._datastore.pool.getconn(timeout=self.RECHECK_SECONDS)
        except Exception:  # no connection now (the database may be down): stand by
            return False
        try:
            held = conn.execute("SELECT pg_try_advisory_lock(%s) AS held", (self._key,)).fetchone()["held"]
            if held:  # the session ends, and the lock with it, once this process stops speaking on it
                conn.execute("SELECT set_config('idle_session_timeout', %s, false)", (self._timeout_ms,))
        except Exception:
            conn.close()  # whatever it holds goes with the session; the pool drops it
            self._datastore.pool.putconn(conn)
            return False
        if held:
            self._conn = conn
            self._checked_at = time.monotonic()
            return True
        self._datastore.pool.putconn(conn)
        return False

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            conn.execute("SELECT pg_advisory_unlock(%s)", (self._key,))
        except Exception:
            log.debug("advisory unlock failed; the session's end releases it", exc_info=True)
        self._give_back(conn)

    def _give_back(self, conn: Any) -> None:
        """To the pool, without the idle timeout (the pool's connections wait idle)."""
        try:
            conn.execute("RESET idle_session_timeout")
        except Exception:
            log.debug("the lock's connection is gone; the pool drops it", exc_info=True)
        try:
            self._datastore.pool.putconn(conn)
        except Exception:
            log.debug("could not return the lock's connection", exc_info=True)


def leadership_for(
    datastore: Any, job: str, *names: str, timeout_seconds: float = 30.0, turn_seconds: float = 0.0
) -> Leadership:
    """On PostgreSQL an advisory lock keyed `lifecycle-JOB:SCHEMA[:NAME...]`, so that one
    process at a time runs the job, lost `timeout_seconds` after its holder stops answering,
    or three turns of the job's loop (`turn_seconds`) when that is longer: a live holder
    speaks on the lock's session once a turn. Elsewhere (SQLite, one process) this one
    always runs it."""
    if isinstance(datastore, PostgresDatastore):
        timeout = max(timeout_seconds, 3 * max(turn_seconds, AdvisoryLock.RECHECK_SECONDS))
        return AdvisoryLock(datastore, ":".join([f"lifecycle-{job}", datastore.schema, *names]), timeout)
    return Leadership()
