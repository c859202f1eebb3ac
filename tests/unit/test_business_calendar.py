"""M-1: business days are Monday–Friday except national holidays and 29 Dec – 3 Jan."""

from __future__ import annotations

from datetime import date

import pytest

from lifecycle.domain.business_calendar import JAPAN


def test_M1_registered_friday_before_year_end_deadline_is_wednesday_6_january() -> None:
    # Sat 26, Sun 27 skipped; Mon 28 is the 1st; 29 Dec – 3 Jan closed; 4, 5, 6 Jan.
    deadline = JAPAN.nth_business_day_after(date(2026, 12, 25), 4)
    assert deadline == date(2027, 1, 6)
    assert deadline.strftime("%A") == "Wednesday"


def test_M1_golden_week_holidays_and_the_substitute_holiday_are_skipped() -> None:
    # 2026: 3 May (Sun) 憲法記念日, 4 みどりの日, 5 こどもの日, 6 振替休日.
    assert JAPAN.nth_business_day_after(date(2026, 4, 30), 1) == date(2026, 5, 1)
    assert JAPAN.nth_business_day_after(date(2026, 4, 30), 2) == date(2026, 5, 7)
    assert JAPAN.nth_business_day_after(date(2026, 4, 30), 4) == date(2026, 5, 11)


def test_M1_showa_day_on_a_wednesday_is_skipped() -> None:
    # 2026-04-29 (Wed) 昭和の日: registered on Tuesday 28 April.
    assert JAPAN.nth_business_day_after(date(2026, 4, 28), 1) == date(2026, 4, 30)


def test_M1_registered_on_a_holiday_counts_from_the_next_day() -> None:
    # 2026-11-23 (Mon) 勤労感謝の日.
    assert JAPAN.nth_business_day_after(date(2026, 11, 20), 1) == date(2026, 11, 24)
    assert JAPAN.nth_business_day_after(date(2026, 11, 23), 4) == date(2026, 11, 27)


@pytest.mark.parametrize(
    ("day", "open_"),
    [
        (date(2026, 12, 28), True),  # Monday before the closing
        (date(2026, 12, 29), False),
        (date(2026, 12, 31), False),
        (date(2027, 1, 1), False),  # 元日 and closing
        (date(2027, 1, 3), False),
        (date(2027, 1, 4), True),
        (date(2027, 1, 11), False),  # 成人の日
        (date(2026, 9, 22), False),  # 国民の休日 between 敬老の日 and 秋分の日
        (date(2026, 11, 21), False),  # Saturday
    ],
)
def test_M1_business_days(day: date, open_: bool) -> None:
    assert JAPAN.is_business_day(day) is open_


def test_M1_counting_needs_at_least_one_day() -> None:
    with pytest.raises(ValueError):
        JAPAN.nth_business_day_after(date(2026, 12, 25), 0)
