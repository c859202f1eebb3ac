"""The dramatiq actor that sends one notification.

It takes a notification id, never an object, and is idempotent: the sender claims the timer
row and checks the aggregate's record before sending (see lifecycle/mail/sender.py). Its
retry policy is explicit: dramatiq retries nothing (max_retries=0), because a failed send is
rescheduled in the timer table, which survives a Redis restart, while dramatiq's delayed
retries would live only in Redis. The API and the scheduler enqueue to it by name
(lifecycle/adapters/broker.py)."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

import dramatiq
from dramatiq.broker import Broker

from lifecycle.adapters.broker import ACTOR_NAME, QUEUE_NAME


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
