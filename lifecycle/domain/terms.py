"""The vendor's support terms: period lengths (P-1, R-3), which tickets may start a new
coverage (T-5) and the renewal window (R-2). Settings, with the SPEC's defaults."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from datetime import date

from lifecycle.domain.errors import InvalidTicketTerm
from lifecycle.domain.periods import RenewalPolicy, SupportPeriod

# P-1: months of the first period per term in years (1-year tickets get 13 months etc.:
# the first month is the grace for registering).
FIRST_PERIOD_MONTHS: dict[int, int] = {1: 13, 5: 63, 7: 87}
# T-5: the tickets that may start a new coverage: these terms of these services.
NEW_TICKET_TERMS: frozenset[int] = frozenset({1, 5})
NEW_TICKET_SERVICES: tuple[str, ...] = ("デリバリースタンダード", "Delivery Standard")


def _service_key(name: str) -> str:
    return unicodedata.normalize("NFKC", name).replace(" ", "").casefold()


@dataclass(frozen=True)
class SupportTerms:
    first_period_months: dict[int, int] = field(default_factory=lambda: dict(FIRST_PERIOD_MONTHS))
    new_ticket_terms: frozenset[int] = NEW_TICKET_TERMS
    new_ticket_services: tuple[str, ...] = NEW_TICKET_SERVICES
    renewal: RenewalPolicy = field(default_factory=RenewalPolicy)

    def check_term(self, term_years: int) -> None:
        if term_years not in self.first_period_months:
            raise InvalidTicketTerm(
                f"Support terms are {sorted(self.first_period_months)} years, not {term_years}.",
                term_years=term_years,
            )

    def first_period(self, sold_on: date, term_years: int) -> SupportPeriod:
        self.check_term(term_years)
        return SupportPeriod.from_sale(sold_on, self.first_period_months[term_years])

    def renewal_period(self, previous: SupportPeriod, term_years: int) -> SupportPeriod:
        return previous.continued(12 * term_years)

    def is_new_ticket_service(self, service: str, term_years: int) -> bool:
        services = {_service_key(name) for name in self.new_ticket_services}
        return _service_key(service) in services and term_years in self.new_ticket_terms
