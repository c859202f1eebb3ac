"""What every command takes and answers: its Idempotency-Key, its answer, its decision."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from eventsourcing.domain import Aggregate

Answer = dict[str, Any]
# A command's decision: its answer and every aggregate it changed (saved in one transaction).
Decision = tuple[Answer, list[Aggregate]]


@dataclass(frozen=True)
class IdempotencyKey:
    key: str
    fingerprint: str  # of the request, so the same key with another body is refused
    # Whose key on which route (the IETF draft's and Stripe's scoping): one caller's key
    # never meets another caller's, nor the same caller's on another route.
    scope: str = ""

    @property
    def scoped(self) -> str:
        return f"{self.scope}\n{self.key}" if self.scope else self.key
