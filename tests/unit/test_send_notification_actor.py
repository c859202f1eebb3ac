"""The dramatiq actor takes notification ids and says its retry policy (STYLE 8)."""

from __future__ import annotations

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
    actor = declare_send_notification(broker, delivered.append, time_limit_seconds=30)
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
