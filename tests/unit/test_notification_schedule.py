"""When the mails are due (M-1, M-3): the process managers' decisions, without a store."""

from __future__ import annotations

from datetime import date, datetime, time

from lifecycle.domain.dates import TOKYO
from lifecycle.domain.notifications import NotificationSchedule, ReminderStage
from lifecycle.domain.periods import RenewalPolicy

SCHEDULE = NotificationSchedule(renewal=RenewalPolicy(lead_months=3, grace_days=90))


def tokyo(*args: int) -> datetime:
    return datetime(*args, tzinfo=TOKYO)


def test_M1_service_in_is_due_the_next_business_day_at_ten() -> None:
    assert SCHEDULE.service_in_due(date(2026, 11, 20)) == tokyo(2026, 11, 24, 10)  # Mon 23 is a holiday
    assert SCHEDULE.service_in_due(date(2026, 12, 25)) == tokyo(2026, 12, 28, 10)


def test_M1_a_later_setting_is_capped_at_the_fourth_business_day() -> None:
    late = NotificationSchedule(renewal=RenewalPolicy(), service_in_business_days=9)
    assert late.service_in_due(date(2026, 12, 25)) == tokyo(2027, 1, 6, 10)
    assert late.service_in_deadline(date(2026, 12, 25)) == date(2027, 1, 6)


def test_M1_zero_days_means_at_once_and_the_time_is_a_setting() -> None:
    assert NotificationSchedule(RenewalPolicy(), service_in_business_days=0).service_in_due(
        date(2026, 11, 20)
    ) == tokyo(2026, 11, 20, 0)
    assert NotificationSchedule(RenewalPolicy(), send_time=time(9, 30)).service_in_due(
        date(2026, 11, 20)
    ) == tokyo(2026, 11, 24, 9, 30)


def test_M3_reminders_3_months_and_1_month_before_and_on_the_end_day() -> None:
    assert SCHEDULE.reminders(date(2026, 11, 20), date(2027, 12, 31)) == [
        (ReminderStage.THREE_MONTHS, tokyo(2027, 10, 1, 10)),  # the window opens
        (ReminderStage.ONE_MONTH, tokyo(2027, 12, 1, 10)),
        (ReminderStage.EXPIRY_DAY, tokyo(2027, 12, 31, 10)),
    ]


def test_M3_month_ends_are_clamped() -> None:
    [three, one, _] = SCHEDULE.reminders(date(2026, 11, 20), date(2027, 5, 30))
    assert three[1] == tokyo(2027, 2, 28, 10)  # 31 May less 3 months
    assert one[1] == tokyo(2027, 4, 30, 10)


def test_M3_the_later_reminders_can_be_turned_off() -> None:
    only_seed = NotificationSchedule(RenewalPolicy(), one_month_reminder=False, expiry_notice=False)
    assert [s for s, _ in only_seed.reminders(date(2026, 11, 20), date(2027, 12, 31))] == [ReminderStage.THREE_MONTHS]


def test_M3_a_registration_after_the_window_opened_gets_the_reminder_at_once_and_no_passed_stages() -> None:
    assert SCHEDULE.reminders(date(2026, 11, 20), date(2026, 12, 31)) == [
        (ReminderStage.THREE_MONTHS, tokyo(2026, 11, 20, 0)),
        (ReminderStage.ONE_MONTH, tokyo(2026, 12, 1, 10)),
        (ReminderStage.EXPIRY_DAY, tokyo(2026, 12, 31, 10)),
    ]
    assert SCHEDULE.reminders(date(2026, 12, 15), date(2026, 12, 31)) == [
        (ReminderStage.THREE_MONTHS, tokyo(2026, 12, 15, 0)),
        (ReminderStage.EXPIRY_DAY, tokyo(2026, 12, 31, 10)),
    ]


def test_P4_an_expired_but_renewable_registration_gets_one_reminder_at_once() -> None:
    assert SCHEDULE.reminders(date(2026, 11, 20), date(2026, 9, 30)) == [
        (ReminderStage.THREE_MONTHS, tokyo(2026, 11, 20, 0)),
    ]


def test_R2_no_reminder_once_the_renewal_window_has_closed() -> None:
    assert SCHEDULE.reminders(date(2026, 11, 20), date(2026, 8, 1)) == []
