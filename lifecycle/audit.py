"""The auditor's export of the whole log: JSON Lines, one stored event per line in log order,
each line carrying the SHA-256 of the previous line's hash and its own content (a hash
chain), and a closing line with the count and the last hash. Altering, removing or
reordering any event breaks the chain at that event; cutting lines off the end breaks the
closing line."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, TextIO

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


# Where Python's sorted, compact JSON may differ from RFC 8785 (JCS), which then canonicalises
# (tests/unit/test_audit_leaves.py checks the two agree): a number with a fraction or an
# exponent, or an integer too long for a double (JCS writes numbers as ECMAScript does); and
# a key holding a character at or above U+E000, raw or escaped (JCS sorts keys by UTF-16 code
# units, Python by code points). Such characters in values are written alike by both.
_LONG_INTEGER = re.compile(r"[0-9]{16}")
_HIGH = re.compile(r"[\ue000-\U0010ffff]|\\u[dDeEfF]")
_SUSPECT = re.compile(r"[0-9]{16}|[\ue000-\U0010ffff]|\\u[dDeEfF]")  # either of the two: one pass
_HIGH_KEY = re.compile(r'"(?:[^"\\]|\\.)*(?:[\ue000-\U0010ffff]|\\u[dDeEfF])(?:[^"\\]|\\.)*"\s*:')


class _Fraction(Exception):
    pass


def _refuse_fraction(text: str) -> float:
    raise _Fraction


_DECODER = json.JSONDecoder(parse_float=_refuse_fraction)
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
_TOPICS: dict[str, str] = {}  # topic -> its JSON string: a handful of topics, met again and again


def canonical_json(value: Any) -> bytes:
    import rfc8785

    return rfc8785.dumps(value)


def leaf_of(notification: Any) -> bytes:
    """The audit tree's leaf of a stored event: the RFC 8785 (JCS) canonical JSON of its export
    record without `prev` and `hash`."""
    state = notification.state
    text = state.decode() if isinstance(state, (bytes, bytearray, memoryview)) else state
    topic = notification.topic
    if _SUSPECT.search(text) and (_LONG_INTEGER.search(text) or _HIGH_KEY.search(text)):
        return canonical_json(export_record(notification))
    quoted = _TOPICS.get(topic)
    if quoted is None:
        if _HIGH.search(topic):
            return canonical_json(export_record(notification))
        quoted = _TOPICS.setdefault(topic, json.dumps(topic, ensure_ascii=False))
    try:
        value = _DECODER.decode(text)
    except _Fraction:
        return canonical_json(export_record(notification))
    # Keys in JCS order (originator_id, originator_version, position, state, topic).
    return (
        f'{{"originator_id":"{notification.originator_id}","originator_version":{notification.originator_version},'
        f'"position":{notification.id},"state":{_ENCODER.encode(value)},"topic":{quoted}}}'
    ).encode()


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
