"""The vendor's business calendar (M-1): Monday to Friday, except Japanese national
holidays and the year-end closing from 29 December to 3 January.

National holidays, substitute holidays (振替休日) and citizens' holidays (国民の休日) come
from jpholiday, which computes them from the law's rules rather than from a fixed list.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import jpholiday

SATURDAY = 5


@dataclass(frozen=True)
class BusinessCalendar:
    # The year-end closing, as (month, day) pairs, both inclusive; it spans the new year.
    closing_from: tuple[int, int] = (12, 29)
    closing_to: tuple[int, int] = (1, 3)

    def is_year_end_closing(self, day: date) -> bool:
        month_day = (day.month, day.day)
        return month_day >= self.closing_from or month_day <= self.closing_to

    def is_business_day(self, day: date) -> bool:
        return (
            day.weekday() < SATURDAY
            and not self.is_year_end_closing(day)
            and not jpholiday.is_holiday(day)
        )

    def nth_business_day_after(self, day: date, n: int) -> date:
        """The n-th business day counting from the day after `day` (n >= 1): the M-1
        deadline is `nth_business_day_after(registered_on, 4)`."""
        if n < 1:
            raise ValueError(f"n must be at least 1, not {n}")
        current = day
        while n:
            current += timedelta(days=1)
            if self.is_business_day(current):
                n -= 1
        return current

    def next_business_day(self, day: date) -> date:
        return self.nth_business_day_after(day, 1)


JAPAN = BusinessCalendar()
