"""What the registration screens ask and check (チケット登録, バンドル登録, 更新): the values a
person typed, and each refusal placed at the field it is about.

The checks are the application's own: the serial and the ticket are looked up in the shipment
history as the commands look them up (so E5 and E4 can both be shown at once, each at its
field), then the command's decision runs without saving (Registrations.preview_*), and the
same decision runs again, saving, when the person confirms. Values are accepted as typed and
normalised by the domain's functions (lifecycle.domain.serials), never here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from api.portal.forms import Form, folded, place_error
from lifecycle.application import LifecycleApplication
from lifecycle.domain.errors import DomainError
from lifecycle.domain.serials import normalise_serial

# Which field a refusal is about (the others go in the summary only).
FIELD_OF_CODE = {
    "SERIAL_NOT_FOUND": "serial",  # E5
    "INVALID_SERIAL": "serial",
    "UNIT_ALREADY_REGISTERED": "serial",
    "NOT_A_BUNDLE": "serial",
    "NOT_IN_SHIPMENT_HISTORY": "ticket_id",  # E4: the ID and code pair
    "INVALID_TICKET_ID": "ticket_id",
    "TICKET_ALREADY_REGISTERED": "ticket_id",
    "TICKET_KIND_MISMATCH": "ticket_id",
    "TICKET_NOT_ELIGIBLE": "ticket_id",
    "PRODUCT_CODE_MISMATCH": "ticket_id",
    "BUNDLE_OPTIONS_MISSING": "option_serials",
    "BUNDLE_OPTIONS_INVALID": "option_serials",
}

REQUIRED = {
    "ticket_id": "チケットIDを入力してください。",
    "verification_code": "確認コードを入力してください。",
    "serial": "シリアル番号を入力してください。",
}
TICKET_FIELDS = ("ticket_id", "verification_code", "serial")
BUNDLE_FIELDS = ("serial", "option_serials")
RENEWAL_FIELDS = ("ticket_id", "verification_code")


@dataclass
class Checked(Form):
    """A registration form: what was typed, each refusal at its field, and, when nothing
    was refused, what the command would answer (the confirmation screen's content)."""

    answer: dict[str, Any] | None = None
    options: list[str] = field(default_factory=list)  # a bundle's option serials, one per field

    @property
    def ok(self) -> bool:
        return not self.errors and self.answer is not None

    def refuse(self, error: DomainError, at: str | None = None) -> None:
        if at is None:
            place_error(self, error, FIELD_OF_CODE)
        else:
            self.add(at, error.message_ja)


def typed(fields: tuple[str, ...], **values: str) -> Checked:
    """The values as typed (only trimmed and folded to half-width: the domain normalises them)."""
    return Checked(values={name: folded(values.get(name) or "") for name in fields}, order=fields)


def _required(checked: Checked, *names: str) -> None:
    for name in names:
        if not checked.values.get(name):
            checked.add(name, REQUIRED[name])


def check_ticket(app: LifecycleApplication, site_id: UUID, ticket_id: str, verification_code: str,
                 serial: str) -> Checked:
    checked = typed(TICKET_FIELDS, ticket_id=ticket_id, verification_code=verification_code, serial=serial)
    ticket_id, verification_code, serial = (checked.values[name] for name in TICKET_FIELDS)
    _required(checked, *TICKET_FIELDS)
    if "serial" not in checked.errors:
        try:
            app.shipments.shipped_unit(normalise_serial(serial))
        except DomainError as error:
            checked.refuse(error, "serial")
    if not {"ticket_id", "verification_code"} & checked.errors.keys():
        try:
            app.shipments.sold_ticket(ticket_id, verification_code)
        except DomainError as error:
            checked.refuse(error, "ticket_id")
    return _previewed(checked, lambda: app.registrations.preview_ticket(site_id, ticket_id, verification_code, serial))


def _previewed(checked: Checked, preview: Callable[[], dict[str, Any]]) -> Checked:
    """Unless a field was refused already, what the command would answer (saving nothing), or
    its refusal at the field it is about."""
    if checked.errors:
        return checked
    try:
        checked.answer = preview()
    except DomainError as error:
        checked.refuse(error)
    return checked


def option_models(app: LifecycleApplication, serial: str) -> list[str]:
    """The models of the bundle unit's standard options, one per option serial it needs
    (none when the serial is not a bundle's): the form gets a field for each."""
    try:
        unit = app.shipments.shipped_unit(normalise_serial(serial))
    except DomainError:
        return []
    return [option.model for option in unit.bundle.options] if unit.bundle is not None else []


def check_bundle(app: LifecycleApplication, site_id: UUID, serial: str, option_serials: list[str]) -> Checked:
    checked = typed(BUNDLE_FIELDS, serial=serial)
    checked.options = [folded(s) for s in option_serials]
    serial, given = checked.values["serial"], [s for s in checked.options if s]
    _required(checked, "serial")
    return _previewed(checked, lambda: app.registrations.preview_bundle(site_id, serial, given))


def check_renewal(app: LifecycleApplication, serial: str, ticket_id: str, verification_code: str) -> Checked:
    checked = typed(RENEWAL_FIELDS, ticket_id=ticket_id, verification_code=verification_code)
    ticket_id, verification_code = (checked.values[name] for name in RENEWAL_FIELDS)
    _required(checked, *RENEWAL_FIELDS)
    return _previewed(checked, lambda: app.registrations.preview_renewal(serial, ticket_id, verification_code))
