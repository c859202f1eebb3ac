"""The event store on PostgreSQL, made to answer quickly while the database is away and to
come back by itself when it returns (issue 11, deliverable 4).

eventsourcing's datastore, left to itself, makes an outage hang requests: each recorder
call is retried 10 times, each attempt waiting for the pool's timeout, and the pool tries to
reconnect with a backoff that doubles up to minutes, so the service came back 4–14 s after
the database did. Here:

- every connection carries libpq's connect timeout, TCP keepalives, a TCP user timeout
  and a statement timeout, and a request waits at most `pool_timeout` for a pooled one;
- a failure that may mean the database is away is checked at once with a probe (a fresh
  connection of its own, outside the pool). If the probe fails too the store is marked
  down: requests then fail fast with `EventStoreDown` (503, nothing retried), the pool's
  idle connections are discarded, and a monitor thread probes every `PROBE_SECONDS`;
  when one succeeds the pool is checked and refilled and requests go through again. If
  the probe succeeds the failure was one broken connection: the library's retry takes a
  fresh one, as before;
- a timeout (no pooled connection free, a lock or statement timeout) is `EventStoreBusy`,
  not retried here (a retry would wait the timeout again);
- the pool reconnects every RECONNECT_DELAY_MAX at most, rather than backing off to minutes.

Selected by PERSISTENCE_MODULE=lifecycle.adapters.event_store:LifecyclePostgresFactory
(lifecycle.adapters.database.event_store_env), with its timeouts in LIFECYCLE_POSTGRES_* keys of that env.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import psycopg.errors
from eventsourcing.persistence import InterfaceError, OperationalError
from eventsourcing.postgres import (
    ConnectionPool,
    PostgresAggregateRecorder,
    PostgresApplicationRecorder,
    PostgresDatastore,
    PostgresFactory,
)
from eventsourcing.utils import Environment
from psycopg.rows import DictRow
from psycopg.sql import SQL, Composable, Identifier
from psycopg_pool import PoolTimeout, TooManyRequests
from psycopg_pool.base import AttemptWithBackoff

from lifecycle.availability import Availability, EventStoreBusy, EventStoreDown, describe

log = logging.getLogger(__name__)
# The pool logs every failed reconnection attempt as a warning: during an outage that is
# several lines a second. The outage is logged here instead, once when it starts and once
# when it ends.
logging.getLogger("psycopg.pool").setLevel(logging.ERROR)

# Env keys (beside the library's POSTGRES_*), in seconds.
POOL_TIMEOUT = "POSTGRES_POOL_TIMEOUT"  # the library's POSTGRES_CONNECT_TIMEOUT is this, in whole seconds
LIBPQ_CONNECT_TIMEOUT = "POSTGRES_LIBPQ_CONNECT_TIMEOUT"
STATEMENT_TIMEOUT = "POSTGRES_STATEMENT_TIMEOUT"

# A query sent to a host that vanished (no RST: a cable, a VM paused) would wait for TCP's
# retransmissions, many minutes: the kernel gives up after this much unacknowledged time.
TCP_USER_TIMEOUT_MS = 2500
TIMEOUT_SQLSTATES = {"55P03", "57014"}  # lock_not_available, query_canceled (statement_timeout)


class _CappedBackoff(AttemptWithBackoff):
    INITIAL_DELAY = 0.25
    RECONNECT_DELAY_MAX = 0.5

    def update_delay(self, now: float) -> None:
        super().update_delay(now)
        self.delay = min(self.delay, self.RECONNECT_DELAY_MAX)


class OutageAwarePool(ConnectionPool[Any]):
    """psycopg's pool with reconnection attempts never more than half a second apart, so the
    pool is full again soon after the database returns (psycopg_pool 3.3's AttemptWithBackoff)."""

    def _add_connection(self, attempt: AttemptWithBackoff | None, growing: bool = False) -> None:
        super()._add_connection(attempt or _CappedBackoff(timeout=self.reconnect_timeout), growing)


class OutageAwareDatastore(PostgresDatastore):
    """eventsourcing's PostgresDatastore that fails fast while the database is away (see the
    module's docstring). `availability` says whether it answers, for health and readiness."""

    PROBE_SECONDS = 0.25  # while down: how often it is tried
    PROBE_REUSE_SECONDS = 0.2  # failures together share one probe

    def __init__(
        self,
        *args: Any,
        pool_timeout: float,
        libpq_connect_timeout: int,
        statement_timeout: float,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, connect_timeout=pool_timeout, **kwargs)
        plain = self.pool  # never opened: rebuilt with the options below
        self._libpq = {
            **plain.kwargs,  # type: ignore[dict-item]
            "connect_timeout": max(2, int(libpq_connect_timeout)),  # libpq's minimum is 2
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 2,
            "keepalives_count": 3,
            "tcp_user_timeout": TCP_USER_TIMEOUT_MS,
        }
        if statement_timeout > 0:
            self._libpq["options"] = f"-c statement_timeout={int(statement_timeout * 1000)}"
        self.pool = OutageAwarePool(
            get_password_func=plain.get_password_func,
            connection_class=plain.connection_class,
            kwargs=self._libpq,
            min_size=plain.min_size,
            max_size=plain.max_size,
            open=False,
            configure=self.after_connect_func(),
            timeout=pool_timeout,
            max_waiting=plain.max_waiting,
            max_lifetime=plain.max_lifetime,
            check=ConnectionPool.check_connection if self.pre_ping else None,  # pyright: ignore
        )
        self.availability = Availability("store")
        self._probe_lock = threading.Lock()
        self._probed_at = 0.0
        self._probe_error: BaseException | None = None
        self._monitor: threading.Thread | None = None
        self._closed = threading.Event()
        self._own_connections: weakref.WeakSet[psycopg.Connection[Any]] = weakref.WeakSet()

    # --- connections -------------------------------------------------------------------

    @contextmanager
    def get_connection(self) -> Iterator[psycopg.Connection[DictRow]]:
        if not self.availability.is_up:
            raise EventStoreDown(f"the event store does not answer ({self.availability.last_error})")
        try:
            with super().get_connection() as conn:
                yield conn
        except (OperationalError, InterfaceError) as error:
            self._classify(error)
            raise

    def _classify(self, error: Exception) -> None:
        """Raises EventStoreDown or EventStoreBusy for what the library would retry in vain;
        returns for a failure the library's retry can mend (one broken connection)."""
        cause = error.__cause__
        if isinstance(cause, psycopg.Error) and cause.sqlstate in TIMEOUT_SQLSTATES:
            raise EventStoreBusy(f"the event store did not answer in time: {describe(cause)}") from error
        down = self.probe()
        if down is not None:
            raise EventStoreDown(f"the event store does not answer: {describe(down)}") from error
        if isinstance(cause, (PoolTimeout, TooManyRequests)):
            raise EventStoreBusy(f"no database connection free in time: {describe(cause)}") from error

    # --- probing -----------------------------------------------------------------------

    def probe(self) -> BaseException | None:
        """Tries the database on a connection of its own; answers the error when it does
        not answer (and marks the store down), None when it does."""
        with self._probe_lock:
            if time.monotonic() - self._probed_at > self.PROBE_REUSE_SECONDS:
                self._probe_error = self._try_connect()
                self._probed_at = time.monotonic()
            error = self._probe_error
        if error is not None and self.availability.mark_down(error):
            log.warning("event store unavailable (%s): requests fail at once (503 STORE_UNAVAILABLE) until it "
                        "answers again", describe(error))
            self._discard_idle_connections()
            self._start_monitor()
        return error

    def _try_connect(self) -> BaseException | None:
        kwargs = {k: v for k, v in self._libpq.items() if k != "row_factory"}
        if self.pool.get_password_func:
            kwargs["password"] = self.pool.get_password_func()
        try:
            with psycopg.connect(**kwargs, autocommit=True) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error as error:
            return error
        return None

    def _discard_idle_connections(self) -> None:
        # Connections to a server that went away are dead: checked now, they are replaced
        # by reconnection attempts that succeed as soon as it is back.
        try:
            self.pool.check()
        except Exception:  # noqa: BLE001 - a closed or never-opened pool has nothing to check
            log.debug("pool check failed", exc_info=True)

    def _start_monitor(self) -> None:
        if self._monitor is not None and self._monitor.is_alive():
            return
        self._monitor = threading.Thread(target=self._watch, name="event-store-probe", daemon=True)
        self._monitor.start()

    def _watch(self) -> None:
        while not self._closed.wait(self.PROBE_SECONDS):
            with self._probe_lock:
                self._probe_error = self._try_connect()
                self._probed_at = time.monotonic()
                if self._probe_error is not None:
                    self.availability.mark_down(self._probe_error)
                    continue
            self._discard_idle_connections()  # before requests come back to the pool
            lasted = self.availability.mark_up()
            if lasted is not None:
                log.warning("event store answers again after %.1fs", lasted)
            return

    def own_connection(self) -> psycopg.Connection[Any]:
        """A connection outside the pool, for what holds one for as long as the process runs
        (a LISTEN, the leadership locks): held from the pool, they would starve the requests
        of a small one. Closed with the store."""
        if not self.availability.is_up:
            raise EventStoreDown(f"the event store does not answer ({self.availability.last_error})")
        kwargs = dict(self._libpq)
        if self.pool.get_password_func:
            kwargs["password"] = self.pool.get_password_func()
        conn = psycopg.connect(**kwargs)
        self.after_connect_func()(conn)
        self._own_connections.add(conn)
        return conn

    def close(self) -> None:
        if hasattr(self, "_closed"):
            self._closed.set()
        for conn in list(getattr(self, "_own_connections", ())):
            try:
                conn.close()
            except Exception:  # noqa: BLE001 - already gone
                log.debug("closing an own connection failed", exc_info=True)
        super().close()


def _insert_in_binary(recorder: PostgresAggregateRecorder) -> None:
    """The library's INSERT of a save's events, with the array of events sent in binary.

    The library sends it as `%s`, which psycopg dumps as text: every event's state (bytea)
    hex-escaped, field by field, in Python, and parsed back by the server. For a bulk batch
    of 1,000 events that was ~50 ms of client CPU (and more of the server's) against ~6 ms in
    binary; for a contract's multi-megabyte snapshot, most of its cost. Only the placeholder's
    format changes: the statement, its table lock and its transaction stay the library's.
    """
    text = recorder.insert_events_statement.as_string(None)
    if text.count("unnest(%s::") == 1:
        recorder.insert_events_statement = SQL(text.replace("unnest(%s::", "unnest(%b::"))  # type: ignore[arg-type]
    else:  # a library version that builds it otherwise: left as it is
        log.warning("event store: the library's insert statement is not the expected one; left in text format")


class BinaryInsertApplicationRecorder(PostgresApplicationRecorder):
    """The events' recorder (see `_insert_in_binary`). The statements every save sends
    before its INSERT (the lock timeout, the table lock, NOTIFY) are the library's, composed
    once here: the library composes them for each save, quoting their names each time."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _insert_in_binary(self)
        self.lock_table_statements = [_composed_once(statement) for statement in self.lock_table_statements]
        self._notify_statement = _composed_once(SQL("NOTIFY {0}").format(Identifier(self.channel_name)))

    def _notify_channel(self, curs: Any) -> None:
        curs.execute(self._notify_statement)


def _composed_once(statement: Any) -> Any:
    """A statement with no parameters, as the bytes psycopg would compose it into on each use."""
    return statement.as_string(None).encode() if isinstance(statement, Composable) else statement


class BinaryInsertAggregateRecorder(PostgresAggregateRecorder):
    """The snapshots' recorder (see `_insert_in_binary`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _insert_in_binary(self)


class LifecyclePostgresFactory(PostgresFactory):
    """The library's PostgreSQL factory with an `OutageAwareDatastore`, and its recorders'
    inserts sent in binary."""

    aggregate_recorder_class = BinaryInsertAggregateRecorder
    application_recorder_class = BinaryInsertApplicationRecorder

    def __init__(self, env: Environment | dict[str, str] | None) -> None:
        super().__init__(env)
        plain = self.datastore  # configured from the library's keys, its pool never opened
        pool_kwargs: dict[str, Any] = plain.pool.kwargs  # type: ignore[assignment]
        self.datastore = OutageAwareDatastore(
            dbname=pool_kwargs["dbname"],
            host=pool_kwargs["host"],
            port=pool_kwargs["port"],
            user=pool_kwargs["user"],
            password=pool_kwargs["password"],
            idle_in_transaction_session_timeout=plain.idle_in_transaction_session_timeout,
            pool_size=plain.pool.min_size,
            max_overflow=plain.pool.max_size - plain.pool.min_size,
            max_waiting=plain.pool.max_waiting,
            conn_max_age=plain.pool.max_lifetime,
            pre_ping=plain.pre_ping,
            lock_timeout=plain.lock_timeout,
            schema=plain.schema,
            get_password_func=plain.pool.get_password_func,
            single_row_tracking=plain.single_row_tracking,
            originator_id_type=plain.originator_id_type,  # type: ignore[arg-type]
            enable_db_functions=plain.enable_db_functions,
            pool_timeout=float(self.env.get(POOL_TIMEOUT) or plain.pool.timeout),
            libpq_connect_timeout=int(float(self.env.get(LIBPQ_CONNECT_TIMEOUT) or 5)),
            statement_timeout=float(self.env.get(STATEMENT_TIMEOUT) or 0),
        )
        plain.close()
