"""The dramatiq broker on Redis, and how notification ids reach it.

The API and the scheduler only enqueue: a message names the queue and the actor, so this
side needs no actor object; `workers/actors.py` declares the actor of the same name on the
same broker in `lifecycle worker` processes, which send the mails."""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import dramatiq
import redis.exceptions
from dramatiq.broker import Broker

from lifecycle.availability import BrokerDown, describe

QUEUE_NAME = "notifications"
ACTOR_NAME = "send_notification"
BULK_QUEUE_NAME = "bulk"
BULK_ACTOR_NAME = "run_bulk_job"


REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


def redis_broker(url: str, namespace: str, timeout: float | None = None) -> Broker:
    """`timeout` bounds connecting and each command: with Redis away (or a host that does not
    answer at all) an enqueue fails within it instead of hanging the request."""
    from dramatiq.brokers.redis import RedisBroker

    if timeout is None:
        return RedisBroker(url=url, namespace=namespace)
    return RedisBroker(url=url, namespace=namespace, socket_connect_timeout=timeout, socket_timeout=timeout)


def ping(broker: Broker) -> None:
    """Raises BrokerDown unless the broker's Redis answers."""
    client = getattr(broker, "client", None)
    if client is None:  # a stub broker (tests): nothing to reach
        return
    try:
        client.ping()
    except REDIS_ERRORS as error:
        raise BrokerDown(f"the broker (Redis) does not answer: {describe(error)}") from error


class BrokerDispatcher:
    """Hands notification ids to the broker, for whichever worker process takes them: one
    message per `batch_size` ids (the scheduler gives a contract's due mails side by side,
    so a worker loads each contract once for its mails of the batch)."""

    def __init__(self, broker: Broker, batch_size: int = 1) -> None:
        self.broker = broker
        self.batch_size = batch_size

    def dispatch(self, notification_ids: Sequence[UUID]) -> None:
        ids = [str(notification_id) for notification_id in notification_ids]
        try:
            for start in range(0, len(ids), self.batch_size):
                self.broker.enqueue(
                    dramatiq.Message(
                        queue_name=QUEUE_NAME, actor_name=ACTOR_NAME, args=(ids[start:start + self.batch_size],),
                        kwargs={}, options={},
                    )
                )
        except REDIS_ERRORS as error:  # the timers keep what was not enqueued: see mail/scheduler.py
            raise BrokerDown(f"the broker (Redis) does not answer: {describe(error)}") from error


class BulkJobDispatcher:
    """Hands bulk-registration job ids to the broker (K-1): a queue of their own, so a long
    sheet never holds up the mails."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker

    def dispatch(self, job_id: UUID) -> None:
        try:
            self.broker.enqueue(
                dramatiq.Message(
                    queue_name=BULK_QUEUE_NAME, actor_name=BULK_ACTOR_NAME, args=(str(job_id),), kwargs={}, options={}
                )
            )
        except REDIS_ERRORS as error:  # the job is durable: the sweeper enqueues it again
            raise BrokerDown(f"the broker (Redis) does not answer: {describe(error)}") from error
