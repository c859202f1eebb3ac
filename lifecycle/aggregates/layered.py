"""A dict that a command can copy at a cost that does not grow with its size."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, MutableMapping
from math import isqrt
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class LayeredMap(MutableMapping[K, V], Generic[K, V]):
    """A mapping kept as a shared base that is never changed in place and a small top
    layer of the writes since. A copy shares the base and copies only the top, so every
    command's copy of a contract with 50,000 registrations costs what a small one does.

    When the top outgrows √(size) it is merged into a new base: copies cost O(√n) and the
    merges O(√n) a write, amortised. Values must be immutable (they are shared too).
    Both layers are one attribute, replaced at once, so a copy taken while another thread
    writes sees the layers of one moment: a merge never changes the dicts it replaces.
    """

    __slots__ = ("_layers",)

    MIN_TOP = 64

    def __init__(self, items: Iterable[tuple[K, V]] | dict[K, V] = ()) -> None:
        self._layers: tuple[dict[K, V], dict[K, V]] = (dict(items), {})

    def __getitem__(self, key: K) -> V:
        base, top = self._layers
        try:
            return top[key]
        except KeyError:
            return base[key]

    def __contains__(self, key: object) -> bool:
        base, top = self._layers
        return key in top or key in base

    def __setitem__(self, key: K, value: V) -> None:
        base, top = self._layers
        top[key] = value
        if len(top) > max(self.MIN_TOP, isqrt(len(base))):
            self._layers = ({**base, **top}, {})

    def __delitem__(self, key: K) -> None:
        merged = self.as_dict()
        del merged[key]
        self._layers = (merged, {})

    def __iter__(self) -> Iterator[K]:
        base, top = self._layers
        yield from base
        yield from (key for key in list(top) if key not in base)  # list(): one step under the GIL

    def __len__(self) -> int:
        base, top = self._layers
        return len(base) + sum(key not in base for key in list(top))

    def as_dict(self) -> dict[K, V]:
        """A new plain dict of the items, in insertion order."""
        base, top = self._layers
        return {**base, **top}

    def copy(self) -> LayeredMap[K, V]:
        base, top = self._layers
        copy = object.__new__(type(self))
        copy._layers = (base, dict(top))
        return copy

    __copy__ = copy

    def __deepcopy__(self, memo: dict[int, object]) -> LayeredMap[K, V]:
        return self.copy()  # the values are immutable

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.as_dict()!r})"
