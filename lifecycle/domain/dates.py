"""Business dates: the service's dates are days in Asia/Tokyo, whatever the host's zone."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

TOKYO = ZoneInfo("Asia/Tokyo")


def tokyo_today(now: datetime) -> date:
    """The business date of an instant (a clock's `now()`)."""
    return now.astimezone(TOKYO).date()
