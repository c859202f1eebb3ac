"""Support periods and the renewal window (P-1…P-4, R-2, R-3)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from enum import Enum


def add_months(day: date, months: int) -> date:
    """The same day `months` later; only ever called with the 1st of a month."""
    assert day.day == 1, day
    index = day.year * 12 + (day.month - 1) + months
    return date(index // 12, index % 12 + 1, 1)


def first_of_next_month(day: date) -> date:
    return add_months(day.replace(day=1), 1)


@dataclass(frozen=True)
class SupportPeriod:
    start: date
    end: date

    @classmethod
    def of_months(cls, start: date, months: int) -> SupportPeriod:
        return cls(start, add_months(start, months) - timedelta(days=1))

    @classmethod
    def from_sale(cls, sold_on: date, months: int) -> SupportPeriod:
        """P-1: from the 1st of the month after the sale, whenever the registration."""
        return cls.of_months(first_of_next_month(sold_on), months)

    def continued(self, months: int) -> SupportPeriod:
        """R-3: the next period starts the day after this one ends, without a gap."""
        return SupportPeriod.of_months(self.end + timedelta(days=1), months)

    def __str__(self) -> str:
        return f"{self.start:%Y/%m/%d} ～ {self.end:%Y/%m/%d}"


@dataclass(frozen=True)
class RenewalPolicy:
    """When a coverage can be renewed (R-2): from `lead_months` before the day after the
    end (when the reminder goes out) to `grace_days` after the end, both inclusive."""

    lead_months: int = 3
    grace_days: int = 90

    def window(self, end: date) -> tuple[date, date]:
        opens = _months_before(end + timedelta(days=1), self.lead_months)
        return opens, end + timedelta(days=self.grace_days)

    def is_open(self, end: date, today: date) -> bool:
        opens, closes = self.window(end)
        return opens <= today <= closes

    def has_lapsed(self, end: date, today: date) -> bool:
        """Past the window: the coverage can no longer be renewed."""
        return today > end + timedelta(days=self.grace_days)


def _months_before(day: date, months: int) -> date:
    """`day` moved back by whole months, clamped to the month's last day."""
    index = day.year * 12 + (day.month - 1) - months
    year, month = index // 12, index % 12 + 1
    last = (date(year + (month == 12), month % 12 + 1, 1) - timedelta(days=1)).day
    return date(year, month, min(day.day, last))


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
