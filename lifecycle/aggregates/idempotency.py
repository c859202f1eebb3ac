"""The first answer to a command sent with an Idempotency-Key, saved in the same
transaction as the command's own events, so a retry can never see half of it."""

from __future__ import annotations

from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from lifecycle.aggregates.audited import AuditedCreated


class CommandAnswer(Aggregate):
    @staticmethod
    def create_id(key: str, **_: object) -> UUID:
        return uuid5(NAMESPACE_URL, f"/idempotency-keys/{key}")

    class Answered(AuditedCreated):
        key: str
        fingerprint: str
        answer: dict[str, Any] | None
        refusal: dict[str, Any] | None

    @event(Answered)
    def __init__(
        self,
        key: str,
        fingerprint: str,
        answer: dict[str, Any] | None,
        refusal: dict[str, Any] | None,
    ) -> None:
        self.key = key
        self.fingerprint = fingerprint
        self.answer = answer
        self.refusal = refusal
