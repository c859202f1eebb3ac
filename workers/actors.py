"""The dramatiq actor that sends one notification, and the dispatcher that enqueues to it.

The actor takes a notification id, never an object, and is idempotent: the sender claims
the timer row and checks the aggregate's record before sending (see
lifecycle/policies/delivery.py). Its retry policy is explicit: dramatiq retries nothing
(max_retries=0), because a failed send is rescheduled in the timer table, which survives a
Redis restart, while dramatiq's delayed retries would live only in Redis."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from uuid import UUID

import dramatiq
from dramatiq.broker import Broker

QUEUE_NAME = "notifications"
ACTOR_NAME = "send_notification"


def declare_send_notification(broker: Broker, deliver: Callable[[UUID], object], time_limit_seconds: float) -> dramatiq.Actor:
    def send_notification(notification_id: str) -> None:
        deliver(UUID(notification_id))

    return dramatiq.actor(
        send_notification,
        broker=broker,
        actor_name=ACTOR_NAME,
        queue_name=QUEUE_NAME,
        max_retries=0,  # retries are rescheduled in the timer table (durable)
        time_limit=int(time_limit_seconds * 1000),  # a send never outlives its claim on the timer
    )


class BrokerDispatcher:
    """Hands notification ids to the broker, for whichever worker process takes them."""

    def __init__(self, actor: dramatiq.Actor) -> None:
        self.actor = actor

    def dispatch(self, notification_ids: Sequence[UUID]) -> None:
        for notification_id in notification_ids:
            self.actor.send(str(notification_id))
