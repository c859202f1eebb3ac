"""P-1, R-2, R-3: support periods and the renewal window, as calendar arithmetic."""

from datetime import date, timedelta

import pytest

from lifecycle.domain.errors import DateOutOfRange, InvalidTicketTerm
from lifecycle.domain.limits import EARLIEST_DATE, LATEST_DATE
from lifecycle.domain.periods import CoverageStatus, RenewalPolicy, SupportPeriod, coverage_status
from lifecycle.domain.terms import SupportTerms

terms = SupportTerms()


@pytest.mark.parametrize(
    ("sold_on", "years", "start", "end"),
    [
        (date(2026, 11, 10), 1, date(2026, 12, 1), date(2027, 12, 31)),  # the SPEC's example
        (date(2026, 12, 31), 1, date(2027, 1, 1), date(2028, 1, 31)),
        (date(2026, 1, 1), 5, date(2026, 2, 1), date(2031, 4, 30)),
        (date(2026, 3, 15), 7, date(2026, 4, 1), date(2033, 6, 30)),
        (date(2027, 12, 20), 1, date(2028, 1, 1), date(2029, 1, 31)),
    ],
)
def test_P1_period_from_the_first_of_next_month_for_13_63_87_months(
    sold_on: date, years: int, start: date, end: date
) -> None:
    assert terms.first_period(sold_on, years) == SupportPeriod(start, end)


def test_P1_period_lengths_are_settings() -> None:
    custom = SupportTerms(first_period_months={1: 12})
    assert custom.first_period(date(2026, 11, 10), 1).end == date(2027, 11, 30)
    with pytest.raises(InvalidTicketTerm):
        custom.first_period(date(2026, 11, 10), 5)


def test_R2_window_for_an_end_of_2026_12_31_is_2026_10_01_to_2027_03_31() -> None:
    assert RenewalPolicy().window(date(2026, 12, 31)) == (date(2026, 10, 1), date(2027, 3, 31))


def test_R2_window_bounds_are_inclusive_and_configurable() -> None:
    policy = RenewalPolicy()
    end = date(2026, 12, 31)
    assert not policy.is_open(end, date(2026, 9, 30))
    assert policy.is_open(end, date(2026, 10, 1))
    assert policy.is_open(end, date(2027, 3, 31))
    assert not policy.is_open(end, date(2027, 4, 1))
    assert RenewalPolicy(lead_months=1, grace_days=30).window(end) == (date(2026, 12, 1), date(2027, 1, 30))


def test_R3_renewal_continues_the_day_after_the_end_for_12_months_a_year() -> None:
    previous = SupportPeriod(date(2026, 12, 1), date(2027, 12, 31))
    assert terms.renewal_period(previous, 1) == SupportPeriod(date(2028, 1, 1), date(2028, 12, 31))
    assert terms.renewal_period(previous, 5) == SupportPeriod(date(2028, 1, 1), date(2032, 12, 31))


def test_P4_status_runs_future_active_expired_renewable_lapsed() -> None:
    period = SupportPeriod(date(2026, 12, 1), date(2027, 12, 31))
    policy = RenewalPolicy()
    assert coverage_status(period, date(2026, 11, 30), policy) is CoverageStatus.FUTURE
    assert coverage_status(period, date(2027, 12, 31), policy) is CoverageStatus.ACTIVE
    assert coverage_status(period, date(2028, 1, 1), policy) is CoverageStatus.EXPIRED_RENEWABLE
    assert coverage_status(period, date(2028, 3, 30), policy) is CoverageStatus.EXPIRED_RENEWABLE
    assert coverage_status(period, date(2028, 3, 31), policy) is CoverageStatus.LAPSED


def test_T5_only_delivery_standard_1_or_5_years_start_a_new_coverage() -> None:
    assert terms.is_new_ticket_service("デリバリースタンダード", 1)
    assert terms.is_new_ticket_service("Delivery Standard", 5)
    assert not terms.is_new_ticket_service("デリバリースタンダード", 7)
    assert not terms.is_new_ticket_service("オンサイトスタンダード", 1)


# --- near the accepted range (issue 11: a sale in year 9998 gave a 500 at registration) ----

LAST_PERIOD = {1: date(2102, 1, 31), 5: date(2106, 3, 31), 7: date(2108, 3, 31)}


@pytest.mark.parametrize("years", [1, 5, 7])
def test_P1_a_sale_on_the_last_accepted_day_has_a_period_a_window_and_renewals(years: int) -> None:
    period = terms.first_period(LATEST_DATE, years)
    assert period == SupportPeriod(date(2101, 1, 1), LAST_PERIOD[years])
    opens, closes = terms.renewal.window(period.end)
    assert opens < period.end < closes
    renewed = terms.renewal_period(period, 7)
    assert renewed.start == period.end + timedelta(days=1)
    assert coverage_status(renewed, closes, terms.renewal) is CoverageStatus.ACTIVE


def test_P1_a_sale_on_the_first_accepted_day_starts_the_next_month() -> None:
    assert terms.first_period(EARLIEST_DATE, 1) == SupportPeriod(date(2000, 2, 1), date(2001, 2, 28))


@pytest.mark.parametrize("sold_on", [date(1999, 12, 31), date(2101, 1, 1), date(9998, 10, 10), date(9999, 12, 31),
                                     date(1, 1, 1)])
def test_P1_a_sale_date_outside_the_accepted_range_is_refused_not_an_overflow(sold_on: date) -> None:
    with pytest.raises(DateOutOfRange):
        terms.first_period(sold_on, 1)


def test_period_arithmetic_at_the_end_of_the_calendar_is_refused_not_an_overflow() -> None:
    """Only a recorded date outside the range could get here; it must answer 422, never 500."""
    last = SupportPeriod(date(9999, 1, 1), date(9999, 12, 31))
    with pytest.raises(DateOutOfRange):
        last.continued(12)
    with pytest.raises(DateOutOfRange):
        RenewalPolicy().window(date.max)
    with pytest.raises(DateOutOfRange):
        RenewalPolicy().has_lapsed(date.max, date.max)
    with pytest.raises(DateOutOfRange):
        SupportPeriod.of_months(date(9999, 12, 1), 1)
