"""Sending each notification once (M-4).

The broker delivers a batch of notification ids at least once, and a worker can die at any
instant. `deliver_many` makes that safe with records before and after the one step that
cannot be undone, handing a message to the mail server:

1. claim and record-before, in one commit for the batch: each timer row is held for `lease`
   (one sender at a time; a row that is not pending, or held by a live worker, is left
   alone), and its rendered message, with its deterministic Message-ID, is written to the
   row's outbox before the server sees a byte of it.
2. send, then record-after, mail by mail: the ServiceInNotified / RenewalReminderSent /
   ConfirmationMailSent / EmailChangeMailSent / PasswordResetMailSent / NoticeMailSent event
   is saved on the aggregate as soon as the server has taken the message, and the thread
   waits for that commit before its next mail (threads recording at the same moment share
   one transaction: MailRecords). The rows are settled in one commit after the batch.

A worker killed (SIGKILL) at any point leaves a row that a later delivery finds again
once the lease has run out (the scheduler enqueues it again):
- before 1: nothing was sent; the mail is rendered and sent now. No loss.
- between 1 and the server's acceptance: nothing was delivered; the outbox is sent.
- between the server's acceptance and 2: the server may hold the message, and no
  protocol can tell (SMTP has no two-phase commit). The outbox is sent again: the very
  same bytes with the same Message-ID, which mail stores use to recognise a copy (our
  Maildir writer, and e.g. a mail catcher set to ignore duplicate ids, keep one). So a
  recipient never gets two different mails for one notification, nor none.
- after 2 (recorded, the row not yet settled): the aggregate already records the
  notification; nothing is sent again, and the row is settled then.
The window of the third case is one database commit long, for one mail per thread whatever
the batch; `interrupted` on the row counts how often a send was resumed after a worker died
holding it.

A worker that is not killed but frozen (SIGSTOP, a paused VM) or held up while it holds a
claim is the other danger: once the claim runs out the mail is given to another worker, and
the first, resumed, would send it too. So each message goes only after a last check (just
before SMTP DATA) that at least half of the claim is left; a worker held up past that sends
nothing and leaves the row to the worker that took it over. A batch's claims are all made
at its start: a mail late in a slow batch meets the same check.

Failures are retried through the timer itself (durable, unlike a broker's delayed
message): the n-th failure makes the row due again after min(base * 2**(n-1), max)
seconds; after `max_attempts` failures, or at once on a permanent refusal (5xx), it is
`failed`, listed for an operator and sendable again.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from uuid import UUID

from eventsourcing.persistence import InterfaceError, OperationalError

from lifecycle.aggregates.accounts import Account
from lifecycle.aggregates.contract import Contract
from lifecycle.application.accounts import Accounts
from lifecycle.application.companies import Companies
from lifecycle.application.mail_records import MailRecords
from lifecycle.availability import EventStoreDown, is_outage
from lifecycle.domain.access import SYSTEM_MAILER, acting_as
from lifecycle.domain.dates import tokyo_today
from lifecycle.domain.errors import DomainError
from lifecycle.domain.notifications import NotificationKind, account_notice_id, email_change_id, password_reset_id
from lifecycle.domain.periods import RenewalPolicy
from lifecycle.mail.rendering import MailComposer
from lifecycle.ports import (
    PENDING,
    SENT,
    SKIPPED,
    ClaimLost,
    Clock,
    Mailer,
    MailRefused,
    OutgoingMail,
    TimerRow,
    TimerStore,
)

log = logging.getLogger(__name__)

_ADDRESS = re.compile(r"[^\s<>\"'(),;:]+@[^\s<>\"'(),;:]+")


def _without_addresses(text: str) -> str:
    """An SMTP error may quote the recipient: log lines name ids, never addresses."""
    return _ADDRESS.sub("<address>", text)


class Outcome(str, Enum):
    SENT = "sent"
    ALREADY_SENT = "already_sent"  # its event was in the log: nothing was sent again
    SKIPPED = "skipped"  # no longer wanted (renewed, activated, expired)
    DONE = "done"  # not a mail: the timer's work was done (a provisional account's data erased)
    NOT_CLAIMED = "not_claimed"  # not pending, or another worker holds it
    CLAIM_LOST = "claim_lost"  # held up past its claim before handing the message over: not sent
    RETRY = "retry"
    FAILED = "failed"


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    base_seconds: float = 60.0
    max_seconds: float = 3600.0

    def retry_at(self, failures: int, now: datetime) -> datetime | None:
        """When to try again after the `failures`-th failure; None: give up."""
        if failures >= self.max_attempts:
            return None
        return now + timedelta(seconds=min(self.max_seconds, self.base_seconds * 2 ** (failures - 1)))


@dataclass(frozen=True)
class Letter:
    """A mail ready to go, and how to record it once the server has taken it."""

    mail: OutgoingMail
    record: Callable[[tuple[str, ...], datetime], None]
    note: str = ""  # recorded on the timer with the send: e.g. who was left out, and why


@dataclass(frozen=True)
class Settled:
    outcome: Outcome
    reason: str = ""


class NotificationSender:
    def __init__(
        self,
        accounts: Accounts,  # the registrants, and the tokens of their mailed URLs
        companies: Companies,  # the contracts the mails are about
        records: MailRecords,  # records each mail sent as an event
        renewal: RenewalPolicy,
        store: TimerStore,
        composer: MailComposer,
        mailer: Mailer,
        *,
        clock: Clock,
        confirmation_url_base: str,
        retry: RetryPolicy,
        email_change_url_base: str = "http://localhost:8000/email/confirm",
        password_reset_url_base: str = "http://localhost:8000/password-reset",
        login_url: str = "http://localhost:8000/portal/login",
        forgot_password_url: str = "http://localhost:8000/portal/password-reset",
        lease_seconds: float,
        wall_clock: Clock,
    ) -> None:
        self.accounts = accounts
        self.companies = companies
        self.records = records
        self.renewal = renewal
        self.store = store
        self.composer = composer
        self.mailer = mailer
        self.clock = clock  # the domain's: due times, sent_at
        self.wall_clock = wall_clock  # leases between processes
        self.confirmation_url_base = confirmation_url_base
        self.email_change_url_base = email_change_url_base
        self.password_reset_url_base = password_reset_url_base
        self.login_url = login_url
        self.forgot_password_url = forgot_password_url
        self.retry = retry
        self.lease = timedelta(seconds=lease_seconds)
        # Retention: erases a provisional account's personal data, answering what it erased.
        self.erase_unconfirmed: Callable[[UUID], str] | None = None

    def deliver(self, notification_id: UUID) -> Outcome:
        return self.deliver_many([notification_id])[notification_id]

    def deliver_many(self, notification_ids: Sequence[UUID]) -> dict[UUID, Outcome]:
        """A batch, each mail as `deliver` would send it alone: one read of the rows, each
        contract and account loaded once, every claim and outbox in one commit, then each
        mail sent and recorded in turn, and the rows settled in one commit at the end."""
        ids = list(dict.fromkeys(notification_ids))
        rows = self.store.get_many(ids)
        outcomes = dict.fromkeys(ids, Outcome.NOT_CLAIMED)
        loads = _Loads(self.companies, self.accounts)
        letters: dict[UUID, tuple[TimerRow, Letter]] = {}
        settles: list[tuple[UUID, str, datetime, str | None]] = []
        for notification_id in ids:
            row = rows.get(notification_id)
            if row is None or row.state != PENDING:
                continue
            # What a send records (the mail on the contract or account) names the mailer as its actor.
            try:
                with acting_as(SYSTEM_MAILER, request_id=f"notification:{notification_id}"):
                    prepared = self._prepare(row, loads)
            except Exception as error:  # one mail's trouble leaves the rest of the batch to go
                if is_outage(error):
                    raise  # the store is away: so for the whole batch
                log.exception("notification %s: could not be prepared; the scheduler enqueues it again",
                              notification_id)
                continue
            if isinstance(prepared, Settled):
                state = SENT if prepared.outcome in (Outcome.ALREADY_SENT, Outcome.DONE) else SKIPPED
                settles.append((notification_id, state, self.clock.now(), prepared.reason or None))
                outcomes[notification_id] = prepared.outcome
            else:
                letters[notification_id] = (row, prepared)
        self.store.settle_many(settles)
        if not letters:
            return outcomes
        now = self.wall_clock.now()
        claimed = self.store.claim_many(
            [(n, letter.mail.data, letter.mail.recipients, letter.mail.message_id) for n, (_, letter) in letters.items()],
            now, now + self.lease,
        )
        settles = []
        try:
            for notification_id, (row, letter) in letters.items():
                if notification_id in claimed:
                    with acting_as(SYSTEM_MAILER, request_id=f"notification:{notification_id}"):
                        outcomes[notification_id] = self._send(row, letter, claimed[notification_id], settles)
        finally:
            # A row left unsettled (a worker dying before this) is found again: its event is
            # in the log, so it is settled then without sending.
            self.store.settle_many(settles)
        return outcomes

    def _send(self, row: TimerRow, prepared: Letter, claimed: TimerRow,
              settles: list[tuple[UUID, str, datetime, str | None]]) -> Outcome:
        notification_id = row.notification_id
        assert claimed.outbox is not None
        rendered = prepared.mail
        mail = OutgoingMail(claimed.message_id or rendered.message_id, rendered.sender, claimed.recipients,
                            rendered.subject, claimed.outbox)
        if mail.data != rendered.data:
            # An earlier send of this notification was interrupted after its message was
            # recorded: the server may hold it, so send exactly those bytes again.
            log.warning("notification %s: sending the recorded message %s again", notification_id, mail.message_id)
        try:
            accepted = self.mailer.send(mail, self._still_held(claimed))
        except ClaimLost as lost:
            # Another worker may hold it now: the row is theirs (or the scheduler's) to settle.
            log.warning("notification %s: %s; nothing sent, left to the worker holding it now", notification_id, lost)
            return Outcome.CLAIM_LOST
        except MailRefused as refusal:
            return self._failed(claimed, f"refused: {refusal}", keep_outbox=False, permanent=refusal.permanent)
        except Exception as error:  # noqa: BLE001 - any other error leaves it unknown whether the server took it
            return self._failed(claimed, f"{type(error).__name__}: {error}", keep_outbox=True)
        sent_at = self.clock.now()
        # Recorded at once, mail by mail: the moment the server holds a message that the log
        # does not is one commit long, whatever the batch.
        self._record(prepared.record, accepted, sent_at)
        settles.append((notification_id, SENT, sent_at, prepared.note or None))
        # Ids, the kind and a count: never the addresses.
        log.info("notification %s (%s) sent to %d recipients", notification_id, row.timer.kind.value, len(accepted),
                 extra={"notification_id": str(notification_id), "kind": row.timer.kind.value,
                        "recipients": len(accepted)})
        return Outcome.SENT

    def _still_held(self, claimed: TimerRow) -> Callable[[], None]:
        """The check made just before the message goes. A worker frozen (SIGSTOP, a paused VM)
        or held up until its claim is nearly out may find the mail given to another worker,
        which would send it too: it hands the message over only while at least half of its
        claim is left, time for the rest of the send (the claim exceeds twice the SMTP timeout)."""
        assert claimed.claimed_until is not None
        until, half = claimed.claimed_until, self.lease / 2

        def check() -> None:
            left = until - self.wall_clock.now()
            if left < half:
                raise ClaimLost(f"held up {(self.lease - left).total_seconds():.1f}s of its "
                                f"{self.lease.total_seconds():g}s claim before handing the message over")

        return check

    def _record(self, record: Callable[[tuple[str, ...], datetime], None], accepted: tuple[str, ...], at: datetime) -> None:
        # The mail is out: try hard to record it within the lease, or it would be sent again.
        for attempt in range(5):
            try:
                record(accepted, at)
                return
            except (OperationalError, InterfaceError, EventStoreDown):  # the store away: wait for it within the lease
                if attempt == 4:
                    raise
                time.sleep(0.5 * 2**attempt)

    def _failed(self, row: TimerRow, error: str, *, keep_outbox: bool, permanent: bool = False) -> Outcome:
        failures = row.failures + 1
        retry_at = None if permanent else self.retry.retry_at(failures, self.clock.now())
        reason = _without_addresses(error)
        log.warning("notification %s: send %d failed (%s); %s", row.notification_id, failures, reason,
                    f"again at {retry_at.isoformat()}" if retry_at else "giving up",
                    extra={"notification_id": str(row.notification_id), "kind": row.timer.kind.value,
                           "attempt": failures, "error": reason,
                           "retry_at": retry_at.isoformat() if retry_at else None})
        self.store.record_failure(row.notification_id, error, retry_at, self.clock.now(), keep_outbox=keep_outbox)
        return Outcome.RETRY if retry_at else Outcome.FAILED

    # --- what to send -------------------------------------------------------------------

    def _prepare(self, row: TimerRow, loads: _Loads) -> Letter | Settled:
        timer = row.timer
        try:
            if timer.kind is NotificationKind.SERVICE_IN:
                return self._service_in(row, loads)
            if timer.kind is NotificationKind.RENEWAL_REMINDER:
                return self._renewal_reminder(row, loads)
            if timer.kind is NotificationKind.EMAIL_CHANGE_CONFIRMATION:
                return self._email_change_confirmation(row)
            if timer.kind is NotificationKind.PASSWORD_RESET:
                return self._password_reset(row)
            if timer.kind is NotificationKind.ACCOUNT_RETENTION:
                return self._retention(row)
            if timer.kind in (NotificationKind.ALREADY_REGISTERED, NotificationKind.EMAIL_CHANGED):
                return self._notice(row)
            return self._account_confirmation(row)
        except DomainError as error:  # the aggregate no longer has what the mail is about
            return Settled(Outcome.SKIPPED, f"{error.code}: {error.detail}")

    def _service_in(self, row: TimerRow, loads: _Loads) -> Letter | Settled:
        timer = row.timer
        contract = loads.company(timer.aggregate_id)
        if contract.has_notified(timer.notification_id):
            return Settled(Outcome.ALREADY_SENT)
        assert timer.serial is not None
        registration = contract.registration(timer.serial)
        account = loads.account(contract.account_id)
        recipients = contract.notification_recipients(timer.serial, account.email)
        if not recipients:
            return Settled(Outcome.SKIPPED, _erased_note(contract.erased_recipients(timer.serial, account.email)))
        mail = self.composer.service_in(
            timer.notification_id,
            recipients,
            self.clock.now(),
            contract_number=contract.contract_number,
            user_name=account.name,
            registration=registration,
            site=contract.site(registration.site_id),
        )

        def record(accepted: tuple[str, ...], at: datetime) -> None:
            loads.keep(self.records.record_contract_mail_sent(contract.id, lambda c: c.record_service_in_notified(
                timer.notification_id, timer.serial, list(accepted), mail.message_id, at), contract=loads.take(contract.id)))

        return Letter(mail, record, _erased_note(contract.erased_recipients(timer.serial, account.email)))

    def _renewal_reminder(self, row: TimerRow, loads: _Loads) -> Letter | Settled:
        timer = row.timer
        contract = loads.company(timer.aggregate_id)
        if contract.has_notified(timer.notification_id):
            return Settled(Outcome.ALREADY_SENT)
        assert timer.serial is not None and timer.stage is not None and timer.period_end is not None
        registration = contract.registration(timer.serial)
        if registration.period.end != timer.period_end:
            return Settled(Outcome.SKIPPED, f"renewed: the period now ends {registration.period.end}")
        window = self.renewal.window(timer.period_end)
        if tokyo_today(self.clock.now()) > window[1]:
            return Settled(Outcome.SKIPPED, f"the renewal window closed on {window[1]}")
        account = loads.account(contract.account_id)
        recipients = contract.notification_recipients(timer.serial, account.email)
        if not recipients:
            return Settled(Outcome.SKIPPED, _erased_note(contract.erased_recipients(timer.serial, account.email)))
        mail = self.composer.renewal_reminder(
            timer.notification_id,
            recipients,
            self.clock.now(),
            stage=timer.stage.value,
            contract_number=contract.contract_number,
            user_name=account.name,
            registration=registration,
            site=contract.site(registration.site_id),
            period=registration.period,
            window=window,
        )

        def record(accepted: tuple[str, ...], at: datetime) -> None:
            loads.keep(self.records.record_contract_mail_sent(contract.id, lambda c: c.record_renewal_reminder_sent(
                timer.notification_id, timer.serial, timer.stage.value, timer.period_end, list(accepted),
                mail.message_id, at), contract=loads.take(contract.id)))

        return Letter(mail, record, _erased_note(contract.erased_recipients(timer.serial, account.email)))

    def _retention(self, row: TimerRow) -> Settled:
        """A provisional account never confirmed: its personal data erased (docs/privacy.md)."""
        account = self.accounts.account(row.timer.aggregate_id)
        if account.is_active:
            return Settled(Outcome.SKIPPED, "the account was confirmed")
        if account.is_erased:
            return Settled(Outcome.SKIPPED, "the account's personal data was already erased")
        assert self.erase_unconfirmed is not None, "bootstrap wires the retention"
        erased = self.erase_unconfirmed(account.id)
        log.info("retention: %s", erased, extra={"notification_id": str(row.notification_id)})
        return Settled(Outcome.DONE, erased)

    def _account_to_mail(
        self, row: TimerRow, sent: Callable[[Account, UUID], bool] = Account.has_mail
    ) -> Account | Settled:
        """The account a mail goes to, or why it is not sent: already sent (by default: any mail
        of the account with the notification's id), or the account's personal data erased."""
        timer = row.timer
        account = self.accounts.account(timer.aggregate_id)
        if sent(account, timer.notification_id):
            return Settled(Outcome.ALREADY_SENT)
        if account.is_erased:
            return Settled(Outcome.SKIPPED, "the account's personal data was erased (docs/privacy.md)")
        return account

    def _account_letter(self, account: Account, mail: OutgoingMail, record_on: Callable[..., None]) -> Letter:
        """The mail, and how its sending is recorded on the account: `record_on(account,
        recipients, message_id, at)`."""

        def record(accepted: tuple[str, ...], at: datetime) -> None:
            self.records.record_account_mail_sent(
                account.id, lambda a: record_on(a, list(accepted), mail.message_id, at), account=account
            )

        return Letter(mail, record)

    def _account_confirmation(self, row: TimerRow) -> Letter | Settled:
        timer = row.timer
        account = self._account_to_mail(row, sent=Account.has_confirmation_mail)
        if isinstance(account, Settled):
            return account
        if account.is_active:
            return Settled(Outcome.SKIPPED, "the account is already active")
        if self.clock.now() > account.confirmation_expires_at:
            return Settled(Outcome.SKIPPED, "the confirmation URL has expired")
        token = self.accounts.confirmation_token(account.id)
        mail = self.composer.account_confirmation(
            timer.notification_id,
            account.email,
            self.clock.now(),
            user_name=account.name,
            url=_with_token(self.confirmation_url_base, token),
            expires_at=account.confirmation_expires_at,
        )
        return self._account_letter(
            account, mail, lambda a, *sent: a.record_confirmation_mail_sent(timer.notification_id, *sent)
        )

    def _email_change_confirmation(self, row: TimerRow) -> Letter | Settled:
        timer = row.timer
        account = self._account_to_mail(row)
        if isinstance(account, Settled):
            return account
        pending = account.email_change()
        if pending is None or email_change_id(account.id, pending["requested_at"]) != timer.notification_id:
            return Settled(Outcome.SKIPPED, "the e-mail change was applied or superseded")
        if self.clock.now() > pending["expires_at"]:
            return Settled(Outcome.SKIPPED, "the e-mail change URL has expired")
        mail = self.composer.email_change_confirmation(
            timer.notification_id,
            pending["email"],
            self.clock.now(),
            user_name=account.name,
            current_email=account.email,
            url=_with_token(self.email_change_url_base, self.accounts.email_change_token(account.id)),
            expires_at=pending["expires_at"],
        )
        return self._account_letter(
            account, mail, lambda a, *sent: a.record_email_change_mail_sent(timer.notification_id, *sent)
        )

    def _password_reset(self, row: TimerRow) -> Letter | Settled:
        timer = row.timer
        account = self._account_to_mail(row)
        if isinstance(account, Settled):
            return account
        pending = account.password_reset()
        if pending is None or password_reset_id(account.id, pending["requested_at"]) != timer.notification_id:
            return Settled(Outcome.SKIPPED, "the password reset was used or superseded")
        if self.clock.now() > pending["expires_at"]:
            return Settled(Outcome.SKIPPED, "the password reset link has expired")
        mail = self.composer.password_reset(
            timer.notification_id,
            account.email,
            self.clock.now(),
            user_name=account.name,
            url=_with_token(self.password_reset_url_base, self.accounts.password_reset_token(account.id)),
            expires_at=pending["expires_at"],
        )
        return self._account_letter(
            account, mail, lambda a, *sent: a.record_password_reset_mail_sent(timer.notification_id, *sent)
        )


    def _notice(self, row: TimerRow) -> Letter | Settled:
        """A notice to the owner: "you already have an account" (with the login and reset
        links) to the login ID, or "your login ID was changed" (when, and how to reach
        support) to the address the change replaced. A notice found long after its event
        (a timer table rebuilt from an old log) is not worth sending."""
        timer = row.timer
        account = self._account_to_mail(row)
        if isinstance(account, Settled):
            return account
        if self.clock.now() - timer.due_at > NOTICE_WORTH_SENDING:
            return Settled(Outcome.SKIPPED, "the notice is too old to be useful")
        now = self.clock.now()
        if timer.kind is NotificationKind.ALREADY_REGISTERED:
            recipient = account.email
            mail = self.composer.already_registered(
                timer.notification_id, recipient, now, user_name=account.name,
                login_url=self.login_url, forgot_password_url=self.forgot_password_url, attempted_at=timer.due_at,
            )
        else:
            replaced = {
                account_notice_id(NotificationKind.EMAIL_CHANGED, account.id, version): previous
                for version, previous in account.replaced_emails.items()
            }
            recipient = replaced.get(timer.notification_id, "")
            if not recipient:
                return Settled(Outcome.SKIPPED, "no e-mail change of this account matches the notice")
            mail = self.composer.email_changed(
                timer.notification_id, recipient, now, user_name=account.name, changed_at=timer.due_at,
            )
        return self._account_letter(
            account, mail, lambda a, *sent: a.record_notice_mail_sent(timer.notification_id, timer.kind.value, *sent)
        )


class _Loads:
    """A batch's contracts and registrants, each loaded once. A contract's mails of one
    batch are recorded on the same object, one after another (each save moves its version);
    should another process have changed the contract meanwhile, the record loads it afresh,
    and the next mail is recorded on that one."""

    def __init__(self, companies: Companies, accounts: Accounts) -> None:
        self.companies, self.accounts = companies, accounts
        self._contracts: dict[UUID, Contract] = {}
        self._accounts: dict[UUID, Account] = {}

    def company(self, contract_id: UUID) -> Contract:
        if contract_id not in self._contracts:
            self._contracts[contract_id] = self.companies.company(contract_id)
        return self._contracts[contract_id]

    def take(self, contract_id: UUID) -> Contract | None:
        """The contract to record a mail on; None after a failed record (it may hold an
        event the store does not): the record then loads it afresh."""
        return self._contracts.pop(contract_id, None)

    def keep(self, contract: Contract) -> None:
        """The contract as a record saved it, for the batch's next mail on it."""
        self._contracts[contract.id] = contract

    def account(self, account_id: UUID) -> Account:
        if account_id not in self._accounts:
            self._accounts[account_id] = self.accounts.account(account_id)
        return self._accounts[account_id]


# A notice to the owner due longer ago than this is skipped (see NotificationSender._notice).
NOTICE_WORTH_SENDING = timedelta(days=7)


def _erased_note(erased: list[str]) -> str:
    """The reason recorded for recipients left out: their personal data was forgotten."""
    return f"not mailed, personal data erased: {', '.join(erased)}" if erased else ""


def _with_token(base: str, token: str) -> str:
    separator = "&" if "?" in base else "?"
    return f"{base}{separator}token={token}"
