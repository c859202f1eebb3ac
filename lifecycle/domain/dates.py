"""Business dates: the service's dates are days in Asia/Tokyo, whatever the host's zone."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from lifecycle.ports import Clock

TOKYO = ZoneInfo("Asia/Tokyo")


def tokyo_today(clock: Clock) -> date:
    return clock.now().astimezone(TOKYO).date()
