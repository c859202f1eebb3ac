"""Issue 11, deliverable 7: Redis flushed (FLUSHALL) at a random moment while a real
`lifecycle worker` sends a backlog of due mails. Redis holds only ids in flight: the timers
are in the event store, and the scheduler enqueues again a timer whose message the broker
lost (LIFECYCLE_NOTIFICATION_REQUEUE_SECONDS, short here). Every due mail still reaches the
SMTP server exactly once, counted by Message-ID, and is recorded once in the log."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable

import pytest
import redis

from tests.faults.mail_stack import MailStack, wait_until

pytestmark = pytest.mark.postgres

MAILS = 120
REQUEUE_SECONDS = 2.0


def test_redis_flushed_while_mails_are_sent_and_every_due_mail_is_sent_once(
    make_stack: Callable[..., MailStack],
) -> None:
    stack: MailStack = make_stack(
        notification_requeue_seconds=REQUEUE_SECONDS,
        # A backlog waits in Redis rather than in the worker's memory (as thousands would
        # with the default prefetch): the flush has messages to lose.
        worker_prefetch=4,
        notification_batch_size=1,  # a message per mail, so the backlog is many messages
    )
    expected = stack.register(MAILS)
    stack.sink.delay = 0.02  # a relay taking its time: the sending lasts a few seconds

    worker = stack.start_worker("w", threads=2)
    stack.sink.wait_for(1, timeout=30)
    started_at = time.monotonic()
    time.sleep(random.uniform(0.0, 1.5))  # the random moment, while the backlog is being sent
    queue = f"{stack.settings.redis_namespace}:notifications"
    client = redis.Redis.from_url(stack.redis.url)
    with client.pipeline(transaction=True) as pipeline:  # what Redis held at the very moment of the flush
        pipeline.llen(queue)
        pipeline.flushall()
        lost, _ = pipeline.execute()
    flushed_at = time.monotonic()
    sent_before = len({m.message_id for m in stack.sink.snapshot()})
    assert sent_before < MAILS, "the sending was over before the flush"
    assert lost > 0, "the flush found no message in Redis"

    recovered = wait_until(lambda: {m.message_id for m in stack.sink.snapshot()} >= expected, 60,
                           "every due mail at the SMTP server")
    received = stack.sink.quiet_for(REQUEUE_SECONDS + 0.5)  # more scheduler runs: nothing more goes out
    copies = stack.sink.copies_by_message_id()
    timers = stack.timers()
    log = worker.text()
    enqueued = sum(int(n) for n in re.findall(r"scheduler: enqueued (\d+) due", log))
    print(f"\nRedis flushed (FLUSHALL) {flushed_at - started_at:.1f}s into sending {MAILS} due mails: "
          f"{sent_before} sent before, {lost} messages lost with Redis; all sent {recovered:.1f}s after the flush "
          f"(requeue {REQUEUE_SECONDS:g}s; {enqueued} ids enqueued in all, {enqueued - MAILS} of them again from "
          f"the store); {len(received)} deliveries of {len(copies)} Message-IDs")

    assert set(copies) == expected
    assert max(copies.values()) == 1, [m for m, n in copies.items() if n > 1]
    assert {row["state"] for row in timers.values()} == {"sent"}
    assert stack.recorded() == {m: 1 for m in expected}  # one ServiceInNotified per mail
    assert worker.process.poll() is None
    assert "Traceback" not in log, log[-3000:]
