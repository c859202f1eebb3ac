"""The dramatiq actor that sends notifications.

It takes a batch of notification ids, never objects, and is idempotent: the sender claims the timer
row and checks the aggregate's record before sending (see lifecycle/mail/sender.py). Its
retry policy is explicit: dramatiq retries nothing (max_retries=0), because a failed send is
rescheduled in the timer table, which survives a Redis restart, while dramatiq's delayed
retries would live only in Redis. The API and the scheduler enqueue to it by name
(lifecycle/adapters/broker.py)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from uuid import UUID

import dramatiq
from dramatiq.broker import Broker
from dramatiq.middleware.time_limit import TimeLimitExceeded

from lifecycle.adapters.broker import ACTOR_NAME, BULK_ACTOR_NAME, BULK_QUEUE_NAME, QUEUE_NAME

log = logging.getLogger(__name__)


def declare_send_notification(
    broker: Broker, deliver: Callable[[Sequence[UUID]], object], time_limit_seconds: float
) -> dramatiq.Actor:
    def send_notification(notification_ids: list[str] | str) -> None:
        # A batch of ids; a single id is a message enqueued by an earlier release.
        ids = [notification_ids] if isinstance(notification_ids, str) else notification_ids
        try:
            deliver([UUID(notification_id) for notification_id in ids])
        except TimeLimitExceeded:
            # A worker held up (frozen, a slow relay) past the claim: the timer has the mail,
            # enqueued again once the claim runs out. One line, not a traceback.
            log.warning("notification %s: stopped after %gs, its claim's length; the scheduler enqueues it again",
                        ", ".join(ids), time_limit_seconds)

    return dramatiq.actor(
        send_notification,
        broker=broker,
        actor_name=ACTOR_NAME,
        queue_name=QUEUE_NAME,
        max_retries=0,  # retries are rescheduled in the timer table (durable)
        time_limit=int(time_limit_seconds * 1000),  # a send never outlives its claim on the timer
    )


def declare_run_bulk_job(broker: Broker, run: Callable[[UUID], object], time_limit_seconds: float) -> dramatiq.Actor:
    """K-1: one bulk-registration job. Idempotent (the job's events say which rows are done);
    dramatiq retries nothing, as a job whose worker died is found by its run-out lease in the
    database and enqueued again (BulkImports.resume_stalled), not kept in Redis."""

    def run_bulk_job(job_id: str) -> None:
        run(UUID(job_id))

    return dramatiq.actor(
        run_bulk_job,
        broker=broker,
        actor_name=BULK_ACTOR_NAME,
        queue_name=BULK_QUEUE_NAME,
        max_retries=0,
        time_limit=int(time_limit_seconds * 1000),
    )
