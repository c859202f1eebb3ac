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
import threading
import time
import weakref
from typing import Any

from eventsourcing.postgres import PostgresDatastore

from lifecycle.ports import Leadership

log = logging.getLogger(__name__)


class LockSession:
    """One PostgreSQL session of its own, outside the connection pool, that holds every
    advisory lock of this process with one timeout. A held lock keeps its connection for as
    long as the job runs: taken from the pool, a dozen of them (one per projection, the
    scheduler) would starve the requests of a small pool. One session, not one per lock,
    so a process holds one connection for all its jobs.

    `generation` counts the sessions opened: a lock taken on an earlier one ended with it."""

    def __init__(self, datastore: Any, timeout_ms: str) -> None:
        self._datastore = datastore
        self._timeout_ms = timeout_ms
        self._conn: Any = None
        self._mutex = threading.Lock()
        self.generation = 0

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> tuple[int, Any]:
        """The first row of `sql` on the session (opened if needed) and the session's
        generation; an error closes the session (and every lock on it)."""
        with self._mutex:
            if self._conn is None or self._conn.closed:
                self._conn = self._open()
                self.generation += 1
            try:
                return self.generation, self._conn.execute(sql, params).fetchone()
            except Exception:
                self._close()
                raise

    def close(self) -> None:
        with self._mutex:
            self._close()

    def _open(self) -> Any:
        conn = self._datastore.own_connection()
        try:
            # The server ends the session (and its locks) once this process has said nothing
            # on it for this long: a frozen holder loses its jobs (see the module's docstring).
            conn.execute("SELECT set_config('idle_session_timeout', %s, false)", (self._timeout_ms,))
        except Exception:
            conn.close()
            raise
        return conn

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()  # the locks go with the session
            except Exception:  # noqa: BLE001 - already gone
                log.debug("closing the lock session failed", exc_info=True)


# A process's lock sessions, per store and per timeout.
_SESSIONS: weakref.WeakKeyDictionary[Any, dict[str, LockSession]] = weakref.WeakKeyDictionary()
_SESSIONS_MUTEX = threading.Lock()


def lock_session(datastore: Any, timeout_ms: str) -> LockSession:
    with _SESSIONS_MUTEX:
        sessions = _SESSIONS.setdefault(datastore, {})
        if timeout_ms not in sessions:
            sessions[timeout_ms] = LockSession(datastore, timeout_ms)
        return sessions[timeout_ms]


class AdvisoryLock(Leadership):
    """A PostgreSQL session-level advisory lock, held on this process's lock session (not a
    connection of the pool) for as long as this process runs the job."""

    # How often a held lock's session is checked. Between checks a runner may go on after
    # its session died; the jobs' compare-and-set on their positions keeps that harmless.
    RECHECK_SECONDS = 1.0

    def __init__(self, datastore: PostgresDatastore, key: str, timeout_seconds: float = 30.0) -> None:
        self._datastore = datastore
        self._key = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big", signed=True)
        self._session = lock_session(datastore, str(max(1, int(timeout_seconds * 1000))))
        self._held_on: int | None = None  # the session generation the lock was taken on
        self._checked_at = 0.0

    def acquire(self) -> bool:
        if self._held_on is not None:
            if time.monotonic() - self._checked_at < self.RECHECK_SECONDS:
                return True
            try:
                generation, _ = self._session.execute("SELECT 1")
            except Exception:  # the session ended: so did the lock
                generation = None
            if generation == self._held_on:
                self._checked_at = time.monotonic()
                return True
            self._held_on = None
        availability = getattr(self._datastore, "availability", None)
        if availability is not None and not availability.is_up:
            return False  # the store is away (lifecycle.adapters.event_store): stand by without waiting
        try:
            generation, row = self._session.execute("SELECT pg_try_advisory_lock(%s) AS held", (self._key,))
        except Exception:  # no session now (the database may be down): stand by
            return False
        if row["held"]:
            self._held_on = generation
            self._checked_at = time.monotonic()
            return True
        return False

    def release(self) -> None:
        held_on, self._held_on = self._held_on, None
        if held_on is None or held_on != self._session.generation:
            return  # never held, or it ended with its session: no session to open for it
        try:
            self._session.execute("SELECT pg_advisory_unlock(%s)", (self._key,))
        except Exception:
            log.debug("advisory unlock failed; the session's end releases it", exc_info=True)


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
