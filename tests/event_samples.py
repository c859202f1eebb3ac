"""Events of any type with every field filled from its annotation, strings taken from a list
(by default strings that JSON encoders are apt to write differently): to check what is made of
every event type the log can hold."""

from __future__ import annotations

import dataclasses
import decimal
import enum
import types
import typing
import uuid
from collections import abc
from datetime import date, datetime, timezone
from typing import Any

# Strings an encoder must survive: control characters, quotes and backslashes, DEL and U+2028,
# Japanese and full-width text, a private-use character, a combining mark, a character outside
# the BMP. No 16-digit runs here (those take the reference on purpose, tested apart).
HOSTILE_STRINGS = ["\x00\x1f\"\\\x7f\u2028\n", "東京\uff11\ue000", "\U0001f600 e\u0301", "1.5e3 -0", ""]


def _value_for(tp: Any, n: int, strings: list[str]) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if isinstance(tp, typing.TypeVar):  # the aggregate's id
        return uuid.uuid5(uuid.NAMESPACE_OID, str(n))
    if origin in (typing.Union, types.UnionType):
        return _value_for(next(a for a in args if a is not type(None)), n, strings)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return (_value_for(args[0], n, strings), _value_for(args[0], n + 1, strings))
        return tuple(_value_for(a, n + i, strings) for i, a in enumerate(args))
    if origin in (list, abc.Sequence):
        return [_value_for(args[0], n, strings)]
    if origin in (dict, abc.Mapping):
        return {strings[n % len(strings)]: _value_for(args[1], n, strings)}
    if origin is typing.Literal:
        return args[0]
    simple = {str: strings[n % len(strings)], bool: True, int: 10**15 - 1 - n, float: 0.1 + n,
              decimal.Decimal: decimal.Decimal("1.10"), uuid.UUID: uuid.uuid5(uuid.NAMESPACE_OID, str(n)),
              datetime: datetime(2026, 12, 8, 1, 2, 3, 456789, tzinfo=timezone.utc), date: date(2026, 12, 8)}
    if tp in simple or tp is typing.Any:
        return simple.get(tp, strings[n % len(strings)])
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return next(iter(tp))
    if dataclasses.is_dataclass(tp):
        return sample_event(tp, n, strings)
    raise TypeError(f"no sample value for {tp!r}")


def sample_event(cls: type, n: int, strings: list[str] = HOSTILE_STRINGS) -> Any:
    """An instance of an event (or value) class, every field filled from its annotation."""
    hints = typing.get_type_hints(cls)
    return cls(**{f.name: _value_for(hints[f.name], n + i, strings)
                  for i, f in enumerate(dataclasses.fields(cls)) if f.init})
