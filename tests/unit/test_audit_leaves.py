"""The audit tree's leaf of a stored event is the RFC 8785 (JCS) canonical JSON of its export
record: the fast way (Python's sorted JSON, when nothing in the text can differ) gives the very
bytes the rfc8785 package gives, whatever the event holds."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass

import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from lifecycle.audit import export_record, leaf_of


@dataclass
class Stored:
    id: int
    originator_id: uuid.UUID
    originator_version: int
    topic: str
    state: bytes


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
    stored = Stored(position, uuid.uuid4(), 3, topic, json.dumps(state, ensure_ascii=ascii_out).encode())
    assert leaf_of(stored) == rfc8785.dumps(export_record(stored))


def test_audit_leaf_of_a_plain_japanese_event():
    stored = Stored(7, uuid.UUID(int=1), 1, "lifecycle.aggregates.contract:Contract.Registered",
                    json.dumps({"名前": "山田", "b": [1, 2], "a": {"z": None, "y": "\n"}}, ensure_ascii=False).encode())
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
    stored = Stored(1, uuid.UUID(int=7), 1, "t:T", json.dumps(state, ensure_ascii=ascii_out).encode())
    try:
        expected = rfc8785.dumps(export_record(stored))
    except Exception:  # integers beyond a double: JCS refuses them, and so does the leaf
        return
    assert leaf_of(stored) == expected
