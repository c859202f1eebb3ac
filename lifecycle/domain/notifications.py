"""What mail is due when (M-1, M-3, A-2…A-4): the notifications, their ids, and the
schedule that dates them. Pure values and rules; the process managers
(`lifecycle/policies/mail_timers.py`) decide from events, the timer table stores it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from enum import Enum
from functools import lru_cache
from uuid import NAMESPACE_URL, UUID, uuid5

from lifecycle.domain.business_calendar import JAPAN, BusinessCalendar
from lifecycle.domain.dates import TOKYO
from lifecycle.domain.periods import RenewalPolicy

# M-1: the completion mail goes out no later than the 4th business day counting from the
# day after the registration.
SERVICE_IN_DEADLINE_BUSINESS_DAYS = 4


@lru_cache(maxsize=8192)  # one calendar walk per registration day
def service_in_deadline(registered_on: date, calendar: BusinessCalendar = JAPAN) -> date:
    """M-1: the last day the service-in mail may go out."""
    return calendar.nth_business_day_after(registered_on, SERVICE_IN_DEADLINE_BUSINESS_DAYS)


class NotificationKind(str, Enum):
    SERVICE_IN = "service_in"
    RENEWAL_REMINDER = "renewal_reminder"
    ACCOUNT_CONFIRMATION = "account_confirmation"
    EMAIL_CHANGE_CONFIRMATION = "email_change_confirmation"
    PASSWORD_RESET = "password_reset"
    # Not a mail: a provisional account never confirmed has its personal data erased when
    # this is due (retention, docs/privacy.md); on the same timers so that it is durable.
    ACCOUNT_RETENTION = "account_retention"
    ALREADY_REGISTERED = "already_registered"  # a sign-up of a registered address
    EMAIL_CHANGED = "email_changed"  # to the old address, after the change


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
    """The account was activated: its confirmation mail and its retention are not wanted."""

    account_id: UUID


TimerChange = Schedule | Settle | CancelReminders | CancelConfirmation


def service_in_id(contract_id: UUID, serial: str, event_version: int) -> UUID:
    return uuid5(NAMESPACE_URL, f"/notifications/service-in/{contract_id}/{serial}/{event_version}")


def reminder_id(contract_id: UUID, serial: str, period_end: date, stage: ReminderStage) -> UUID:
    """One reminder of each stage per period (M-3)."""
    return uuid5(NAMESPACE_URL, f"/notifications/renewal-reminder/{contract_id}/{serial}/{period_end}/{stage.value}")


def confirmation_id(account_id: UUID, expires_at: datetime) -> UUID:
    return uuid5(NAMESPACE_URL, f"/notifications/account-confirmation/{account_id}/{expires_at.isoformat()}")


def retention_id(account_id: UUID, expires_at: datetime) -> UUID:
    return uuid5(NAMESPACE_URL, f"/notifications/account-retention/{account_id}/{expires_at.isoformat()}")


def email_change_id(account_id: UUID, requested_at: datetime) -> UUID:
    """One confirmation mail per e-mail change request (A-3)."""
    return uuid5(NAMESPACE_URL, f"/notifications/email-change/{account_id}/{requested_at.isoformat()}")


def password_reset_id(account_id: UUID, requested_at: datetime) -> UUID:
    """One reset mail per password reset request (A-4)."""
    return uuid5(NAMESPACE_URL, f"/notifications/password-reset/{account_id}/{requested_at.isoformat()}")


def account_notice_id(kind: NotificationKind, account_id: UUID, event_version: int) -> UUID:
    """One notice to the owner per event that calls for it (a repeated sign-up, an e-mail change)."""
    return uuid5(NAMESPACE_URL, f"/notifications/{kind.value}/{account_id}/{event_version}")


@dataclass(frozen=True)
class NotificationSchedule:
    """When mails go out. All days are Asia/Tokyo business dates."""

    renewal: RenewalPolicy
    calendar: BusinessCalendar = JAPAN
    service_in_business_days: int = 1  # 0: as soon as registered
    send_time: time = time(10, 0)
    one_month_reminder: bool = True
    expiry_notice: bool = True
    provisional_retention: timedelta = timedelta(days=30)  # a provisional account's data, unconfirmed

    def at(self, day: date, at: time | None = None) -> datetime:
        return datetime.combine(day, at or self.send_time, tzinfo=TOKYO)

    def at_once(self, day: date) -> datetime:
        """Due from the start of `day`: the next scheduler run sends it."""
        return datetime.combine(day, time(0, 0), tzinfo=TOKYO)

    def service_in_deadline(self, registered_on: date) -> date:
        return service_in_deadline(registered_on, self.calendar)

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
