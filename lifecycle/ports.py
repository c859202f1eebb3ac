"""The ports: every interface the application needs from the world outside it, in one place.
Their implementations are in lifecycle/adapters/ and their fakes in tests/fakes.py;
lifecycle/bootstrap.py chooses which ones a process gets.

- Clock: the current instant.
- PostalCodeDirectory: the postal-code lookup (住所検索, S-2).
- Mailer: hands a rendered mail to a server.
- TimerStore: one row per notification, the timer table (SQL in adapters/timer_store.py),
  its position kept by a Tracking (a read-model view).
- Dispatcher: hands due notification ids to the senders (a broker, or this process).
- Leadership, LeadershipFor: whether this process runs a singleton job (adapters/leadership.py).
- CredentialStore: customers' sessions and API keys' last use (adapters/credentials.py).
- AttemptCounter, LoginThrottling: rate limits per client address and the waits after wrong
  passwords (adapters/rate_limits.py).
- BulkUploads: uploaded sheets and the lease on each job (adapters/bulk_uploads.py).
- CheckpointStore: the audit tree's signed checkpoints (adapters/audit_checkpoints.py).
- SubjectKeys: the data subjects' keys that seal their personal fields
  (adapters/personal_keys.py).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from lifecycle.domain.addresses import PostalAddress
from lifecycle.domain.dates import TOKYO
from lifecycle.domain.notifications import Timer, TimerChange

# --- time and places --------------------------------------------------------------------


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware."""


class PostalCodeDirectory(Protocol):
    def lookup(self, postal_code: str) -> PostalAddress:
        """The address of an ordinary postal code; raises AddressUndefined for codes
        that are unknown or belong to one large office (大口事業所個別番号)."""

    def towns(self, postal_code: str) -> list[PostalAddress]:
        """Every town of an ordinary postal code (one code may cover several; 住所検索 offers
        them as a choice); raises AddressUndefined as `lookup` does."""


class Leadership:
    """Whether this process runs a singleton job (a projection, the timer scheduler). This
    default is one process (SQLite): it always does. On PostgreSQL, an advisory lock
    (lifecycle/adapters/leadership.py)."""

    def acquire(self) -> bool:
        return True

    def release(self) -> None:
        pass


class LeadershipFor(Protocol):
    """The leadership of one singleton job (`job`, and the names of one of its kind)."""

    def __call__(
        self, job: str, *names: str, timeout_seconds: float = 30.0, turn_seconds: float = 0.0
    ) -> Leadership: ...


def one_process(job: str, *names: str, timeout_seconds: float = 30.0, turn_seconds: float = 0.0) -> Leadership:
    """One process runs every job (SQLite, the in-memory store)."""
    return Leadership()


# --- mailers ------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutgoingMail:
    """One rendered mail: the envelope and the exact bytes to hand to the mail server."""

    message_id: str
    sender: str
    recipients: tuple[str, ...]
    subject: str
    data: bytes


class MailRefused(Exception):
    """The server refused the message (4xx/5xx to MAIL, RCPT or DATA): it was not taken."""

    def __init__(self, detail: str, *, permanent: bool) -> None:
        super().__init__(detail)
        self.permanent = permanent


class ClaimLost(Exception):
    """The sender's claim on the mail ran out before the message was handed over (the
    process was frozen or held up): another worker may be sending it now, so this one did
    not. Nothing was delivered."""


class Mailer(ABC):
    @abstractmethod
    def send(self, mail: OutgoingMail, last_check: Callable[[], None] | None = None) -> tuple[str, ...]:
        """Hand the mail over; answer the recipients that were accepted. `last_check` is
        called at the last moment before the message itself goes (SMTP: before DATA); when
        it raises, the mail is abandoned undelivered and the error passes through."""

    def close(self) -> None:  # noqa: B027 - most mailers hold nothing
        pass

    def forget(self, values: Sequence[str]) -> int:
        """Delete the copies this mailer keeps of mails that name any of `values` (a forgotten
        subject's personal data, docs/privacy.md); answer how many. A relay keeps none: the
        mails it handed over are the recipients'."""
        return 0


# --- the timer store -------------------------------------------------------------------


class PositionMoved(Exception):
    """The tracking position is not where the batch started, or the tables are not the ones
    the runner's rows were read from: another runner got there first, or a rebuild was
    switched in. The batch is rolled back and the runner starts again from what is stored."""


class Tracking(Protocol):
    """One row of the read models' tracking (a read-model view, projections/engine/views.py):
    where in the log a table's contents stand, moved in the same transaction as they change."""

    @property
    def tracking_name(self) -> str: ...

    def position(self) -> int | None: ...

    def tracked_transaction(self, expected: int | None, position: int) -> AbstractContextManager[Any]:
        """A transaction that commits only if the position is still `expected` (else
        PositionMoved), and moves it to `position` with whatever the caller wrote."""

    def resetting_transaction(self) -> AbstractContextManager[Any]:
        """A transaction that also forgets the position."""

PENDING, SENT, CANCELLED, SKIPPED, FAILED = "pending", "sent", "cancelled", "skipped", "failed"


@dataclass(frozen=True)
class TimerRow:
    """A timer as stored, with the state of its mail."""

    timer: Timer
    state: str
    enqueued_at: datetime | None
    claimed_until: datetime | None
    attempts: int  # sends started
    failures: int  # sends that ended in an error
    interrupted: int  # sends resumed after the worker holding them stopped
    last_error: str | None
    outbox: bytes | None
    recipients: tuple[str, ...]
    message_id: str | None
    settled_at: datetime | None

    @property
    def notification_id(self) -> UUID:
        return self.timer.notification_id

    def as_dict(self) -> dict[str, Any]:
        t = self.timer
        return {
            "notification_id": str(t.notification_id),
            "kind": t.kind.value,
            "aggregate_id": str(t.aggregate_id),
            "serial": t.serial,
            "stage": t.stage.value if t.stage else None,
            "period_end": t.period_end.isoformat() if t.period_end else None,
            "due_at": t.due_at.astimezone(TOKYO).isoformat(),
            "state": self.state,
            "attempts": self.attempts,
            "failures": self.failures,
            "interrupted": self.interrupted,
            "last_error": self.last_error,
            "recipients": list(self.recipients),
            "message_id": self.message_id,
            "settled_at": self.settled_at.astimezone(TOKYO).isoformat() if self.settled_at else None,
        }



class TimerStore(ABC):
    """The timer table: a projection of the log (the process managers' decisions, with the
    tracking position of the last event applied) and the state of each notification's mail.

    A row's life: `pending` until its mail is recorded as sent (`sent`), or it is no longer
    wanted (`cancelled` by a renewal or an activation, `skipped` when found obsolete at send
    time), or its sends kept failing (`failed`, listed for an operator, who can send it
    again). While pending, the scheduler marks it enqueued when it hands its id to the
    broker, and a worker holds it (a claim) while sending; the rendered message is kept in
    its outbox from just before it is handed to the mail server until the send is recorded.
    """

    @abstractmethod
    def create_tables(self) -> None: ...

    # the projection's side
    @abstractmethod
    def position(self) -> int | None:
        """The log position of the last event applied (None: none yet)."""

    @abstractmethod
    def apply(self, changes: Sequence[TimerChange], expected: int | None, position: int) -> None:
        """Apply one batch of decisions and move the position from `expected` to `position`
        in one transaction; PositionMoved when another process got there first."""

    @abstractmethod
    def clear(self) -> None:
        """Forget every timer and the position: the projection then rebuilds them."""

    # the scheduler's side
    @abstractmethod
    def take_due(self, as_of: datetime, now: datetime, requeue_before: datetime, limit: int) -> list[TimerRow]: ...

    @abstractmethod
    def forget_enqueue(self, notification_ids: Sequence[UUID]) -> None: ...

    # the sender's side
    @abstractmethod
    def get(self, notification_id: UUID) -> TimerRow | None: ...

    @abstractmethod
    def claim(
        self, notification_id: UUID, now: datetime, until: datetime, data: bytes, recipients: Sequence[str], message_id: str
    ) -> TimerRow | None: ...

    @abstractmethod
    def settle(self, notification_id: UUID, state: str, at: datetime, note: str | None = None) -> None: ...

    @abstractmethod
    def record_failure(
        self, notification_id: UUID, error: str, retry_at: datetime | None, at: datetime, *, keep_outbox: bool
    ) -> None: ...

    # A worker's batch: each row as above, many in one transaction (the SQL stores).
    def get_many(self, notification_ids: Sequence[UUID]) -> dict[UUID, TimerRow]:
        rows = {notification_id: self.get(notification_id) for notification_id in notification_ids}
        return {notification_id: row for notification_id, row in rows.items() if row is not None}

    def claim_many(
        self, claims: Sequence[tuple[UUID, bytes, Sequence[str], str]], now: datetime, until: datetime
    ) -> dict[UUID, TimerRow]:
        """`claim` of each (notification id, data, recipients, message id): the rows claimed."""
        rows = {c[0]: self.claim(c[0], now, until, c[1], c[2], c[3]) for c in claims}
        return {notification_id: row for notification_id, row in rows.items() if row is not None}

    def settle_many(self, settles: Sequence[tuple[UUID, str, datetime, str | None]]) -> None:
        """`settle` of each (notification id, state, at, note)."""
        for notification_id, state, at, note in settles:
            self.settle(notification_id, state, at, note)

    # the operator's side
    @abstractmethod
    def failed(self) -> list[TimerRow]: ...

    @abstractmethod
    def resend(self, notification_id: UUID, now: datetime) -> TimerRow | None: ...

    @abstractmethod
    def of(self, aggregate_id: UUID) -> list[TimerRow]: ...

    @abstractmethod
    def counts(self) -> dict[str, int]: ...

    # personal data forgotten (docs/privacy.md)
    @abstractmethod
    def forget_personal_data(self, aggregate_ids: Sequence[UUID], values: Sequence[str]) -> int:
        """Rows of these aggregates' mails lose the rendered messages kept in their outbox
        (rendered again if still to be sent), the recipients and errors that name any of
        `values`; answers how many rows changed."""

class Dispatcher(Protocol):
    def dispatch(self, notification_ids: Sequence[UUID]) -> None: ...


# --- access -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionRow:
    token_hash: str
    account_id: str
    epoch: int  # the account's credentials epoch at login: a password or e-mail change ends it
    created_at: datetime
    last_seen_at: datetime
    ended_at: datetime | None


class CredentialStore(Protocol):
    """Customers' sessions and the API keys' last use: operational rows, not events (a
    request's activity is not a change to record). Tokens are kept only as their SHA-256."""

    def create_tables(self) -> None: ...

    def start_session(self, token_hash: str, account_id: str, epoch: int, at: datetime) -> None: ...

    def session(self, token_hash: str) -> SessionRow | None: ...

    def seen(self, token_hash: str, at: datetime) -> None: ...

    def end_session(self, token_hash: str, at: datetime) -> None: ...

    def key_used(self, key_id: str, at: datetime) -> None: ...

    def keys_last_used(self) -> dict[str, datetime]: ...


class AttemptCounter(Protocol):
    """Counts one attempt of `action` per key given (client=..., address=...); raises
    RateLimited (429 with Retry-After) once a limit is spent. A key given as None is not counted."""

    def check(self, action: str, **keys: str | None) -> None: ...


class LoginThrottling(Protocol):
    """Waits after wrong passwords per (login ID, client address) and per client address;
    never a block of the account (docs/security.md)."""

    def check(self, address: str, client: str | None) -> None: ...

    def failed(self, address: str, client: str | None) -> None: ...

    def succeeded(self, address: str, client: str | None) -> None: ...


# --- bulk registration (K-1) -------------------------------------------------------------


class BulkUploads(Protocol):
    """Where uploaded sheets are kept and who is working on which."""

    def create_tables(self) -> None: ...

    def put(self, job_id: UUID, content: bytes, at: datetime, rows: str | None = None) -> None: ...

    def content(self, job_id: UUID) -> bytes | None: ...

    def claim(self, job_id: UUID, holder: str, at: datetime, lease: timedelta) -> bool: ...

    def release(self, job_id: UUID, holder: str, *, finished: bool) -> None: ...

    def requeue(
        self, job_id: UUID, at: datetime, wait: timedelta, *, stalled_after: timedelta | None = None
    ) -> bool: ...

    def rows(self, job_id: UUID) -> str | None: ...

    def finish(self, job_id: UUID) -> None: ...

    def stalled(self, at: datetime, older_than: timedelta) -> list[UUID]: ...


# --- personal data ------------------------------------------------------------------------


class SubjectKeys(Protocol):
    """The data subjects' keys: personal fields are sealed with them (application/sealing.py)."""

    def key(self, subject_id: str) -> Any: ...

    def key_for_sealing(self, subject_id: str) -> Any: ...


# --- the audit log ------------------------------------------------------------------------


@dataclass(frozen=True)
class StoredCheckpoint:
    tree_size: int
    root_hash: str  # hex
    note: str
    signed_at: datetime


class CheckpointStore(Protocol):
    """The audit tree's signed checkpoints, kept beside the events (docs/audit.md)."""

    def create_tables(self) -> None: ...

    def add(self, tree_size: int, root_hash: str, note: str, at: datetime) -> None:
        """Keeps the first checkpoint of each size (two processes may sign the same one)."""

    def latest(self) -> StoredCheckpoint | None: ...

    def at(self, tree_size: int) -> StoredCheckpoint | None: ...

    def all(self) -> list[StoredCheckpoint]: ...
