"""Support periods and the renewal window (P-1…P-4, R-2, R-3)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from enum import Enum

from lifecycle.domain.errors import DateOutOfRange
from lifecycle.domain.limits import check_date_in_range

# the renewal window opens this many months before the day after the end and closes
# this many days after the end.
RENEWAL_LEAD_MONTHS = 3
RENEWAL_GRACE_DAYS = 90
# The support desk's and the ticket list's "ending soon": an active coverage ending within this many days.
ENDING_SOON_DAYS = 90


def add_months(day: date, months: int) -> date:
    """The same day `months` later; only ever called with the 1st of a month."""
    assert day.day == 1, day
    index = day.year * 12 + (day.month - 1) + months
    return _date(index // 12, index % 12 + 1, 1)


def _date(year: int, month: int, day: int) -> date:
    # Refused, not a ValueError (a 500): only reachable from dates outside the accepted range.
    if not date.min.year <= year <= date.max.year:
        raise DateOutOfRange(f"Year {year} is beyond the calendar.")
    return date(year, month, day)


def _days_after(day: date, days: int) -> date:
    try:
        return day + timedelta(days=days)
    except OverflowError:
        raise DateOutOfRange(f"{days} days after {day.isoformat()} is beyond the calendar.") from None


def first_of_next_month(day: date) -> date:
    return add_months(day.replace(day=1), 1)


@dataclass(frozen=True)
class SupportPeriod:
    start: date
    end: date

    @classmethod
    def of_months(cls, start: date, months: int) -> SupportPeriod:
        return cls(start, _days_after(add_months(start, months), -1))

    @classmethod
    def from_sale(cls, sold_on: date, months: int) -> SupportPeriod:
        """P-1: from the 1st of the month after the sale, whenever the registration. A sale
        date outside the accepted range (a ticket recorded before it was checked) is refused."""
        check_date_in_range(sold_on, "sold_on")
        return cls.of_months(first_of_next_month(sold_on), months)

    def continued(self, months: int) -> SupportPeriod:
        """R-3: the next period starts the day after this one ends, without a gap."""
        return SupportPeriod.of_months(_days_after(self.end, 1), months)

    def __str__(self) -> str:
        return f"{self.start:%Y/%m/%d} ～ {self.end:%Y/%m/%d}"


@dataclass(frozen=True)
class RenewalPolicy:
    """When a coverage can be renewed (R-2): from `lead_months` before the day after the
    end (when the reminder goes out) to `grace_days` after the end, both inclusive."""

    lead_months: int = RENEWAL_LEAD_MONTHS
    grace_days: int = RENEWAL_GRACE_DAYS

    def window(self, end: date) -> tuple[date, date]:
        opens = _months_before(_days_after(end, 1), self.lead_months)
        return opens, _days_after(end, self.grace_days)

    def is_open(self, end: date, today: date) -> bool:
        opens, closes = self.window(end)
        return opens <= today <= closes

    def has_lapsed(self, end: date, today: date) -> bool:
        """Past the window: the coverage can no longer be renewed."""
        return today > _days_after(end, self.grace_days)


def _months_before(day: date, months: int) -> date:
    """`day` moved back by whole months, clamped to the month's last day."""
    index = day.year * 12 + (day.month - 1) - months
    year, month = index // 12, index % 12 + 1
    last = _days_after(_date(year + (month == 12), month % 12 + 1, 1), -1).day
    return _date(year, month, min(day.day, last))


class CoverageStatus(Enum):
    FUTURE = "future"
    ACTIVE = "active"
    EXPIRED_RENEWABLE = "expired_renewable"
    LAPSED = "lapsed"


def coverage_status(period: SupportPeriod, today: date, policy: RenewalPolicy) -> CoverageStatus:
    if today < period.start:
        return CoverageStatus.FUTURE
    if today <= period.end:
        return CoverageStatus.ACTIVE
    if not policy.has_lapsed(period.end, today):
        return CoverageStatus.EXPIRED_RENEWABLE
    return CoverageStatus.LAPSED
