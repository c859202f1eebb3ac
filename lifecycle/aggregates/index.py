"""Natural keys as aggregates (the library's `Index` pattern): the id is a uuid5 of the
key, so a second claim of the same key fails with the store's integrity error."""

from __future__ import annotations

from functools import lru_cache
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from lifecycle.aggregates.audited import AuditedCreated
from lifecycle.domain.accounts import login_id


@lru_cache(maxsize=8192)  # a bulk batch asks for each row's claim id several times
def _key_id(key: str) -> UUID:
    return uuid5(NAMESPACE_URL, key)


class Index(Aggregate):
    """Points a natural key (an e-mail address, a site id) at the aggregate that owns it."""

    @staticmethod
    def create_id(key: str, **_: object) -> UUID:
        return _key_id(key)

    class Claimed(AuditedCreated):
        key: str
        ref: UUID

    @event(Claimed)
    def __init__(self, key: str, ref: UUID) -> None:
        self.key = key
        self.ref = ref


EMAIL_KEY_PREFIX = "/accounts/email/"


def email_key(email: str) -> str:
    """The Index key of a login ID; every lookup and claim of an address goes through it.
    Stored sealed under the account's key (the id is a one-way hash of it: docs/privacy.md)."""
    return f"{EMAIL_KEY_PREFIX}{login_id(email)}"


def site_key(site_id: UUID) -> str:
    return f"/sites/{site_id}"


def contact_key(contact_id: UUID) -> str:
    return f"/fault-contacts/{contact_id}"
