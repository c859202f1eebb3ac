"""The audit tree's leaf of a stored event is the RFC 8785 (JCS) canonical JSON of its export
record: the fast way (msgspec's sorted JSON, when nothing in the text can differ) gives the very
bytes the rfc8785 package gives, for every event type and whatever the event holds."""

from __future__ import annotations

import json
import uuid

import pytest
import rfc8785
from eventsourcing.persistence import Notification
from eventsourcing.utils import resolve_topic
from hypothesis import given, settings
from hypothesis import strategies as st

from lifecycle.audit import export_record, leaf_of
from tests.event_samples import HOSTILE_STRINGS, sample_event



json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=400, deadline=None)
@given(state=st.dictionaries(st.text(max_size=8), json_values, max_size=6), ascii_out=st.booleans(),
       position=st.integers(1, 10**9), topic=st.text(min_size=1, max_size=20))
def test_audit_leaf_is_the_jcs_of_the_export_record(state, ascii_out, position, topic):
    try:
        rfc8785.dumps(state)
    except Exception:  # text JCS cannot hold (lone surrogates): no such event is storable as JSON either
        return
    stored = Notification(id=position,
                          originator_id=uuid.uuid4(),
                          originator_version=3,
                          topic=topic,
                          state=json.dumps(state, ensure_ascii=ascii_out).encode())
    assert leaf_of(stored) == rfc8785.dumps(export_record(stored))


def test_audit_leaf_of_a_plain_japanese_event():
    stored = Notification(id=7,
                          originator_id=uuid.UUID(int=1),
                          originator_version=1,
                          topic="lifecycle.aggregates.contract:Contract.Registered",
                          state=json.dumps({"名前": "山田", "b": [1, 2], "a": {"z": None, "y": "\n"}}, ensure_ascii=False).encode())
    assert leaf_of(stored) == rfc8785.dumps(export_record(stored))
    assert leaf_of(stored).startswith(b'{"originator_id":"00000000-0000-0000-0000-000000000001","originator_version":1,')


tricky_text = st.text(alphabet=st.sampled_from(["a", "Z", "é", "山", "\ue000", "\uff11", "\U0001f600", '"', "\\", "\n", "1"]),
                      max_size=5)


@settings(max_examples=300, deadline=None)
@given(state=st.dictionaries(tricky_text, st.one_of(tricky_text, st.integers(-10**17, 10**17), st.floats(
    allow_nan=False, allow_infinity=False), st.dictionaries(tricky_text, tricky_text, max_size=3)), max_size=6),
    ascii_out=st.booleans())
def test_audit_leaf_sorts_keys_as_jcs_does_whatever_their_characters(state, ascii_out):
    """Keys of characters past U+E000 and outside the BMP sort differently by code point and by
    UTF-16 unit; long integers and fractions are written differently: the leaf is still JCS."""
    stored = Notification(id=1,
                          originator_id=uuid.UUID(int=7),
                          originator_version=1,
                          topic="t:T",
                          state=json.dumps(state, ensure_ascii=ascii_out).encode())
    try:
        expected = rfc8785.dumps(export_record(stored))
    except Exception:  # integers beyond a double: JCS refuses them, and so does the leaf
        return
    assert leaf_of(stored) == expected


# --- every event type the log can hold, as the application stores it (personal fields sealed) ---

def _leaves_of_every_event_type(application, strings: list[str], monkeypatch) -> tuple[int, int]:  # noqa: ANN001
    """Checks every event type's leaf against the reference; answers (types, how many of them
    took the reference)."""
    from lifecycle import audit
    from lifecycle.feed import EVENT_TYPES

    by_reference = []
    monkeypatch.setattr(audit, "canonical_json", lambda value: by_reference.append(value) or rfc8785.dumps(value))
    for n, (name, topic) in enumerate(sorted(EVENT_TYPES.items())):
        event = sample_event(resolve_topic(topic), n, strings)
        stored = application.mapper.to_stored_event(event)
        notification = Notification(id=n + 1,
                                    originator_id=stored.originator_id,
                                    originator_version=stored.originator_version,
                                    topic=stored.topic,
                                    state=stored.state)
        assert leaf_of(notification) == rfc8785.dumps(export_record(notification)), name
    return len(EVENT_TYPES), sum(isinstance(v, dict) for v in by_reference)


def test_audit_leaf_of_every_event_type_is_the_reference_jcs(application, monkeypatch) -> None:  # noqa: ANN001
    count, by_reference = _leaves_of_every_event_type(application, HOSTILE_STRINGS, monkeypatch)
    assert count > 40
    # Only events with a fraction (a float field) or a mapping (its sample keys hold U+E000) need
    # the reference; all others take the fast way.
    assert by_reference <= 4


def test_audit_leaf_of_every_event_type_with_long_digits_and_high_keys(application, monkeypatch) -> None:  # noqa: ANN001
    """16 digits in a row (maybe an integer JCS writes otherwise) and keys past U+E000 send an
    event to the reference; the leaf is the same bytes either way."""
    count, by_reference = _leaves_of_every_event_type(
        application, ["12345678901234567", "\ue000", "\U0001f600", "a"], monkeypatch)
    assert by_reference >= count // 2


@pytest.mark.parametrize("text", [
    b'{"a":"\\ud800"}', b'{"a":"\\udc00x"}', b'{"a":NaN}', b'{"a":1.0}', b'{"a":1e5}', b'{"a":-0.0}',
    b'{"a":9007199254740993}', b'{"a":123456789012345678901234}', b'{"\\ue000":1,"\\ud83d\\ude00":2}',
    b'{"\xee\x80\x80":1,"\xf0\x9f\x98\x80":2}', b' {"a" : [1, -0, 2] , "a":3} ', b'{"a":"\xff"}',
])
def test_audit_leaf_of_json_the_fast_way_cannot_hold_is_the_reference_or_fails_as_it_does(text: bytes) -> None:
    stored = Notification(id=5, originator_id=uuid.UUID(int=3), originator_version=2, topic="t:T", state=text)
    try:
        expected = rfc8785.dumps(export_record(stored))
    except Exception:  # noqa: BLE001 - the reference refuses it: no leaf
        with pytest.raises(Exception):  # noqa: B017, PT011
            leaf_of(stored)
        return
    assert leaf_of(stored) == expected
