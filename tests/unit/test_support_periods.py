"""P-1, R-2, R-3: support periods and the renewal window, as calendar arithmetic."""

from datetime import date

import pytest

from lifecycle.domain.errors import InvalidTicketTerm
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
