"""The base of every event: it records who caused it and in which request, taken from the
request's context when the event is made (the eventsourcing library's content-management
example, `user_id_cvar`). Events stored before these fields existed have neither."""

from __future__ import annotations

from dataclasses import field
from typing import Any

from eventsourcing.domain import Aggregate

from lifecycle.domain.access import current_actor, current_request_id


class AuditedEvent(Aggregate.Event):
    actor: dict[str, Any] | None = field(default_factory=current_actor, init=False)
    request_id: str | None = field(default_factory=current_request_id, init=False)


class AuditedCreated(AuditedEvent, Aggregate.Created):
    pass
