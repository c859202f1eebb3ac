"""The auditor's export of the whole log: JSON Lines, one stored event per line in log order,
each line carrying the SHA-256 of the previous line's hash and its own content (a hash
chain), and a closing line with the count and the last hash. Altering, removing or
reordering any event breaks the chain at that event; cutting lines off the end breaks the
closing line."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, TextIO

import msgspec

from lifecycle.progress import Progress, no_progress

FORMAT = "lifecycle-audit/1"
GENESIS = "0" * 64


def _canonical(record: dict[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def chain_hash(previous: str, record: dict[str, Any]) -> str:
    return hashlib.sha256(previous.encode() + _canonical(record)).hexdigest()


def export_record(notification: Any) -> dict[str, Any]:
    """The export's record of one stored event, before its chain fields: also, canonicalised,
    the audit tree's leaf (lifecycle/transparency.py)."""
    return {
        "position": notification.id,
        "originator_id": str(notification.originator_id),
        "originator_version": notification.originator_version,
        "topic": notification.topic,
        "state": json.loads(notification.state),  # the transcoder's JSON, as stored
    }


def canonical_json(value: Any) -> bytes:
    """RFC 8785 (JCS), by the reference implementation."""
    import rfc8785

    return rfc8785.dumps(value)


# The leaf the fast way: the stored JSON decoded and re-encoded with sorted keys by msgspec (in C),
# which writes what JCS writes (tests/unit/test_audit_leaves.py checks them against the reference
# for every event type and every character) except where it cannot: a number with a fraction or
# an exponent, or an integer past 2^53 (JCS writes numbers as ECMAScript does, or refuses them),
# and keys holding a character at or above U+E000 (JCS sorts keys by UTF-16 code units, msgspec
# by code points). Events with any of those, or JSON msgspec refuses, take the reference.
class _Fraction(Exception):
    pass


def _refuse_fraction(text: str) -> float:
    raise _Fraction


_DECODER = msgspec.json.Decoder(float_hook=_refuse_fraction)
_ENCODE_SORTED = msgspec.json.Encoder(order="sorted").encode
_SAFE_INTEGER = 2**53 - 1
# One pass over the stored bytes marks digits "1" and the UTF-8 lead bytes of U+E000 and beyond
# "h": 16 digits in a row may be an integer past 2^53; no "h" (and no escape) means no key can
# hold such a character, so no key needs looking at.
_MARKS = bytes(0x31 if 0x30 <= b <= 0x39 else 0x68 if 0xEE <= b <= 0xF4 else 0x20 for b in range(256))
_SIXTEEN_DIGITS = b"1" * 16
_TOPICS: dict[str, bytes] = {}  # topic -> its JCS string: a handful of topics, met again and again


def _has_high_key(value: Any) -> bool:
    if isinstance(value, dict):
        return any((not k.isascii() and max(k) >= "\ue000") or _has_high_key(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_high_key(v) for v in value)
    return False


def leaf_of(notification: Any) -> bytes:
    """The audit tree's leaf of a stored event: the RFC 8785 (JCS) canonical JSON of its export
    record without `prev` and `hash`."""
    state = notification.state
    if not isinstance(state, bytes):
        state = state.encode() if isinstance(state, str) else bytes(state)
    marks = state.translate(_MARKS)
    if _SIXTEEN_DIGITS in marks or not (0 < notification.id <= _SAFE_INTEGER
                                        and 0 <= notification.originator_version <= _SAFE_INTEGER):
        return canonical_json(export_record(notification))
    try:
        value = _DECODER.decode(state)
    except (_Fraction, msgspec.DecodeError):
        return canonical_json(export_record(notification))
    if (b"h" in marks or b"\\u" in state) and _has_high_key(value):
        return canonical_json(export_record(notification))
    topic = _TOPICS.get(notification.topic)
    if topic is None:
        topic = _TOPICS.setdefault(notification.topic, canonical_json(notification.topic))
    # Keys in JCS order (originator_id, originator_version, position, state, topic).
    return b'{"originator_id":"%s","originator_version":%d,"position":%d,"state":%s,"topic":%s}' % (
        str(notification.originator_id).encode(), notification.originator_version, notification.id,
        _ENCODE_SORTED(value), topic,
    )


def export_log(recorder: Any, out: TextIO, *, batch_size: int = 5000, progress: Progress = no_progress) -> int:
    """Writes every stored event of the application's log; answers how many. Reports the
    log position reached against the log's head (as it was at the start) after each batch."""
    previous, count, position = GENESIS, 0, 0
    head = recorder.max_notification_id() or 0
    progress(0, head)
    out.write(json.dumps({"format": FORMAT, "exported_at": datetime.now(timezone.utc).isoformat()}) + "\n")
    while True:
        notifications = recorder.select_notifications(start=position, limit=batch_size, inclusive_of_start=False)
        for n in notifications:
            record = export_record(n)
            record["prev"] = previous
            previous = chain_hash(previous, record)
            out.write(json.dumps({**record, "hash": previous}, ensure_ascii=False) + "\n")
            count += 1
            position = n.id
        if len(notifications) < batch_size:
            break
        progress(position, head)
    progress(max(position, head), head)
    out.write(json.dumps({"end": True, "count": count, "last_hash": previous}) + "\n")
    return count


@dataclass(frozen=True)
class Verdict:
    ok: bool
    count: int
    line: int | None = None  # 1-based line of the first bad record
    position: int | None = None  # the log position it names (or where one is missing)
    reason: str = ""

    def __str__(self) -> str:
        if self.ok:
            return f"OK: {self.count} events, hash chain intact"
        return f"TAMPERED at position {self.position} (line {self.line}): {self.reason}"


def verify_log(lines: Iterable[str]) -> Verdict:
    previous, count, last_position = GENESIS, 0, 0
    numbered: Iterator[tuple[int, str]] = enumerate(lines, start=1)
    for number, text in numbered:
        if not text.strip():
            continue
        try:
            record = json.loads(text)
        except ValueError:
            return Verdict(False, count, number, last_position + 1, "not a JSON line")
        if number == 1 and "format" in record:
            if record["format"] != FORMAT:
                return Verdict(False, 0, 1, None, f"unknown format {record['format']!r}")
            continue
        if record.get("end") is True:
            if record.get("count") != count or record.get("last_hash") != previous:
                return Verdict(False, count, number, last_position + 1, "events are missing at the end")
            return Verdict(True, count)
        position = record.get("position")
        claimed = record.pop("hash", None)
        if not isinstance(position, int):
            return Verdict(False, count, number, last_position + 1, "a record without a position")
        if record.get("prev") != previous:
            reason = "the previous event is missing or out of order"
            return Verdict(False, count, number, position, reason)
        if chain_hash(previous, record) != claimed:
            return Verdict(False, count, number, position, "the event's content was altered")
        if position <= last_position:
            return Verdict(False, count, number, position, "positions are out of order")
        previous, last_position, count = claimed, position, count + 1
    return Verdict(False, count, None, last_position + 1, "the closing line is missing (cut off)")
