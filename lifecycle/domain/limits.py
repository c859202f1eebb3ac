"""The range of dates the service accepts. A support contract is sold, shipped and looked at
within this century; a date far outside it is a typing error (or an attack), and refusing
it keeps every period and window computed from it inside what `datetime.date` can hold
(P-1's 87 months and R-2's 90 days after 2100-12-31 are still far from year 9999)."""

from __future__ import annotations

from datetime import date

from lifecycle.domain.errors import DateOutOfRange

# K-1: the largest sheet a bulk registration takes, in bytes and in rows.
BULK_MAX_BYTES = 20 * 1024 * 1024
BULK_MAX_ROWS = 50_000

EARLIEST_DATE = date(2000, 1, 1)
LATEST_DATE = date(2100, 12, 31)


def date_in_range(day: date) -> bool:
    return EARLIEST_DATE <= day <= LATEST_DATE


def check_date_in_range(day: date, field: str) -> date:
    """Refuses a date before EARLIEST_DATE or after LATEST_DATE (DATE_OUT_OF_RANGE)."""
    if not date_in_range(day):
        raise DateOutOfRange(
            f"{field} {day.isoformat()} is outside {EARLIEST_DATE.isoformat()} … {LATEST_DATE.isoformat()}.",
            field=field,
        )
    return day

