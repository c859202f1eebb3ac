"""Personal fields sealed where events are encoded (docs/privacy.md).

The library's `Mapper` turns a domain event into a stored event: its attributes become a dict
that the transcoder writes as JSON. `SealingMapper` steps in between: before the dict is
encoded each personal field (lifecycle.domain.privacy) is replaced by a `Sealed` value,
AES-256-GCM under its data subject's key, with associated data naming the subject, the event's
topic and the field; after a stored event is decoded it is opened again. So every event,
snapshot and idempotent answer is sealed on its way to the store, and every read (a command's
load, the projections, history, as-of views, the auditor's export of stored bytes) goes through
the same two functions. A field whose subject was forgotten opens as ERASED; one that does not
open with its subject's key (copied to another subject, field or event) as UNREADABLE.

Which fields of which event belong to which subject is written once, in `SEALING_PLANS`: one
function per event type that walks its personal fields, used both ways."""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Callable
from dataclasses import replace
from typing import Any
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from eventsourcing.domain import Snapshot
from eventsourcing.persistence import Mapper, StoredEvent, Transcoder, Transcoding
from eventsourcing.utils import get_topic, resolve_topic

from lifecycle.aggregates.accounts import Account
from lifecycle.aggregates.contract import Contract
from lifecycle.aggregates.idempotency import CommandAnswer
from lifecycle.aggregates.index import EMAIL_KEY_PREFIX, Index
from lifecycle.domain.privacy import ERASED, PERSONAL_FIELDS, UNREADABLE, SubjectKind
from lifecycle.ports import SubjectKeys

log = logging.getLogger(__name__)

NONCE_BYTES = 12


class Sealed:
    """A personal value as stored: key generation (4 bytes), nonce, AES-GCM ciphertext."""

    __slots__ = ("blob",)

    def __init__(self, blob: bytes) -> None:
        self.blob = blob

    def __repr__(self) -> str:  # never the value
        return "Sealed(...)"


class SealedAsBase64(Transcoding):
    type = Sealed
    name = "sealed"

    def encode(self, obj: Sealed) -> str:
        return base64.b64encode(obj.blob).decode()

    def decode(self, data: str) -> Sealed:
        return Sealed(base64.b64decode(data))


class SealBroken(Exception):
    """A sealed value that does not open with its subject's key."""


def associated_data(subject_id: str, topic: str, field: str) -> bytes:
    return f"{subject_id}\x1f{topic}\x1f{field}".encode()


class Sealer:
    def __init__(self, keys: SubjectKeys) -> None:
        self.keys = keys

    def seal(self, subject_id: str, topic: str, field: str, value: str) -> Sealed:
        key = self.keys.key_for_sealing(subject_id)
        nonce = os.urandom(NONCE_BYTES)
        body = key.cipher.encrypt(nonce, value.encode(), associated_data(subject_id, topic, field))
        return Sealed(key.generation.to_bytes(4, "big") + nonce + body)

    def open(self, subject_id: str, topic: str, field: str, sealed: Sealed) -> str:
        """The value; ERASED once the subject's key is destroyed; SealBroken when it does not
        open with the subject's key (it was sealed for another subject, field or event)."""
        blob = sealed.blob
        generation = int.from_bytes(blob[:4], "big")
        key = self.keys.key(subject_id)
        if key is None or key.cipher is None or key.generation > generation:
            return ERASED
        if key.generation != generation:
            raise SealBroken(f"generation {generation} of a key at {key.generation}")
        cipher: AESGCM = key.cipher
        try:
            body = cipher.decrypt(blob[4 : 4 + NONCE_BYTES], blob[4 + NONCE_BYTES :],
                                  associated_data(subject_id, topic, field))
        except InvalidTag:
            raise SealBroken("the value does not open with this subject's key") from None
        return body.decode()


# --- which fields belong to whom -----------------------------------------------------------

# fn(subject_id, field path, value) -> the value sealed (or opened); values it does not
# handle (None, "", markers; or plain values when opening) come back unchanged.
Transform = Callable[[str, str, Any], Any]
Plan = Callable[[dict[str, Any], UUID, Transform], None]

ACCOUNT = PERSONAL_FIELDS[SubjectKind.ACCOUNT]
SITE = PERSONAL_FIELDS[SubjectKind.SITE_PERSON]
CONTACT = PERSONAL_FIELDS[SubjectKind.FAULT_CONTACT]


def _fields(values: dict[str, Any], subject: Any, names: tuple[str, ...], fn: Transform, prefix: str = "") -> None:
    for name in names:
        if name in values:
            values[name] = fn(str(subject), prefix + name, values[name])


def _value_object(obj: Any, subject: Any, names: tuple[str, ...], fn: Transform, prefix: str) -> Any:
    changed = {name: fn(str(subject), prefix + name, getattr(obj, name)) for name in names}
    return replace(obj, **changed)


def _account_fields(*names: str) -> Plan:
    def plan(state: dict[str, Any], originator_id: UUID, fn: Transform) -> None:
        _fields(state, originator_id, names, fn)

    return plan


def _account_changes(state: dict[str, Any], originator_id: UUID, fn: Transform) -> None:
    _fields(state["changes"], originator_id, ACCOUNT, fn, "changes.")


def _own_recipients(state: dict[str, Any], originator_id: UUID, fn: Transform) -> None:
    state["recipients"] = [fn(str(originator_id), "recipients", r) for r in state["recipients"]]


def _email_index(state: dict[str, Any], _: UUID, fn: Transform) -> None:
    key = state["key"]
    if not isinstance(key, str) or key.startswith(EMAIL_KEY_PREFIX):
        state["key"] = fn(str(state["ref"]), "key", key)


def _site_added(state: dict[str, Any], _: UUID, fn: Transform) -> None:
    site = state["site"]
    state["site"] = _value_object(site, site.site_id, SITE, fn, "site.")


def _site_changed(state: dict[str, Any], _: UUID, fn: Transform) -> None:
    _fields(state["changes"], state["site_id"], SITE, fn, "changes.")


def _contact_added(state: dict[str, Any], _: UUID, fn: Transform) -> None:
    contact = state["contact"]
    state["contact"] = _value_object(contact, contact.contact_id, CONTACT, fn, "contact.")


def _contact_changed(state: dict[str, Any], _: UUID, fn: Transform) -> None:
    _fields(state["changes"], state["contact_id"], CONTACT, fn, "changes.")


def _contract_recipients(state: dict[str, Any], _: UUID, fn: Transform) -> None:
    """Each address under the subject it belongs to (the registrant or a fault contact);
    mails recorded before subjects were (class version 1) have none: left as they are."""
    subjects = state.get("recipient_subjects") or []
    if len(subjects) == len(state["recipients"]):
        state["recipients"] = [fn(str(s), "recipients", r) for s, r in zip(subjects, state["recipients"])]


CONTRACT_TOPIC = get_topic(Contract)


def _contract_snapshot(state: dict[str, Any], _: UUID, fn: Transform) -> None:
    if state.get("topic") != CONTRACT_TOPIC:
        return
    contract = state["state"]
    contract["sites"] = {
        key: _value_object(site, site.site_id, SITE, fn, "sites.") for key, site in contract["sites"].items()
    }
    contract["fault_contacts"] = {
        key: _value_object(c, c.contact_id, CONTACT, fn, "fault_contacts.")
        for key, c in contract["fault_contacts"].items()
    }


def _views(value: Any, fn: Transform) -> Any:
    """An idempotent command's first answer: the views it holds (an account, a site, a fault
    contact) are recognised by their id and fields."""
    if isinstance(value, list):
        return [_views(v, fn) for v in value]
    if not isinstance(value, dict):
        return value
    value = {k: _views(v, fn) for k, v in value.items()}
    if "account_id" in value and "email" in value:
        _fields(value, value["account_id"], (*ACCOUNT, "pending_email"), fn)
    elif "site_id" in value and "person" in value:
        _fields(value, value["site_id"], SITE, fn)
    elif "contact_id" in value and "mail1" in value:
        _fields(value, value["contact_id"], CONTACT, fn)
    return value


def _command_answer(state: dict[str, Any], _: UUID, fn: Transform) -> None:
    if state.get("answer") is not None:
        state["answer"] = _views(state["answer"], fn)


SEALING_PLANS: dict[type, Plan] = {
    Account.SignedUp: _account_fields(*ACCOUNT),
    Account.ProfileChanged: _account_changes,
    Account.EmailChangeRequested: _account_fields("new_email"),
    Account.EmailChanged: _account_fields("email", "previous_email"),
    Account.ConfirmationMailSent: _own_recipients,
    Account.EmailChangeMailSent: _own_recipients,
    Account.PasswordResetMailSent: _own_recipients,
    Account.NoticeMailSent: _own_recipients,
    Index.Claimed: _email_index,
    Contract.SiteAdded: _site_added,
    Contract.SiteChanged: _site_changed,
    Contract.FaultContactAdded: _contact_added,
    Contract.ContactChanged: _contact_changed,
    Contract.ServiceInNotified: _contract_recipients,
    Contract.RenewalReminderSent: _contract_recipients,
    Snapshot: _contract_snapshot,
    CommandAnswer.Answered: _command_answer,
}


class SealingMapper(Mapper[UUID]):
    """The library's Mapper with personal fields sealed before encoding and opened after
    decoding (the module's docstring)."""

    def __init__(self, transcoder: Transcoder, sealer: Sealer, plans: dict[type, Plan] = SEALING_PLANS) -> None:
        super().__init__(transcoder)
        self.sealer = sealer
        self.plans = plans

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        plan = self.plans.get(type(domain_event))
        if plan is None:
            return super().to_stored_event(domain_event)
        topic = get_topic(type(domain_event))
        event_state = dict(vars(domain_event))
        originator_id = event_state.pop("originator_id")
        originator_version = event_state.pop("originator_version")
        class_version = getattr(type(domain_event), "class_version", 1)
        if class_version > 1:
            event_state["class_version"] = class_version
        plan(_copied(event_state), originator_id, self._sealing(topic))
        return StoredEvent(
            originator_id=originator_id,
            originator_version=originator_version,
            topic=topic,
            state=self.transcoder.encode(event_state),
        )

    def to_domain_event(self, stored_event: StoredEvent) -> Any:
        domain_event = super().to_domain_event(stored_event)
        plan = self.plans.get(resolve_topic(stored_event.topic))
        if plan is not None:
            plan(vars(domain_event), domain_event.originator_id, self._opening(stored_event))
        return domain_event

    def _sealing(self, topic: str) -> Transform:
        seal = self.sealer.seal

        def fn(subject_id: str, field: str, value: Any) -> Any:
            if not isinstance(value, str) or not value or value in (ERASED, UNREADABLE):
                return value  # nothing personal in it
            return seal(subject_id, topic, field, value)

        return fn

    def _opening(self, stored_event: StoredEvent) -> Transform:
        open_ = self.sealer.open
        topic = stored_event.topic

        def fn(subject_id: str, field: str, value: Any) -> Any:
            if not isinstance(value, Sealed):
                return value  # stored in clear (before sealing existed, or not personal)
            try:
                return open_(subject_id, topic, field, value)
            except SealBroken as broken:
                log.warning("event %s v%s: %s does not open (%s)", stored_event.originator_id,
                            stored_event.originator_version, field, broken)
                return UNREADABLE

        return fn


def _copied(event_state: dict[str, Any]) -> dict[str, Any]:
    """The event's own containers stay as they are (the aggregate and caches share them): the
    plans change copies of those they change in place (a snapshot's state, changes)."""
    for name in ("changes", "state"):
        value = event_state.get(name)
        if isinstance(value, dict):
            event_state[name] = dict(value)
    return event_state
