"""The audit tree: an RFC 9162 Merkle tree over the whole log, kept by a projection.

Its leaves are the stored events in log order with dense indexes from 0 (the store's
notification ids may have gaps), leaf i being `lifecycle.audit.leaf_of` of the i-th event.
The projection stores every complete aligned subtree ("node", level l and index i covering
leaves [i·2^l, (i+1)·2^l); level 0 in the leaves table), so a new event writes its leaf and the
subtrees it completes (amortised two rows, at most log n; a batch of events at a time, level by
level), and any root or proof needs O(log n) node lookups.
Node rows never change once written: a reader may read the size first, then the nodes.

The order of the leaves is the order of the log's ids. On PostgreSQL the library's recorder
takes a table lock on each insert, so ids follow commit order and no event can later appear
below a position the projection has passed; SQLite has one writer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eventsourcing.persistence import Notification

from lifecycle import merkle
from lifecycle.audit import leaf_of
from lifecycle.projections.engine.projection import ReadModelProjection, StoredEventFailed
from lifecycle.projections.engine.views import ReadModelView, Table

# Level 0: each leaf's log position and hash (hex); levels 1 and up: "level/index" -> hash.
LEAVES = Table("leaves", {"leaf_index": "bigint", "position": "bigint", "hash": "text"}, key="leaf_index",
               indexes=(("position",),))
NODES = Table("nodes", {"node": "text", "hash": "text"}, key="node")
SIZE = Table("size", {"name": "text", "leaves": "bigint"}, key="name")
TREE = "tree"


def node_key(level: int, index: int) -> str:
    return f"{level}/{index}"


class AuditTree(ReadModelProjection):
    name = "audit_tree"
    tables = (LEAVES, NODES, SIZE)
    topics = ()  # every event
    reads_stored_events = True
    # No request waits for the tree (proofs name their tree size): a second's events per
    # transaction keeps its cost per event low while registrations pour in.
    gather_seconds = 1.0

    def __init__(self, view: ReadModelView) -> None:
        super().__init__(view)
        # The last node written at each level (level -> (index, hash)): the left sibling a new
        # node needs, without a lookup. After a rolled-back batch it may be ahead of the store;
        # a sibling it does not hold is read from the rows (the committed tree).
        self._right_edge: dict[int, tuple[int, bytes]] = {}

    def _sibling(self, level: int, index: int) -> bytes:
        known = self._right_edge.get(level)
        if known is not None and known[0] == index:
            return known[1]
        row = self.rows.get("leaves", index) if level == 0 else self.rows.get("nodes", node_key(level, index))
        assert row is not None, f"audit tree: node {level}/{index} missing"
        return bytes.fromhex(row["hash"])

    def process_stored(self, notifications: Sequence[Notification]) -> None:
        rows = self.rows
        size = rows.get("size", TREE)
        first = size["leaves"] if size else 0
        hashes: list[bytes] = []
        for notification in notifications:
            try:
                hashes.append(merkle.leaf_hash(leaf_of(notification)))
            except Exception as error:
                raise StoredEventFailed(notification) from error
        if not hashes:
            return
        rows.put("size", {"name": TREE, "leaves": first + len(hashes)})
        # Rows are only ever added (never read back in a batch but through `_sibling`): straight
        # into the batch's changes, past the row cache.
        upserts = rows.changes.upserts
        leaves = upserts.setdefault("leaves", {})
        for index, notification, h in zip(range(first, first + len(hashes)), notifications, hashes):
            leaves[index] = {"leaf_index": index, "position": notification.id, "hash": h.hex()}
        nodes = upserts.setdefault("nodes", {})
        # Level by level: the batch's nodes at `level` are hashes[0:] from index `first`; each right
        # child completes its parent, so the parents are the pairs (the first one's left sibling
        # from an earlier batch when `first` is odd).
        level = 0
        while hashes:
            right_edge = (first + len(hashes) - 1, hashes[-1])
            if first & 1:
                hashes = [self._sibling(level, first - 1), *hashes]
            self._right_edge[level] = right_edge
            parents = [merkle.node_hash(hashes[k], hashes[k + 1]) for k in range(0, len(hashes) - 1, 2)]
            level, first, hashes = level + 1, first >> 1, parents
            for index, h in enumerate(parents, first):
                key = node_key(level, index)
                nodes[key] = {"node": key, "hash": h.hex()}


@dataclass(frozen=True)
class InclusionProof:
    index: int
    tree_size: int
    leaf_hash: bytes
    hashes: list[bytes]

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "tree_size": self.tree_size, "leaf_hash": self.leaf_hash.hex(),
                "hashes": [h.hex() for h in self.hashes]}


@dataclass(frozen=True)
class ConsistencyProof:
    first: int
    second: int
    hashes: list[bytes]

    def as_dict(self) -> dict[str, Any]:
        return {"first": self.first, "second": self.second, "hashes": [h.hex() for h in self.hashes]}


class TreeReader:
    """Roots and proofs from the stored nodes of the audit tree's live view."""

    def __init__(self, view: ReadModelView) -> None:
        self.view = view

    def size(self) -> int:
        rows = self.view.query("SELECT leaves FROM {size} WHERE name = :name", {"name": TREE})
        return rows[0]["leaves"] if rows else 0

    def nodes(self, wanted: Sequence[merkle.Node]) -> dict[merkle.Node, bytes]:
        found: dict[merkle.Node, bytes] = {}
        leaves = [i for level, i in wanted if level == 0]
        inner = {node_key(*n): n for n in wanted if n[0] > 0}
        if leaves:
            params = {f"i{k}": i for k, i in enumerate(leaves)}
            marks = ", ".join(f":{name}" for name in params)
            for r in self.view.query(f"SELECT leaf_index, hash FROM {{leaves}} WHERE leaf_index IN ({marks})", params):
                found[(0, r["leaf_index"])] = bytes.fromhex(r["hash"])
        if inner:
            params = {f"n{k}": key for k, key in enumerate(inner)}
            marks = ", ".join(f":{name}" for name in params)
            for r in self.view.query(f"SELECT node, hash FROM {{nodes}} WHERE node IN ({marks})", params):
                found[inner[r["node"]]] = bytes.fromhex(r["hash"])
        missing = [n for n in wanted if n not in found]
        if missing:
            raise LookupError(f"audit tree: nodes {missing[:3]} are not stored")
        return found

    def root(self, size: int) -> bytes:
        if size == 0:
            return merkle.EMPTY_ROOT
        [root] = merkle.resolve([(0, size)], self.nodes)
        return root

    def position_of(self, index: int) -> int | None:
        rows = self.view.query("SELECT position FROM {leaves} WHERE leaf_index = :i", {"i": index})
        return rows[0]["position"] if rows else None

    def index_of(self, position: int) -> int | None:
        rows = self.view.query("SELECT leaf_index FROM {leaves} WHERE position = :p", {"p": position})
        return rows[0]["leaf_index"] if rows else None

    def leaf_hashes(self, start: int, stop: int) -> list[bytes]:
        rows = self.view.query(
            "SELECT hash FROM {leaves} WHERE leaf_index >= :start AND leaf_index < :stop ORDER BY leaf_index",
            {"start": start, "stop": stop},
        )
        return [bytes.fromhex(r["hash"]) for r in rows]

    def inclusion(self, index: int, tree_size: int) -> InclusionProof:
        ranges = merkle.inclusion_ranges(index, tree_size)
        [leaf, *hashes] = merkle.resolve([(index, index + 1), *ranges], self.nodes)
        return InclusionProof(index, tree_size, leaf, hashes)

    def consistency(self, first: int, second: int) -> ConsistencyProof:
        return ConsistencyProof(first, second, merkle.resolve(merkle.consistency_ranges(first, second), self.nodes))
