"""How value types are stored in events and snapshots (dates have no transcoding by default)."""

from __future__ import annotations

from dataclasses import fields
from datetime import date
from typing import Any

from eventsourcing.persistence import JSONTranscoder, Transcoding

from lifecycle.aggregates.contract import FaultContact, Registration, Site
from lifecycle.aggregates.shipments import BundleTerms, OptionUnit
from lifecycle.domain.periods import SupportPeriod


class DateAsISO(Transcoding):
    type = date
    name = "date_iso"

    def encode(self, obj: date) -> str:
        return obj.isoformat()

    def decode(self, data: str) -> date:
        return date.fromisoformat(data)


def dataclass_transcoding(cls: type) -> Transcoding:
    """A transcoding that stores a frozen dataclass as its fields (shallow: nested values
    are transcoded by their own transcodings)."""

    class _DataclassTranscoding(Transcoding):
        type = cls
        name = cls.__name__

        def encode(self, obj: Any) -> dict[str, Any]:
            return {f.name: getattr(obj, f.name) for f in fields(obj)}

        def decode(self, data: dict[str, Any]) -> Any:
            return cls(**data)

    return _DataclassTranscoding()


VALUE_TYPES = (SupportPeriod, OptionUnit, BundleTerms, Site, FaultContact, Registration)


def register_value_types(transcoder: JSONTranscoder) -> None:
    transcoder.register(DateAsISO())
    for value_type in VALUE_TYPES:
        transcoder.register(dataclass_transcoding(value_type))
