"""The dramatiq actor takes notification ids and says its retry policy (STYLE 8)."""

from __future__ import annotations

import logging
import time
from uuid import UUID, uuid4

import dramatiq
from dramatiq.brokers.stub import StubBroker

from lifecycle.adapters.broker import QUEUE_NAME, BrokerDispatcher
from workers.actors import declare_send_notification


def test_M4_actor_hands_each_id_to_the_sender_and_leaves_retries_to_the_timers() -> None:
    """The API enqueues by queue and actor name, without the actor object; the worker's
    actor of that name receives every id."""
    broker = StubBroker()
    delivered: list[UUID] = []
    actor = declare_send_notification(broker, delivered.extend, time_limit_seconds=30)
    assert actor.queue_name == QUEUE_NAME
    assert actor.options["max_retries"] == 0
    assert actor.options["time_limit"] == 30_000

    ids = [uuid4(), uuid4()]
    BrokerDispatcher(broker).dispatch(ids)
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        broker.join(QUEUE_NAME)
        worker.join()
    finally:
        worker.stop()
    assert sorted(delivered) == sorted(ids)


def test_M4_a_send_held_up_past_the_claim_is_stopped_with_one_line_and_no_traceback(caplog) -> None:  # noqa: ANN001
    """dramatiq's time limit (the claim's length) stops a send that outlived its claim; the
    timer still has the mail, so that is one warning, not an error with a traceback."""
    broker = StubBroker()
    broker.emit_after("process_boot")  # starts the time limit's watcher, as a worker process does
    finished: list[UUID] = []

    def held_up(notification_ids: list[UUID]) -> None:
        for _ in range(60):  # 3 s, in steps the time limit can interrupt
            time.sleep(0.05)
        finished.extend(notification_ids)

    declare_send_notification(broker, held_up, time_limit_seconds=1)
    notification_id = uuid4()
    BrokerDispatcher(broker).dispatch([notification_id])
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=100)
    worker.start()
    try:
        with caplog.at_level(logging.WARNING):
            broker.join(QUEUE_NAME, fail_fast=True)
            worker.join()
    finally:
        worker.stop()
    assert finished == []
    assert f"notification {notification_id}: stopped after 1s" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text
