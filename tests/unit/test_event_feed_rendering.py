"""The event feed renders a page from the stored JSON directly; what it shows of every event type
is what the decoded event shows (`visible_state`: JSON values, personal fields as sealed), and a
page is one valid CloudEvents JSON batch."""

from __future__ import annotations

import json
from uuid import uuid4

from eventsourcing.persistence import Notification
from eventsourcing.utils import resolve_topic

from lifecycle.feed import EVENT_TYPES, SEALED, HeadWatch, EventFeed, json_batch, visible_state
from tests.event_samples import HOSTILE_STRINGS, sample_event


def test_events_feed_shows_every_event_type_as_its_decoded_event_does(application) -> None:  # noqa: ANN001
    feed = EventFeed(application, HeadWatch(lambda: 0))
    shown_sealed = 0
    for n, (name, topic) in enumerate(sorted(EVENT_TYPES.items())):
        stored = application.mapper.to_stored_event(sample_event(resolve_topic(topic), n, HOSTILE_STRINGS))
        notification = Notification(id=n + 1, originator_id=stored.originator_id,
                                    originator_version=stored.originator_version, topic=stored.topic,
                                    state=stored.state)
        expected = visible_state(application.mapper.transcoder.decode(stored.state))
        assert feed._visible_state(notification) == expected, name
        feed._numbers.setdefault(str(stored.originator_id), "C-1")  # a contract's number, as if looked up
        shown_sealed += SEALED in json.dumps(expected)
        [event] = json.loads(json_batch(feed._cloud_events([notification])))
        assert event["type"] == name and event["position"] == n + 1 and event["time"] == expected["timestamp"]
        assert "password_hash" not in event["data"] and "timestamp" not in event["data"]
    assert shown_sealed >= 5  # personal fields are among them, and never in clear


def test_events_feed_takes_the_decoder_for_a_tag_it_does_not_know(application) -> None:  # noqa: ANN001
    feed = EventFeed(application, HeadWatch(lambda: 0))
    state = b'{"timestamp":{"_type_":"datetime_iso","_data_":"2026-12-08T01:02:03+00:00"},"amount":{"_type_":"decimal_str","_data_":"1.10"}}'
    notification = Notification(id=1, originator_id=uuid4(), originator_version=1, topic="t:T", state=state)
    assert feed._visible_state(notification) == visible_state(application.mapper.transcoder.decode(state))
