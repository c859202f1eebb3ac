"""What the dashboards and the support desk read from: the coverage, parties and service-in
read models, and today's date in Tokyo."""

from __future__ import annotations

from datetime import date

from lifecycle.domain.dates import tokyo_today
from lifecycle.domain.periods import RenewalPolicy
from lifecycle.ports import Clock
from lifecycle.projections.read_models import ReadModels


class ReadModelQueries:
    def __init__(self, read_models: ReadModels, clock: Clock, policy: RenewalPolicy) -> None:
        self.read_models = read_models
        self.clock = clock
        self.policy = policy
        self.coverage = read_models.view("coverage")
        self.parties = read_models.view("parties")
        self.service_in_view = read_models.view("service_in")  # Dashboards.service_in is the dashboard

    def today(self) -> date:
        return tokyo_today(self.clock.now())
