"""RFC 9162 (Certificate Transparency 2.0) §2.1 Merkle trees: hashing, the subtrees a proof
is made of, and the auditor's verification of inclusion and consistency proofs.

The tree over n leaves D[0:n] has MTH(D[a:b]) = SHA-256(0x00 ‖ leaf) for one leaf and
SHA-256(0x01 ‖ MTH(left) ‖ MTH(right)) otherwise, split at the largest power of two below
b - a. A proof is a list of subtree hashes MTH(D[a:b]); which subtrees is pure arithmetic
(`inclusion_ranges`, `consistency_ranges`), so a store needs only the hashes of the complete,
aligned subtrees ("nodes": level l, index i covers leaves [i·2^l, (i+1)·2^l)) to answer any
proof with O(log n) lookups (`node_ranges` splits any range into such nodes).
Nothing here knows of events or stores."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

Range = tuple[int, int]  # leaves [start, end)
Node = tuple[int, int]  # (level, index)

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


class ProofError(ValueError):
    """A proof that does not verify, or parameters no proof exists for."""


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two strictly below n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


class Frontier:
    """The perfect subtrees of the tree grown so far (RFC 9162's "compact range" from 0): one
    leaf appended in O(1) amortised, the root of the leaves so far in O(log n)."""

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[tuple[int, bytes]] = []  # (leaves, hash), sizes decreasing

    def append(self, leaf_hash: bytes) -> None:
        h, size = leaf_hash, 1
        stack = self._stack
        while stack and stack[-1][0] == size:
            h, size = node_hash(stack.pop()[1], h), size * 2
        stack.append((size, h))
        self.size += 1

    def root(self) -> bytes:
        return fold(h for _, h in self._stack) if self._stack else EMPTY_ROOT


def root_of(leaf_hashes: Iterable[bytes]) -> bytes:
    """MTH of all the leaves (by their leaf hashes): O(n) time, O(log n) memory."""
    frontier = Frontier()
    for h in leaf_hashes:
        frontier.append(h)
    return frontier.root()


def fold(perfect_hashes: Iterable[bytes]) -> bytes:
    """MTH of a range from the hashes of its perfect subtrees, largest (leftmost) first."""
    hashes = list(perfect_hashes)
    result = hashes[-1]
    for h in reversed(hashes[:-1]):
        result = node_hash(h, result)
    return result


def node_ranges(start: int, end: int) -> list[Node]:
    """The complete aligned subtrees that make up leaves [start, end), left to right, largest
    first where the range starts aligned (as every range of a proof does)."""
    nodes: list[Node] = []
    while start < end:
        level = (start & -start).bit_length() - 1 if start else (end - start).bit_length() - 1
        while start + (1 << level) > end:
            level -= 1
        nodes.append((level, start >> level))
        start += 1 << level
    return nodes


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """The subtrees of the audit path of leaf `index` in the tree of `size` leaves, in
    proof order (RFC 9162 §2.1.3.1: the deepest first)."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not within a tree of {size} leaves")
    ranges: list[Range] = []
    start, end = 0, size
    while end - start > 1:
        k = _split(end - start)
        if index < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start = start + k
    return ranges[::-1]


def consistency_ranges(first: int, second: int) -> list[Range]:
    """The subtrees of the consistency proof between the trees of `first` and `second` leaves
    (RFC 9162 §2.1.4.1); empty when they are the same size."""
    if not 0 < first <= second:
        raise ProofError(f"no consistency proof from a tree of {first} to a tree of {second} leaves")
    ranges: list[Range] = []
    m, start, end, whole = first, 0, second, True
    while True:
        if m == end - start:
            if not whole:
                ranges.append((start, end))
            break
        k = _split(end - start)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            m, start, whole = m - k, start + k, False
    return ranges[::-1]


def resolve(ranges: Sequence[Range], nodes: Callable[[Sequence[Node]], dict[Node, bytes]]) -> list[bytes]:
    """The hashes of `ranges`, from one lookup of all the stored nodes they are made of."""
    wanted = [node_ranges(a, b) for a, b in ranges]
    found = nodes(sorted({n for parts in wanted for n in parts}))
    return [fold(found[n] for n in parts) for parts in wanted]


# --- the auditor's side (RFC 9162 §2.1.3.2 and §2.1.4.2) -------------------------------


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """The root that the proof of leaf hash `leaf` at `index` leads to; ProofError when the
    proof cannot be one for that index and size."""
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is not within a tree of {size} leaves")
    if len(leaf) != HASH_SIZE or any(len(p) != HASH_SIZE for p in proof):
        raise ProofError("a leaf hash and every hash of a proof is 32 bytes")
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ProofError("the inclusion proof is longer than the tree is deep")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ProofError("the inclusion proof is shorter than the tree is deep")
    return r


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> None:
    if root_from_inclusion(index, size, leaf, proof) != root:
        raise ProofError(f"leaf {index} is not included in the tree of {size} leaves with that root")


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes,
                       proof: Sequence[bytes]) -> None:
    """Raises ProofError unless the tree of `second` leaves extends the tree of `first`."""
    if second < first:
        raise ProofError(f"a tree of {second} leaves cannot extend one of {first}")
    if first == 0:
        raise ProofError("a consistency proof from the empty tree means nothing")
    if first == second:
        if proof:
            raise ProofError("trees of the same size need an empty consistency proof")
        if first_root != second_root:
            raise ProofError(f"two different roots for the tree of {first} leaves")
        return
    if not proof:
        raise ProofError("an empty consistency proof between trees of different sizes")
    if any(len(h) != HASH_SIZE for h in (first_root, second_root, *proof)):
        raise ProofError("roots and every hash of a proof are 32 bytes")
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("the consistency proof is longer than the trees are deep")
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0 or fr != first_root or sr != second_root:
        raise ProofError(f"the tree of {second} leaves does not extend the tree of {first} leaves")
