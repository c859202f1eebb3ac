"""The RFC 9162 Merkle tree against the transparency-dev/merkle repository's published vectors
(tests/data/transparency_dev_merkle: its hasher, its reference tree, and its inclusion and
consistency proofs with their negative cases), and our proof generation against its proofs."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from lifecycle import merkle

VECTORS = Path(__file__).parent.parent / "data" / "transparency_dev_merkle"
REFERENCE = json.loads((VECTORS / "reference_tree.json").read_text())
LEAVES = [bytes.fromhex(x) for x in REFERENCE["leaf_inputs"]]


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value) if value else b""


def _proof(values: list[str] | None) -> list[bytes]:
    return [_b64(v) for v in values or []]


def _cases(kind: str) -> list[Path]:
    return sorted((VECTORS / kind).rglob("*.json"))


class InMemoryNodes:
    """Every complete aligned subtree of the leaves, as a store keeps them."""

    def __init__(self, leaves: list[bytes]) -> None:
        self.nodes = {(0, i): merkle.leaf_hash(x) for i, x in enumerate(leaves)}
        level = 0
        while any(k[0] == level for k in self.nodes):
            i = 0
            while (level, 2 * i + 1) in self.nodes:
                self.nodes[(level + 1, i)] = merkle.node_hash(self.nodes[(level, 2 * i)], self.nodes[(level, 2 * i + 1)])
                i += 1
            level += 1

    def __call__(self, wanted):
        return {n: self.nodes[n] for n in wanted}


def test_audit_tree_hasher_matches_the_published_vectors():
    for case in REFERENCE["hasher"]:
        if case.get("empty_root"):
            got = merkle.EMPTY_ROOT
        elif "leaf" in case:
            got = merkle.leaf_hash(bytes.fromhex(case["leaf"]))
        else:
            got = merkle.node_hash(*(bytes.fromhex(c) for c in case["children"]))
        assert got.hex() == case["want"], case["desc"]


def test_audit_tree_roots_and_nodes_of_the_reference_tree():
    for size, want in enumerate(REFERENCE["root_hashes"]):
        assert merkle.root_of([merkle.leaf_hash(x) for x in LEAVES[:size]]).hex() == want
    nodes = InMemoryNodes(LEAVES)
    for level, hashes in enumerate(REFERENCE["node_hashes"]):
        for index, want in enumerate(hashes):
            assert nodes.nodes[(level, index)].hex() == want
    # every root also from the stored nodes alone, as the service computes it
    for size in range(1, 9):
        [root] = merkle.resolve([(0, size)], nodes)
        assert root.hex() == REFERENCE["root_hashes"][size]


@pytest.mark.parametrize("path", _cases("inclusion"), ids=lambda p: str(p.relative_to(VECTORS)))
def test_audit_inclusion_proofs_verify_as_the_published_vectors_say(path):
    case = json.loads(path.read_text())
    args = (case["leafIdx"], case["treeSize"], _b64(case["leafHash"]), _proof(case["proof"]), _b64(case["root"]))
    if case["wantErr"]:
        with pytest.raises(merkle.ProofError):
            merkle.verify_inclusion(*args)
    else:
        merkle.verify_inclusion(*args)


@pytest.mark.parametrize("path", _cases("consistency"), ids=lambda p: str(p.relative_to(VECTORS)))
def test_audit_consistency_proofs_verify_as_the_published_vectors_say(path):
    case = json.loads(path.read_text())
    args = (case["size1"], case["size2"], _b64(case["root1"]), _b64(case["root2"]), _proof(case["proof"]))
    if case["wantErr"]:
        with pytest.raises(merkle.ProofError):
            merkle.verify_consistency(*args)
    else:
        merkle.verify_consistency(*args)


def _happy(kind: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in _cases(kind) if p.name == "happy-path.json"]


def test_audit_generated_proofs_equal_the_published_happy_paths():
    nodes = InMemoryNodes(LEAVES)
    inclusion = [c for c in _happy("inclusion") if c["treeSize"] <= len(LEAVES)]
    consistency = [c for c in _happy("consistency") if c["size2"] <= len(LEAVES) and c["size1"] > 0]
    assert inclusion and consistency
    for case in inclusion:
        got = merkle.resolve(merkle.inclusion_ranges(case["leafIdx"], case["treeSize"]), nodes)
        assert got == _proof(case["proof"]), case
    for case in consistency:
        got = merkle.resolve(merkle.consistency_ranges(case["size1"], case["size2"]), nodes)
        assert got == _proof(case["proof"]), case


def test_audit_every_generated_proof_verifies_in_a_larger_tree():
    leaves = [f"leaf {i}".encode() for i in range(70)]
    nodes = InMemoryNodes(leaves)
    hashes = [merkle.leaf_hash(x) for x in leaves]
    roots = [merkle.root_of(hashes[:n]) for n in range(71)]
    for size in range(1, 71):
        for index in range(size):
            proof = merkle.resolve(merkle.inclusion_ranges(index, size), nodes)
            merkle.verify_inclusion(index, size, hashes[index], proof, roots[size])
        for first in range(1, size + 1):
            proof = merkle.resolve(merkle.consistency_ranges(first, size), nodes)
            merkle.verify_consistency(first, size, roots[first], roots[size], proof)
            if first < size:
                with pytest.raises(merkle.ProofError):
                    merkle.verify_consistency(first, size, roots[first - 1] if first > 1 else b"x" * 32,
                                              roots[size], proof)
