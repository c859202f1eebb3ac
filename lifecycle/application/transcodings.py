"""How value types are stored in events and snapshots (dates have no transcoding by default)."""

from __future__ import annotations

from dataclasses import fields
from datetime import date
from typing import Any
from uuid import UUID

from eventsourcing.persistence import JSONTranscoder, Transcoding

from lifecycle.aggregates.contract import FaultContact, Registration, Site
from lifecycle.aggregates.layered import LayeredMap
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


class LayeredMapAsDict(Transcoding):
    type = LayeredMap
    name = "layered_map"

    def encode(self, obj: LayeredMap[Any, Any]) -> dict[Any, Any]:
        return obj.as_dict()

    def decode(self, data: dict[Any, Any]) -> LayeredMap[Any, Any]:
        return LayeredMap(data)


class RegistrationAsRow(Transcoding):
    """A contract's snapshot holds every registration: each is stored as a row of plain
    values, without the field names and the type tags of its dates, period and site id
    (about a third of the bytes, and of the time to encode and decode). Snapshots taken
    before still decode through the dataclass transcoding's name, "Registration"."""

    type = Registration
    name = "registration_row"

    def encode(self, r: Registration) -> list[Any]:
        assert r.covered_from is not None
        covered_from = None if r.covered_from == r.period.start else r.covered_from.isoformat()
        return [
            r.serial, r.site_id.hex, r.ticket_id, r.code_no, r.model, r.service, r.term_years,
            r.period.start.isoformat(), r.period.end.isoformat(), r.registered_on.isoformat(),
            r.ticket_model, r.options, r.renewal_ticket_ids, covered_from,
        ]

    def decode(self, row: list[Any]) -> Registration:
        (serial, site_id, ticket_id, code_no, model, service, term_years, start, end, registered_on,
         ticket_model, options, renewal_ticket_ids, covered_from) = row
        return Registration(
            serial, UUID(site_id), ticket_id, code_no, model, service, term_years,
            SupportPeriod(date.fromisoformat(start), date.fromisoformat(end)), date.fromisoformat(registered_on),
            ticket_model=ticket_model, options=options, renewal_ticket_ids=renewal_ticket_ids,
            covered_from=date.fromisoformat(covered_from) if covered_from else None,
        )


VALUE_TYPES = (SupportPeriod, OptionUnit, BundleTerms, Site, FaultContact, Registration)


def register_value_types(transcoder: JSONTranscoder) -> None:
    transcoder.register(DateAsISO())
    for value_type in VALUE_TYPES:
        transcoder.register(dataclass_transcoding(value_type))
    transcoder.register(LayeredMapAsDict())
    # Registered after Registration's dataclass transcoding: encodes as rows from now on,
    # and that one still decodes what it encoded.
    transcoder.register(RegistrationAsRow())
