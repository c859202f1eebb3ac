"""The process managers of the mails (M-1…M-4, A-2): which events make which notification
due, and when. Pure decisions over the contract's and the account's events; the timer
projection (timers.py) stores what they decide, the sender (delivery.py) carries it out.

- TicketRegistered, BundleRegistered and Renewed make a service-in mail due: by default the
  next business day at 10:00 Asia/Tokyo, never later than M-1's deadline (the 4th business
  day counting from the day after the registration).
- The same events make the renewal reminders of the new period due: 3 months before the end
  (the day the renewal window opens, M-3), optionally 1 month before and on the end day.
  A registration made after a reminder's day gets the 3-month one at once; Renewed cancels
  the reminders of the period it continues.
- SignedUp makes the confirmation mail due at once; Activated cancels it if still unsent.
- EmailChangeRequested (A-3) makes the confirmation mail to the new address due at once,
  PasswordResetRequested (A-4) the reset mail; a request applied or superseded before its
  mail went out is skipped by the sender.
- The *Notified/*Sent events settle the notification they record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from enum import Enum
from functools import singledispatchmethod
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from lifecycle.aggregates.accounts import Account
from lifecycle.aggregates.contract import Contract
from lifecycle.clock import TOKYO
from lifecycle.domain.business_calendar import JAPAN, BusinessCalendar
from lifecycle.application.accounts import CONFIRMATION_VALIDITY
from lifecycle.domain.periods import RenewalPolicy

SERVICE_IN_DEADLINE_BUSINESS_DAYS = 4  # M-1


class NotificationKind(str, Enum):
    SERVICE_IN = "service_in"
    RENEWAL_REMINDER = "renewal_reminder"
    ACCOUNT_CONFIRMATION = "account_confirmation"
    EMAIL_CHANGE_CONFIRMATION = "email_change_confirmation"
    PASSWORD_RESET = "password_reset"


class ReminderStage(str, Enum):
    THREE_MONTHS = "three_months"  # M-3: the day the renewal window opens
    ONE_MONTH = "one_month"
    EXPIRY_DAY = "expiry_day"


@dataclass(frozen=True)
class Timer:
    """A notification that becomes due at `due_at`; its id names the mail for good."""

    notification_id: UUID
    kind: NotificationKind
    aggregate_id: UUID  # the contract, or the account for a confirmation
    due_at: datetime
    serial: str | None = None
    stage: ReminderStage | None = None
    period_end: date | None = None


# What the process managers ask of the timer store.
@dataclass(frozen=True)
class Schedule:
    timer: Timer


@dataclass(frozen=True)
class Settle:
    """The notification was sent: its event is in the log."""

    notification_id: UUID


@dataclass(frozen=True)
class CancelReminders:
    """The period ending on `period_end` was renewed: its reminders are not wanted."""

    contract_id: UUID
    serial: str
    period_end: date


@dataclass(frozen=True)
class CancelConfirmation:
    account_id: UUID


TimerChange = Schedule | Settle | CancelReminders | CancelConfirmation


def service_in_id(contract_id: UUID, serial: str, event_version: int) -> UUID:
    return uuid5(NAMESPACE_URL, f"/notifications/service-in/{contract_id}/{serial}/{event_version}")


def reminder_id(contract_id: UUID, serial: str, period_end: date, stage: ReminderStage) -> UUID:
    """One reminder of each stage per period (M-3)."""
    return uuid5(NAMESPACE_URL, f"/notifications/renewal-reminder/{contract_id}/{serial}/{period_end}/{stage.value}")


def confirmation_id(account_id: UUID, expires_at: datetime) -> UUID:
    return uuid5(NAMESPACE_URL, f"/notifications/account-confirmation/{account_id}/{expires_at.isoformat()}")


def email_change_id(account_id: UUID, requested_at: datetime) -> UUID:
    """One confirmation mail per e-mail change request (A-3)."""
    return uuid5(NAMESPACE_URL, f"/notifications/email-change/{account_id}/{requested_at.isoformat()}")


def password_reset_id(account_id: UUID, requested_at: datetime) -> UUID:
    """One reset mail per password reset request (A-4)."""
    return uuid5(NAMESPACE_URL, f"/notifications/password-reset/{account_id}/{requested_at.isoformat()}")


@dataclass(frozen=True)
class NotificationSchedule:
    """When mails go out. All days are Asia/Tokyo business dates."""

    renewal: RenewalPolicy
    calendar: BusinessCalendar = JAPAN
    service_in_business_days: int = 1  # 0: as soon as registered
    send_time: time = time(10, 0)
    one_month_reminder: bool = True
    expiry_notice: bool = True

    def at(self, day: date, at: time | None = None) -> datetime:
        return datetime.combine(day, at or self.send_time, tzinfo=TOKYO)

    def at_once(self, day: date) -> datetime:
        """Due from the start of `day`: the next scheduler run sends it."""
        return datetime.combine(day, time(0, 0), tzinfo=TOKYO)

    def service_in_deadline(self, registered_on: date) -> date:
        return self.calendar.nth_business_day_after(registered_on, SERVICE_IN_DEADLINE_BUSINESS_DAYS)

    def service_in_due(self, registered_on: date) -> datetime:
        days = min(self.service_in_business_days, SERVICE_IN_DEADLINE_BUSINESS_DAYS)
        if days <= 0:
            return self.at_once(registered_on)
        return self.at(self.calendar.nth_business_day_after(registered_on, days))

    def reminders(self, registered_on: date, period_end: date) -> list[tuple[ReminderStage, datetime]]:
        """The reminders of a period that starts being covered on `registered_on`."""
        opens, closes = self.renewal.window(period_end)
        if registered_on > closes:
            return []  # can no longer be renewed: nothing to remind of
        reminders = [
            (
                ReminderStage.THREE_MONTHS,
                self.at(opens) if opens >= registered_on else self.at_once(registered_on),
            )
        ]
        later = []
        if self.one_month_reminder:
            # The day a month before the day after the end, as the window's opening is for 3.
            later.append((ReminderStage.ONE_MONTH, RenewalPolicy(lead_months=1).window(period_end)[0]))
        if self.expiry_notice:
            later.append((ReminderStage.EXPIRY_DAY, period_end))
        # A stage whose day has passed is covered by the 3-month reminder sent at once.
        reminders += [(stage, self.at(day)) for stage, day in later if day > registered_on and day > opens]
        return reminders


class NotificationPolicies:
    """The process managers: each handled event answers the timer changes it causes."""

    def __init__(self, schedule: NotificationSchedule) -> None:
        self.schedule = schedule

    def _coverage_timers(
        self, contract_id: UUID, serial: str, event_version: int, registered_on: date, period_end: date
    ) -> list[TimerChange]:
        changes: list[TimerChange] = [
            Schedule(
                Timer(
                    service_in_id(contract_id, serial, event_version),
                    NotificationKind.SERVICE_IN,
                    contract_id,
                    self.schedule.service_in_due(registered_on),
                    serial=serial,
                    period_end=period_end,
                )
            )
        ]
        for stage, due_at in self.schedule.reminders(registered_on, period_end):
            changes.append(
                Schedule(
                    Timer(
                        reminder_id(contract_id, serial, period_end, stage),
                        NotificationKind.RENEWAL_REMINDER,
                        contract_id,
                        due_at,
                        serial=serial,
                        stage=stage,
                        period_end=period_end,
                    )
                )
            )
        return changes

    @singledispatchmethod
    def changes_for(self, event: Any) -> list[TimerChange]:
        return []

    @changes_for.register
    def _(self, event: Contract.TicketRegistered) -> list[TimerChange]:
        return self._coverage_timers(
            event.originator_id, event.serial, event.originator_version, event.registered_on, event.period.end
        )

    @changes_for.register
    def _(self, event: Contract.BundleRegistered) -> list[TimerChange]:
        return self._coverage_timers(
            event.originator_id, event.serial, event.originator_version, event.registered_on, event.period.end
        )

    @changes_for.register
    def _(self, event: Contract.Renewed) -> list[TimerChange]:
        return [
            CancelReminders(event.originator_id, event.serial, event.previous_end),
            *self._coverage_timers(
                event.originator_id, event.serial, event.originator_version, event.renewed_on, event.period.end
            ),
        ]

    @changes_for.register
    def _(self, event: Contract.ServiceInNotified) -> list[TimerChange]:
        return [Settle(event.notification_id)]

    @changes_for.register
    def _(self, event: Contract.RenewalReminderSent) -> list[TimerChange]:
        return [Settle(event.notification_id)]

    @changes_for.register
    def _(self, event: Account.SignedUp) -> list[TimerChange]:
        signed_up_at = event.confirmation_expires_at - CONFIRMATION_VALIDITY
        return [
            Schedule(
                Timer(
                    confirmation_id(event.originator_id, event.confirmation_expires_at),
                    NotificationKind.ACCOUNT_CONFIRMATION,
                    event.originator_id,
                    signed_up_at,
                )
            )
        ]

    @changes_for.register
    def _(self, event: Account.Activated) -> list[TimerChange]:
        return [CancelConfirmation(event.originator_id)]

    @changes_for.register
    def _(self, event: Account.ConfirmationMailSent) -> list[TimerChange]:
        return [Settle(event.notification_id)]

    @changes_for.register
    def _(self, event: Account.EmailChangeRequested) -> list[TimerChange]:
        return [
            Schedule(
                Timer(
                    email_change_id(event.originator_id, event.requested_at),
                    NotificationKind.EMAIL_CHANGE_CONFIRMATION,
                    event.originator_id,
                    event.requested_at,
                )
            )
        ]

    @changes_for.register
    def _(self, event: Account.PasswordResetRequested) -> list[TimerChange]:
        return [
            Schedule(
                Timer(
                    password_reset_id(event.originator_id, event.requested_at),
                    NotificationKind.PASSWORD_RESET,
                    event.originator_id,
                    event.requested_at,
                )
            )
        ]

    @changes_for.register
    def _(self, event: Account.EmailChangeMailSent) -> list[TimerChange]:
        return [Settle(event.notification_id)]

    @changes_for.register
    def _(self, event: Account.PasswordResetMailSent) -> list[TimerChange]:
        return [Settle(event.notification_id)]


# The events the policies react to, for filtering the log by topic.
HANDLED_EVENTS: tuple[type, ...] = (
    Contract.TicketRegistered,
    Contract.BundleRegistered,
    Contract.Renewed,
    Contract.ServiceInNotified,
    Contract.RenewalReminderSent,
    Account.SignedUp,
    Account.Activated,
    Account.ConfirmationMailSent,
    Account.EmailChangeRequested,
    Account.PasswordResetRequested,
    Account.EmailChangeMailSent,
    Account.PasswordResetMailSent,
)
