"""The dramatiq broker on Redis, and how notification ids reach it.

The API and the scheduler only enqueue: a message names the queue and the actor, so this
side needs no actor object; `workers/actors.py` declares the actor of the same name on the
same broker in `lifecycle worker` processes, which send the mails."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import dramatiq
from dramatiq.broker import Broker

QUEUE_NAME = "notifications"
ACTOR_NAME = "send_notification"
BULK_QUEUE_NAME = "bulk"
BULK_ACTOR_NAME = "run_bulk_job"


def redis_broker(url: str, namespace: str) -> Broker:
    from dramatiq.brokers.redis import RedisBroker

    return RedisBroker(url=url, namespace=namespace)


class BrokerDispatcher:
    """Hands notification ids to the broker, for whichever worker process takes them."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    def dispatch(self, notification_ids: Sequence[UUID]) -> None:
        for notification_id in notification_ids:
            self.broker.enqueue(
                dramatiq.Message(
                    queue_name=QUEUE_NAME, actor_name=ACTOR_NAME, args=(str(notification_id),), kwargs={}, options={}
                )
            )


class BulkJobDispatcher:
    """Hands bulk-registration job ids to the broker (K-1): a queue of their own, so a long
    sheet never holds up the mails."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    def dispatch(self, job_id: UUID) -> None:
        self.broker.enqueue(
            dramatiq.Message(
                queue_name=BULK_QUEUE_NAME, actor_name=BULK_ACTOR_NAME, args=(str(job_id),), kwargs={}, options={}
            )
        )
