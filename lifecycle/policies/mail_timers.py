"""The process managers of the mails (M-1…M-4, A-2…A-4): which events make which
notification due, and when. Pure decisions over the contract's and the account's events;
the timer table (`lifecycle/adapters/timer_store.py`) stores what they decide, the sender
(`lifecycle/mail/sender.py`) carries it out.

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
- SignUpRepeated (a sign-up of a registered address, answered as a new one) makes the
  "you already have an account" notice to the owner due at once; EmailChanged the notice to
  the old address, with the time of the change and how to reach support.
- The *Notified/*Sent events settle the notification they record.
"""

from __future__ import annotations

from datetime import date, datetime
from functools import singledispatchmethod
from typing import Any
from uuid import UUID

from lifecycle.aggregates.accounts import Account
from lifecycle.aggregates.contract import Contract
from lifecycle.domain.accounts import CONFIRMATION_VALIDITY
from lifecycle.domain.notifications import (
    CancelConfirmation,
    CancelReminders,
    NotificationKind,
    NotificationSchedule,
    Schedule,
    Settle,
    Timer,
    TimerChange,
    account_notice_id,
    confirmation_id,
    email_change_id,
    password_reset_id,
    reminder_id,
    retention_id,
    service_in_id,
)


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
            ),
            Schedule(
                Timer(
                    retention_id(event.originator_id, event.confirmation_expires_at),
                    NotificationKind.ACCOUNT_RETENTION,
                    event.originator_id,
                    signed_up_at + self.schedule.provisional_retention,
                )
            ),
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
    def _(self, event: Account.SignUpRepeated) -> list[TimerChange]:
        return [self._notice(NotificationKind.ALREADY_REGISTERED, event, event.attempted_at)]

    @changes_for.register
    def _(self, event: Account.EmailChanged) -> list[TimerChange]:
        return [self._notice(NotificationKind.EMAIL_CHANGED, event, event.changed_at or event.timestamp)]

    @staticmethod
    def _notice(kind: NotificationKind, event: Any, at: datetime) -> Schedule:
        """Due at once; its due time is the instant the notice tells of."""
        notification_id = account_notice_id(kind, event.originator_id, event.originator_version)
        return Schedule(Timer(notification_id, kind, event.originator_id, at))

    @changes_for.register
    def _(self, event: Account.NoticeMailSent) -> list[TimerChange]:
        return [Settle(event.notification_id)]

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
    Account.SignUpRepeated,
    Account.EmailChanged,
    Account.NoticeMailSent,
)
