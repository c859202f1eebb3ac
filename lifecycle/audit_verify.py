"""The auditor's checks with the verifier key only (`lifecycle audit verify`): a checkpoint's
signature, an event's inclusion in it, that a later checkpoint extends an earlier one, that
an export matches a checkpoint, where two exports of the log first differ, and, on the
service's own store, that every stored event still hashes to the leaf the tree recorded."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from lifecycle import merkle
from lifecycle.audit import canonical_json, leaf_of
from lifecycle.checkpoints import Checkpoint, NoteError, Verifier


@dataclass(frozen=True)
class Finding:
    ok: bool
    message: str

    def __str__(self) -> str:
        return f"{'OK' if self.ok else 'FAILED'}: {self.message}"


def leaf_of_record(record: dict[str, Any]) -> bytes:
    """An export line's leaf: its record without the chain fields, canonical (RFC 8785)."""
    return canonical_json({k: v for k, v in record.items() if k not in ("prev", "hash")})


def export_leaf_hashes(lines: Iterable[str]) -> list[bytes]:
    """The leaf hashes of an export's events, in order (header and closing line skipped)."""
    hashes = []
    for text in lines:
        if not text.strip():
            continue
        record = json.loads(text)
        if "format" in record or record.get("end") is True:
            continue
        hashes.append(merkle.leaf_hash(leaf_of_record(record)))
    return hashes


def first_difference(ours: Sequence[bytes], theirs: Sequence[bytes]) -> int | None:
    """The first leaf index at which two lists of leaf hashes differ (one longer: where it
    goes on); None when they are equal."""
    for index, (a, b) in enumerate(zip(ours, theirs)):
        if a != b:
            return index
    return None if len(ours) == len(theirs) else min(len(ours), len(theirs))


def check_note(verifier: Verifier, note: str, label: str = "checkpoint") -> tuple[Finding, Checkpoint | None]:
    try:
        checkpoint = verifier.verify_note(note)
    except NoteError as error:
        return Finding(False, f"{label}: {error}"), None
    return Finding(True, f"{label}: signed by {verifier.name}, tree size {checkpoint.tree_size}"), checkpoint


def check_export(checkpoint: Checkpoint, hashes: Sequence[bytes]) -> Finding:
    if len(hashes) < checkpoint.tree_size:
        return Finding(False, f"the export holds {len(hashes)} events, fewer than the checkpoint's {checkpoint.tree_size}")
    if merkle.root_of(hashes[: checkpoint.tree_size]) != checkpoint.root_hash:
        return Finding(False, f"the export's first {checkpoint.tree_size} events do not give the checkpoint's root: "
                              "the log was rewritten (compare with an earlier export, --earlier, to find where)")
    return Finding(True, f"the export's first {checkpoint.tree_size} events give the checkpoint's root")


def check_exports(later: Sequence[bytes], earlier: Sequence[bytes]) -> Finding:
    """The later export must hold the earlier one's events unchanged, in order."""
    index = first_difference(later[: len(earlier)], earlier)
    if index is not None:
        return Finding(False, f"the log was rewritten: leaf index {index} differs from the earlier export")
    return Finding(True, f"the later export extends the earlier one ({len(earlier)} events unchanged)")


def check_inclusion(verifier: Verifier, document: dict[str, Any]) -> Finding:
    """A document of `lifecycle audit prove`: the event, its proof and the checkpoint."""
    found, checkpoint = check_note(verifier, document.get("checkpoint", ""))
    if checkpoint is None:
        return found
    proof = document["proof"]
    leaf = merkle.leaf_hash(leaf_of_record(document["event"]))
    if leaf.hex() != proof["leaf_hash"]:
        return Finding(False, f"the event does not hash to the proof's leaf at index {proof['index']}")
    if proof["tree_size"] != checkpoint.tree_size:
        return Finding(False, "the proof is for another tree size than the checkpoint's")
    try:
        merkle.verify_inclusion(proof["index"], proof["tree_size"], leaf,
                                [bytes.fromhex(h) for h in proof["hashes"]], checkpoint.root_hash)
    except (merkle.ProofError, ValueError) as error:
        return Finding(False, f"event at leaf index {proof['index']}: {error}")
    return Finding(True, f"the event at leaf index {proof['index']} (log position {document['event']['position']}) "
                         f"is in the signed tree of {checkpoint.tree_size} events")


def check_consistency(older: Checkpoint, newer: Checkpoint, hashes: Sequence[str]) -> Finding:
    try:
        merkle.verify_consistency(older.tree_size, newer.tree_size, older.root_hash, newer.root_hash,
                                  [bytes.fromhex(h) for h in hashes])
    except (merkle.ProofError, ValueError) as error:
        return Finding(False, f"the checkpoint of {newer.tree_size} does not extend the one of {older.tree_size}: "
                              f"{error}")
    return Finding(True, f"the checkpoint of {newer.tree_size} events extends the one of {older.tree_size}")


@dataclass(frozen=True)
class StoreCheck:
    findings: list[Finding]
    size: int
    root: bytes

    @property
    def ok(self) -> bool:
        return all(f.ok for f in self.findings)


def check_store(recorder: Any, tree: Any, notes: Sequence[tuple[int, str]], verifier: Verifier,
                batch_size: int = 5000) -> StoreCheck:
    """Recomputes every leaf from the stored events: each must equal the leaf the tree recorded
    when the event was appended (else the event was changed since: its index is named), and
    the roots of the recomputed leaves must be those of the signed checkpoints."""
    findings: list[Finding] = []
    wanted = dict(notes)
    frontier = merkle.Frontier()
    recorded_size = tree.size()
    changed: int | None = None
    position = 0
    while True:
        batch = recorder.select_notifications(start=position, limit=batch_size, inclusive_of_start=False)
        if not batch:
            break
        start = frontier.size
        recorded = tree.leaf_hashes(start, min(start + len(batch), recorded_size))
        for offset, notification in enumerate(batch):
            h = merkle.leaf_hash(leaf_of(notification))
            if changed is None and offset < len(recorded) and recorded[offset] != h:
                changed = start + offset
                findings.append(Finding(False, f"the stored event at leaf index {changed} (log position "
                                               f"{notification.id}) was changed after it was appended"))
            frontier.append(h)
            if frontier.size in wanted:
                note = wanted.pop(frontier.size)
                found, checkpoint = check_note(verifier, note, f"checkpoint {frontier.size}")
                if checkpoint is not None and checkpoint.root_hash != frontier.root():
                    found = Finding(False, f"checkpoint {frontier.size}: the log's first {frontier.size} events no "
                                           "longer give its signed root")
                findings.append(found)
        position = batch[-1].id
    for size in sorted(wanted):
        findings.append(Finding(False, f"checkpoint {size}: the log holds only {frontier.size} events"))
    if changed is None:
        findings.append(Finding(True, f"{frontier.size} stored events hash to the leaves the tree recorded"
                                      f" ({min(recorded_size, frontier.size)} compared)"))
    return StoreCheck(findings, frontier.size, frontier.root())
