"""The event feed's promise (issue 21): a consumer that restarts from the last position it
handled misses nothing and sees nothing twice, in order, while several writers commit at once
(on PostgreSQL, in their own processes' connections, so commits interleave; the recorder's
table lock gives ids in commit order). The consumer is restarted at random points: a new feed
over a new application, from its saved position."""

from __future__ import annotations

import random
import threading
from datetime import date

from lifecycle.bootstrap import build_application, build_feed
from lifecycle.settings import Settings

WRITERS = 4
EACH = 40


def write(settings: Settings, writer: int, errors: list[BaseException]) -> None:
    app = build_application(settings)
    try:
        for n in range(EACH):
            app.shipments.record_shipment(f"W{writer}N{n:04d}", "12345-01", "AT-x510", date(2026, 1, 5))
    except BaseException as error:  # noqa: BLE001 - reported by the test
        errors.append(error)
    finally:
        app.close()


def test_events_consumer_restarted_at_random_sees_every_event_once_in_order(store_settings: Settings) -> None:
    rng = random.Random(21)
    build_application(store_settings).close()  # the tables, before the writers race to make them
    errors: list[BaseException] = []
    writers = [threading.Thread(target=write, args=(store_settings, w, errors)) for w in range(WRITERS)]
    for thread in writers:
        thread.start()
    seen: list[int] = []
    position = 0  # what the consumer keeps between runs
    restarts = 0
    while True:
        app = build_application(store_settings)
        feed = build_feed(store_settings, app)
        try:
            for _ in range(rng.randint(1, 6)):  # then it "crashes" and starts again
                page = feed.read(position, rng.choice([1, 3, 7, 50]), wait=0.05)
                seen += [e["position"] for e in page.events]
                position = page.next
        finally:
            app.close()
        restarts += 1
        # A few restarts at least, even when the writers are done before the consumer's first
        # application is up (a loaded host): a restart after the end must see nothing again.
        if not any(t.is_alive() for t in writers) and len(seen) >= WRITERS * EACH and restarts > 3:
            break
        assert restarts < 2000
    for thread in writers:
        thread.join()
    assert not errors
    app = build_application(store_settings)
    try:
        logged = [n.id for n in app.recorder.select_notifications(start=1, limit=10_000)]
    finally:
        app.close()
    assert len(logged) == WRITERS * EACH
    assert seen == logged  # each once, in log order
