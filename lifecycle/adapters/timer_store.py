"""The timer table: one row per notification, in the event store's own database (SQLite
or PostgreSQL), never only in the broker; the SQL behind `lifecycle.ports.TimerStore`.

The rows are a projection of the event log (`TimerProjection` in lifecycle/projections/timers.py): the process
managers' decisions (`lifecycle/policies/mail_timers.py`) and the tracking position of the
last event applied are committed in one transaction, through the read models' own tracking
(the port `lifecycle.ports.Tracking`, a read-model view that bootstrap passes in), so the table can always be dropped and rebuilt from
the log. A rebuilt table forgets only the operational columns: sends in progress, retry
counts and failures (a failed mail becomes due again).
"""

from __future__ import annotations

import json
import logging
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timezone
from typing import Any
from uuid import UUID

from eventsourcing.postgres import PostgresDatastore
from eventsourcing.sqlite import SQLiteDatastore

from lifecycle.domain.notifications import (
    CancelConfirmation,
    CancelReminders,
    NotificationKind,
    ReminderStage,
    Schedule,
    Settle,
    Timer,
    TimerChange,
)
from lifecycle.ports import CANCELLED, FAILED, PENDING, SENT, PositionMoved, TimerRow, TimerStore, Tracking

log = logging.getLogger(__name__)

# Where the position was kept before the timer table shared the read models' tracking.
OLD_TRACKING_TABLE = "notification_timers_tracking"

COLUMNS = (
    "notification_id, kind, aggregate_id, serial, stage, period_end, due_at, state, enqueued_at, "
    "claimed_until, attempts, failures, interrupted, last_error, outbox, recipients, message_id, settled_at"
)


class SqlTimerStore(TimerStore):
    """The timer table, its position kept by the read models' tracking (`tracking`: the
    timer table's row in it). SQL is written once with %s placeholders; the two subclasses
    say how their database spells names and instants."""

    table: str
    skip_locked = ""

    def __init__(self, datastore: Any, tracking: Tracking) -> None:
        self.datastore = datastore
        self.tracking = tracking

    # --- dialect ------------------------------------------------------------------------

    @abstractmethod
    @contextmanager
    def transaction(self, *, commit: bool) -> Iterator[Any]: ...

    @abstractmethod
    def create_table_statements(self) -> list[str]: ...

    def sql(self, statement: str) -> str:
        return statement

    def instant(self, value: datetime | None) -> Any:
        return value

    def from_instant(self, value: Any) -> datetime | None:
        return value

    def day(self, value: date | None) -> Any:
        return value

    def from_day(self, value: Any) -> date | None:
        return value

    def blob(self, value: Any) -> bytes | None:
        return bytes(value) if value is not None else None

    def _execute(self, cursor: Any, statement: str, params: Sequence[Any] = ()) -> None:
        cursor.execute(self.sql(statement), tuple(params))

    # --- the table ----------------------------------------------------------------------

    def create_tables(self) -> None:
        with self.transaction(commit=True) as cursor:
            self._serialise_ddl(cursor)
            for statement in self.create_table_statements():
                self._execute(cursor, statement)
        self._adopt_old_tracking()

    def _serialise_ddl(self, cursor: Any) -> None:
        """Processes starting together race on CREATE ... IF NOT EXISTS (PostgreSQL)."""

    @abstractmethod
    def _old_tracking_table(self) -> str | None:
        """The table where earlier releases kept the position, if it exists."""

    def _adopt_old_tracking(self) -> None:
        """A table made by an earlier release keeps its place in the log: its position moves
        into the shared tracking once, and the old table goes."""
        old = self._old_tracking_table()
        if old is None:
            return
        with self.transaction(commit=False) as cursor:
            self._execute(cursor, f"SELECT position FROM {old} WHERE name = %s", (self.tracking.tracking_name,))
            row = cursor.fetchone()
        if row is not None and not self.tracking.position():
            try:
                with self.tracking.tracked_transaction(None, row["position"]):
                    pass
            except PositionMoved:  # another process adopted it first
                pass
        with self.transaction(commit=True) as cursor:
            self._execute(cursor, f"DROP TABLE IF EXISTS {old}")

    def _row(self, row: Any) -> TimerRow:
        stage = row["stage"]
        return TimerRow(
            timer=Timer(
                notification_id=UUID(row["notification_id"]),
                kind=NotificationKind(row["kind"]),
                aggregate_id=UUID(row["aggregate_id"]),
                due_at=self.from_instant(row["due_at"]),  # type: ignore[arg-type]
                serial=row["serial"],
                stage=ReminderStage(stage) if stage else None,
                period_end=self.from_day(row["period_end"]),
            ),
            state=row["state"],
            enqueued_at=self.from_instant(row["enqueued_at"]),
            claimed_until=self.from_instant(row["claimed_until"]),
            attempts=row["attempts"],
            failures=row["failures"],
            interrupted=row["interrupted"],
            last_error=row["last_error"],
            outbox=self.blob(row["outbox"]),
            recipients=tuple(json.loads(row["recipients"] or "[]")),
            message_id=row["message_id"],
            settled_at=self.from_instant(row["settled_at"]),
        )

    # --- the projection's side ----------------------------------------------------------

    def position(self) -> int | None:
        return self.tracking.position() or None

    def apply(self, changes: Sequence[TimerChange], expected: int | None, position: int) -> None:
        """Apply one batch of the process managers' decisions and move the tracking position
        from `expected` to `position`, in one transaction (compare-and-set on the position)."""
        with self.tracking.tracked_transaction(expected, position) as cursor:
            self._apply_all(cursor, changes)

    def _apply_all(self, cursor: Any, changes: Sequence[TimerChange]) -> None:
        """With the effect of applying them in order, in a few statements: a run of changes
        goes as its new timers first, then its settles and cancels, one executemany per kind
        (one round trip each on PostgreSQL, however the kinds alternate in the log). That is
        the same as in order because settles and cancels commute (a settle makes a row SENT
        whatever it was; a cancel only touches PENDING or FAILED rows) and because a run is cut
        before a new timer that a settle or cancel earlier in the run would have touched had
        the timer been there (rare: a timer is scheduled before its mail and its renewal)."""
        run: list[TimerChange] = []
        settled: set[UUID] = set()
        cancelled: set[tuple[UUID, str, date]] = set()
        confirmed: set[UUID] = set()
        for change in changes:
            if isinstance(change, Schedule) and _touched_earlier(change.timer, settled, cancelled, confirmed):
                self._apply_run(cursor, run)
                run = []
                settled, cancelled, confirmed = set(), set(), set()
            run.append(change)
            if isinstance(change, Settle):
                settled.add(change.notification_id)
            elif isinstance(change, CancelReminders):
                cancelled.add((change.contract_id, change.serial, change.period_end))
            elif isinstance(change, CancelConfirmation):
                confirmed.add(change.account_id)
        self._apply_run(cursor, run)

    def _apply_run(self, cursor: Any, run: Sequence[TimerChange]) -> None:
        by_statement: dict[str, list[tuple[Any, ...]]] = {}
        # New timers first (sorted is stable: the rest keep their order).
        for change in sorted(run, key=lambda c: not isinstance(c, Schedule)):
            statement, params = self._statement_for(change)
            by_statement.setdefault(statement, []).append(params)
        for statement, rows in by_statement.items():
            cursor.executemany(self.sql(statement), rows)

    def _statement_for(self, change: TimerChange) -> tuple[str, tuple[Any, ...]]:
        if isinstance(change, Schedule):
            t = change.timer
            return (
                (
                    f"INSERT INTO {self.table} (notification_id, kind, aggregate_id, serial, stage, period_end, "
                    "due_at, state, attempts, failures, interrupted, recipients) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, 0, 0, 0, '[]') ON CONFLICT (notification_id) DO NOTHING"
                ),
                (
                    str(t.notification_id),
                    t.kind.value,
                    str(t.aggregate_id),
                    t.serial,
                    t.stage.value if t.stage else None,
                    self.day(t.period_end),
                    self.instant(t.due_at),
                    PENDING,
                ),
            )
        if isinstance(change, Settle):
            # The mail's event is in the log: whatever a worker was doing, it is sent.
            return (
                (
                    f"UPDATE {self.table} SET state = %s, outbox = NULL, claimed_until = NULL "
                    "WHERE notification_id = %s AND state <> %s"
                ),
                (SENT, str(change.notification_id), SENT),
            )
        if isinstance(change, CancelReminders):
            return (
                (
                    f"UPDATE {self.table} SET state = %s WHERE aggregate_id = %s AND kind = %s AND serial = %s "
                    "AND period_end = %s AND state IN (%s, %s)"
                ),
                (
                    CANCELLED,
                    str(change.contract_id),
                    NotificationKind.RENEWAL_REMINDER.value,
                    change.serial,
                    self.day(change.period_end),
                    PENDING,
                    FAILED,
                ),
            )
        if isinstance(change, CancelConfirmation):
            return (
                f"UPDATE {self.table} SET state = %s WHERE aggregate_id = %s AND kind IN (%s, %s) AND state IN (%s, %s)",
                (CANCELLED, str(change.account_id), NotificationKind.ACCOUNT_CONFIRMATION.value,
                 NotificationKind.ACCOUNT_RETENTION.value, PENDING, FAILED),
            )
        raise TypeError(change)  # pragma: no cover - exhaustive

    def clear(self) -> None:
        with self.tracking.resetting_transaction() as cursor:
            self._execute(cursor, f"DELETE FROM {self.table}")

    # --- the scheduler's side -----------------------------------------------------------

    def take_due(self, as_of: datetime, now: datetime, requeue_before: datetime, limit: int) -> list[TimerRow]:
        """Pending timers due by `as_of` that no live worker holds, marked enqueued at `now`.
        A timer already enqueued is taken again when its message may be lost: enqueued
        before `requeue_before` (the broker lost it), or held by a worker whose claim ran out
        (the worker died with it; counted as interrupted, its claim cleared)."""
        with self.transaction(commit=True) as cursor:
            self._execute(
                cursor,
                f"UPDATE {self.table} SET enqueued_at = %s, claimed_until = NULL, "
                "interrupted = interrupted + (CASE WHEN claimed_until IS NULL THEN 0 ELSE 1 END) "
                f"WHERE notification_id IN (SELECT notification_id FROM {self.table} WHERE state = %s "
                "AND due_at <= %s AND (claimed_until IS NULL OR claimed_until < %s) "
                "AND (enqueued_at IS NULL OR enqueued_at < %s OR claimed_until IS NOT NULL) "
                f"ORDER BY due_at LIMIT %s{self.skip_locked}) RETURNING {COLUMNS}",
                (
                    self.instant(now),
                    PENDING,
                    self.instant(as_of),
                    self.instant(now),
                    self.instant(requeue_before),
                    limit,
                ),
            )
            rows = [self._row(r) for r in cursor.fetchall()]
        # A contract's mails side by side: a worker's batch then loads each contract once.
        return sorted(rows, key=lambda r: (r.timer.due_at, str(r.timer.aggregate_id)))

    def forget_enqueue(self, notification_ids: Sequence[UUID]) -> None:
        """The broker did not take them: let the next scheduler run try again."""
        with self.transaction(commit=True) as cursor:
            for notification_id in notification_ids:
                self._execute(
                    cursor,
                    f"UPDATE {self.table} SET enqueued_at = NULL WHERE notification_id = %s",
                    (str(notification_id),),
                )

    # --- the sender's side --------------------------------------------------------------

    def get(self, notification_id: UUID) -> TimerRow | None:
        return self.get_many([notification_id]).get(notification_id)

    def get_many(self, notification_ids: Sequence[UUID]) -> dict[UUID, TimerRow]:
        if not notification_ids:
            return {}
        with self.transaction(commit=False) as cursor:
            self._execute(cursor, f"SELECT {COLUMNS} FROM {self.table} WHERE notification_id IN "
                                  f"({', '.join(['%s'] * len(notification_ids))})", [str(n) for n in notification_ids])
            rows = [self._row(row) for row in cursor.fetchall()]
        return {row.notification_id: row for row in rows}

    def claim(
        self, notification_id: UUID, now: datetime, until: datetime, data: bytes, recipients: Sequence[str], message_id: str
    ) -> TimerRow | None:
        return self.claim_many([(notification_id, data, recipients, message_id)], now, until).get(notification_id)

    def claim_many(
        self, claims: Sequence[tuple[UUID, bytes, Sequence[str], str]], now: datetime, until: datetime
    ) -> dict[UUID, TimerRow]:
        """Hold each pending timer for sending until `until`, unless a worker holds it now, and
        record the message about to be sent (record-before), all in one commit. An outbox
        left by an interrupted or failed send is kept: that message is the one to send.
        Answers the rows claimed; one not pending or held is left out: nothing to do.
        Rows are taken in the order of their ids, so two workers never wait on each other."""
        claimed: dict[UUID, TimerRow] = {}
        with self.transaction(commit=True) as cursor:
            for notification_id, data, recipients, message_id in sorted(claims, key=lambda c: str(c[0])):
                self._execute(
                    cursor,
                    f"UPDATE {self.table} SET claimed_until = %s, attempts = attempts + 1, "
                    "interrupted = interrupted + (CASE WHEN claimed_until IS NULL THEN 0 ELSE 1 END), "
                    "recipients = CASE WHEN outbox IS NULL THEN %s ELSE recipients END, "
                    "message_id = CASE WHEN outbox IS NULL THEN %s ELSE message_id END, "
                    "outbox = COALESCE(outbox, %s) "
                    "WHERE notification_id = %s AND state = %s AND (claimed_until IS NULL OR claimed_until < %s) "
                    f"RETURNING {COLUMNS}",
                    (
                        self.instant(until),
                        json.dumps(list(recipients)),
                        message_id,
                        data,
                        str(notification_id),
                        PENDING,
                        self.instant(now),
                    ),
                )
                row = cursor.fetchone()
                if row:
                    claimed[notification_id] = self._row(row)
        return claimed

    def forget_personal_data(self, aggregate_ids: Sequence[UUID], values: Sequence[str]) -> int:
        wanted = [v for v in values if v]
        addresses = {v.strip().lower() for v in wanted}
        changed = 0
        with self.transaction(commit=True) as cursor:
            for aggregate_id in aggregate_ids:
                self._execute(cursor, f"SELECT notification_id, recipients, last_error, outbox FROM {self.table} "
                                      "WHERE aggregate_id = %s", (str(aggregate_id),))
                for row in cursor.fetchall():
                    recipients = json.loads(row["recipients"] or "[]")
                    kept = [r for r in recipients if r.strip().lower() not in addresses]
                    error = row["last_error"]
                    if error is not None and any(v in error for v in wanted):
                        error = "[erased]"
                    if kept == recipients and error == row["last_error"] and row["outbox"] is None:
                        continue
                    self._execute(cursor, f"UPDATE {self.table} SET recipients = %s, last_error = %s, outbox = NULL "
                                          "WHERE notification_id = %s", (json.dumps(kept), error, row["notification_id"]))
                    changed += 1
        return changed

    def settle(self, notification_id: UUID, state: str, at: datetime, note: str | None = None) -> None:
        """Sent (its event recorded) or skipped: done with for good."""
        self.settle_many([(notification_id, state, at, note)])

    def settle_many(self, settles: Sequence[tuple[UUID, str, datetime, str | None]]) -> None:
        if not settles:
            return
        with self.transaction(commit=True) as cursor:
            cursor.executemany(
                self.sql(
                    f"UPDATE {self.table} SET state = %s, settled_at = %s, claimed_until = NULL, outbox = NULL, "
                    "last_error = COALESCE(%s, last_error) WHERE notification_id = %s AND state = %s"
                ),
                [(state, self.instant(at), note, str(notification_id), PENDING)
                 for notification_id, state, at, note in sorted(settles, key=lambda s: str(s[0]))],
            )

    def record_failure(
        self, notification_id: UUID, error: str, retry_at: datetime | None, at: datetime, *, keep_outbox: bool
    ) -> None:
        """A send ended in an error: due again at `retry_at`, or failed for good when None.
        The outbox is kept when the server may have taken the message, so the retry sends
        the very same message (same Message-ID) rather than a new one."""
        with self.transaction(commit=True) as cursor:
            self._execute(
                cursor,
                f"UPDATE {self.table} SET failures = failures + 1, last_error = %s, claimed_until = NULL, "
                "enqueued_at = NULL, due_at = COALESCE(%s, due_at), state = %s, settled_at = %s"
                + ("" if keep_outbox else ", outbox = NULL")
                + " WHERE notification_id = %s AND state = %s",
                (
                    error[:2000],
                    self.instant(retry_at),
                    PENDING if retry_at is not None else FAILED,
                    None if retry_at is not None else self.instant(at),
                    str(notification_id),
                    PENDING,
                ),
            )

    # --- the operator's side ------------------------------------------------------------

    def failed(self) -> list[TimerRow]:
        with self.transaction(commit=False) as cursor:
            self._execute(
                cursor, f"SELECT {COLUMNS} FROM {self.table} WHERE state = %s ORDER BY settled_at, due_at", (FAILED,)
            )
            return [self._row(r) for r in cursor.fetchall()]

    def resend(self, notification_id: UUID, now: datetime) -> TimerRow | None:
        """A failed mail made due again at once, with a fresh count of failures."""
        with self.transaction(commit=True) as cursor:
            self._execute(
                cursor,
                f"UPDATE {self.table} SET state = %s, failures = 0, due_at = %s, enqueued_at = NULL, "
                f"settled_at = NULL WHERE notification_id = %s AND state = %s RETURNING {COLUMNS}",
                (PENDING, self.instant(now), str(notification_id), FAILED),
            )
            row = cursor.fetchone()
        return self._row(row) if row else None

    def of(self, aggregate_id: UUID) -> list[TimerRow]:
        """Every timer of a contract or an account, by due time."""
        with self.transaction(commit=False) as cursor:
            self._execute(
                cursor, f"SELECT {COLUMNS} FROM {self.table} WHERE aggregate_id = %s ORDER BY due_at", (str(aggregate_id),)
            )
            return [self._row(r) for r in cursor.fetchall()]

    def counts(self) -> dict[str, int]:
        with self.transaction(commit=False) as cursor:
            self._execute(cursor, f"SELECT state, COUNT(*) AS n FROM {self.table} GROUP BY state")
            return {row["state"]: row["n"] for row in cursor.fetchall()}


class SQLiteTimerStore(SqlTimerStore):
    table = "notification_timers"

    @contextmanager
    def transaction(self, *, commit: bool) -> Iterator[Any]:
        with self.datastore.transaction(commit=commit) as cursor:
            yield cursor

    def sql(self, statement: str) -> str:
        return statement.replace("%s", "?")

    # Instants as fixed-width UTC text, so that comparing text compares instants.
    def instant(self, value: datetime | None) -> Any:
        return None if value is None else value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")

    def from_instant(self, value: Any) -> datetime | None:
        return None if value is None else datetime.fromisoformat(value).replace(tzinfo=timezone.utc)

    def day(self, value: date | None) -> Any:
        return None if value is None else value.isoformat()

    def from_day(self, value: Any) -> date | None:
        return None if value is None else date.fromisoformat(value)

    def create_table_statements(self) -> list[str]:
        return [
            f"CREATE TABLE IF NOT EXISTS {self.table} ("
            "notification_id TEXT PRIMARY KEY, kind TEXT NOT NULL, aggregate_id TEXT NOT NULL, serial TEXT, "
            "stage TEXT, period_end TEXT, due_at TEXT NOT NULL, state TEXT NOT NULL, enqueued_at TEXT, "
            "claimed_until TEXT, attempts INTEGER NOT NULL, failures INTEGER NOT NULL, "
            "interrupted INTEGER NOT NULL, last_error TEXT, outbox BLOB, recipients TEXT NOT NULL, "
            "message_id TEXT, settled_at TEXT)",
            f"CREATE INDEX IF NOT EXISTS {self.table}_due ON {self.table} (state, due_at)",
            f"CREATE INDEX IF NOT EXISTS {self.table}_aggregate ON {self.table} (aggregate_id, kind)",
        ]

    def _old_tracking_table(self) -> str | None:
        with self.transaction(commit=False) as cursor:
            self._execute(cursor, "SELECT name FROM sqlite_master WHERE type = 'table' AND name = %s",
                          (OLD_TRACKING_TABLE,))
            return OLD_TRACKING_TABLE if cursor.fetchone() else None


class PostgresTimerStore(SqlTimerStore):
    skip_locked = " FOR UPDATE SKIP LOCKED"

    def __init__(self, datastore: PostgresDatastore, tracking: Tracking) -> None:
        super().__init__(datastore, tracking)
        self.schema = '"' + datastore.schema.replace('"', '""') + '"'
        self.table = f"{self.schema}.notification_timers"

    @contextmanager
    def transaction(self, *, commit: bool) -> Iterator[Any]:
        with self.datastore.transaction(commit=commit) as cursor:
            yield cursor

    def _serialise_ddl(self, cursor: Any) -> None:
        self._execute(cursor, "SELECT pg_advisory_xact_lock(hashtext(%s))", (self.table,))

    def _apply_run(self, cursor: Any, run: Sequence[TimerChange]) -> None:
        """As the base class, but each kind of change as one statement over arrays (unnest)
        rather than a statement per change: a rebuild's 50,000 timers in a few statements."""
        by_kind: dict[type, list[tuple[Any, ...]]] = {}
        others: list[TimerChange] = []
        for change in run:
            if isinstance(change, (Schedule, Settle, CancelReminders)):
                by_kind.setdefault(type(change), []).append(self._statement_for(change)[1])
            else:
                others.append(change)
        if Schedule in by_kind:  # first: the settles and cancels of the run may touch them
            columns = list(zip(*by_kind[Schedule]))
            self._execute(cursor, (
                f"INSERT INTO {self.table} (notification_id, kind, aggregate_id, serial, stage, period_end, due_at, "
                "state, attempts, failures, interrupted, recipients) "
                "SELECT *, 0, 0, 0, '[]' FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[], "
                "%s::date[], %s::timestamptz[], %s::text[]) ON CONFLICT (notification_id) DO NOTHING"
            ), [list(column) for column in columns])
        if Settle in by_kind:
            self._execute(cursor, (
                f"UPDATE {self.table} t SET state = %s, outbox = NULL, claimed_until = NULL "
                "FROM unnest(%s::text[]) AS s(id) WHERE t.notification_id = s.id AND t.state <> %s"
            ), (SENT, [params[1] for params in by_kind[Settle]], SENT))
        if CancelReminders in by_kind:
            rows = by_kind[CancelReminders]  # (CANCELLED, contract, kind, serial, period_end, PENDING, FAILED)
            self._execute(cursor, (
                f"UPDATE {self.table} t SET state = %s FROM unnest(%s::text[], %s::text[], %s::date[]) AS c(a, s, p) "
                "WHERE t.aggregate_id = c.a AND t.kind = %s AND t.serial = c.s AND t.period_end = c.p "
                "AND t.state IN (%s, %s)"
            ), (CANCELLED, [r[1] for r in rows], [r[3] for r in rows], [r[4] for r in rows],
                NotificationKind.RENEWAL_REMINDER.value, PENDING, FAILED))
        if others:
            super()._apply_run(cursor, others)

    def create_table_statements(self) -> list[str]:
        return [
            f"CREATE TABLE IF NOT EXISTS {self.table} ("
            "notification_id TEXT PRIMARY KEY, kind TEXT NOT NULL, aggregate_id TEXT NOT NULL, serial TEXT, "
            "stage TEXT, period_end DATE, due_at TIMESTAMPTZ NOT NULL, state TEXT NOT NULL, "
            "enqueued_at TIMESTAMPTZ, claimed_until TIMESTAMPTZ, attempts INTEGER NOT NULL, "
            "failures INTEGER NOT NULL, interrupted INTEGER NOT NULL, last_error TEXT, outbox BYTEA, "
            "recipients TEXT NOT NULL, message_id TEXT, settled_at TIMESTAMPTZ)",
            f"CREATE INDEX IF NOT EXISTS notification_timers_due ON {self.table} (state, due_at)",
            f"CREATE INDEX IF NOT EXISTS notification_timers_aggregate ON {self.table} (aggregate_id, kind)",
        ]

    def _old_tracking_table(self) -> str | None:
        old = f"{self.schema}.{OLD_TRACKING_TABLE}"
        with self.transaction(commit=False) as cursor:
            self._execute(cursor, "SELECT to_regclass(%s) AS found", (old,))
            row = cursor.fetchone()
            return old if row and row["found"] else None


def _touched_earlier(
    timer: Timer, settled: set[UUID], cancelled: set[tuple[UUID, str, date]], confirmed: set[UUID]
) -> bool:
    """Whether a settle or cancel already in the run would have touched this new timer."""
    if timer.notification_id in settled:
        return True
    if timer.kind is NotificationKind.RENEWAL_REMINDER:
        return (timer.aggregate_id, timer.serial, timer.period_end) in cancelled
    if timer.kind in (NotificationKind.ACCOUNT_CONFIRMATION, NotificationKind.ACCOUNT_RETENTION):
        return timer.aggregate_id in confirmed
    return False


def timer_store_for(datastore: Any, tracking: Tracking) -> SqlTimerStore:
    """The timer store in the application's own database, its tables created when missing."""
    store: SqlTimerStore
    if isinstance(datastore, PostgresDatastore):
        store = PostgresTimerStore(datastore, tracking)
    elif isinstance(datastore, SQLiteDatastore):
        store = SQLiteTimerStore(datastore, tracking)
    else:
        raise TypeError(f"no timer store for {type(datastore).__name__}")
    store.create_tables()
    return store
