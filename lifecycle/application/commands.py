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
