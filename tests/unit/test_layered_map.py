"""LayeredMap: a dict whose copies cost the same whatever its size (the contract's
registrations and mails sent), and whose copies never see each other's writes."""

from __future__ import annotations

from copy import copy, deepcopy
from math import isqrt

from lifecycle.aggregates.layered import LayeredMap


def test_it_reads_and_writes_like_a_dict_in_insertion_order() -> None:
    layered: LayeredMap[str, int] = LayeredMap({"a": 1, "b": 2})
    plain = {"a": 1, "b": 2}
    for key, value in [("c", 3), ("a", 10), ("d", 4)]:
        layered[key] = value
        plain[key] = value
    assert layered == plain and plain == layered
    assert list(layered) == list(plain) == ["a", "b", "c", "d"]
    assert list(layered.values()) == [10, 2, 3, 4]
    assert len(layered) == 4 and "c" in layered and "z" not in layered
    assert layered.get("z") is None and layered["a"] == 10
    del layered["b"]
    assert layered.as_dict() == {"a": 10, "c": 3, "d": 4}


def test_writes_to_a_copy_and_to_the_original_stay_apart_across_merges() -> None:
    original: LayeredMap[int, int] = LayeredMap((n, n) for n in range(10_000))
    copies = []
    for n in range(300):  # several merges of the original's top into a new base
        copies.append((n, original.copy()))
        original[10_000 + n] = n
        original[n] = -n
    for n, copied in copies:
        assert len(copied) == 10_000 + n
        assert copied[n] == n and 10_000 + n not in copied
        copied[n] = 7  # the copy's own write
        assert original[n] == -n
    assert len(original) == 10_300 and original[299] == -299


def test_a_copy_costs_at_most_the_square_root_of_the_size() -> None:
    """A copy shares the base and copies only the writes since the last merge."""
    original: LayeredMap[int, int] = LayeredMap()
    for n in range(50_000):
        original[n] = n
        base, top = original._layers
        assert len(top) <= max(LayeredMap.MIN_TOP, isqrt(len(base)))
    for copied in (original.copy(), copy(original), deepcopy(original)):
        assert copied._layers[0] is original._layers[0]
        assert copied._layers[1] is not original._layers[1]
        assert copied == original
