"""The API keys of internal services: each key is an aggregate (who may do what, from when,
until it is revoked), and the key ring names them all. The secret itself is never stored:
only its SHA-256 (a key is 32 random bytes, so a fast hash is safe to keep)."""

from __future__ import annotations

import re
from datetime import datetime
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from lifecycle.aggregates.audited import AuditedCreated, AuditedEvent
from lifecycle.domain.errors import ApiKeyNameTaken, InvalidKeyName


class ApiKey(Aggregate):
    class Created(AuditedCreated):
        name: str
        roles: list[str]
        secret_hash: str
        created_at: datetime

    @event(Created)
    def __init__(self, name: str, roles: list[str], secret_hash: str, created_at: datetime) -> None:
        self.name = name
        self.roles = list(roles)
        self.secret_hash = secret_hash
        self.created_at = created_at
        self.revoked_at: datetime | None = None

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    def revoke(self, at: datetime) -> None:
        if self.revoked_at is None:
            self._revoked(at)

    class Revoked(AuditedEvent):
        revoked_at: datetime

    @event(Revoked)
    def _revoked(self, revoked_at: datetime) -> None:
        self.revoked_at = revoked_at


# Names show in logs, lists and the CLI, and name keys on the command line: a plain token.
KEY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


class KeyRing(Aggregate):
    """Every key's name and id, in the order they were made: names are unique, and listing
    the keys reads one aggregate. Saved with each new key, so two keys made at once with
    one name cannot both be saved."""

    ID = uuid5(NAMESPACE_URL, "/api-keys")

    @staticmethod
    def create_id(**_: object) -> UUID:
        return KeyRing.ID

    class Started(AuditedCreated):
        pass

    @event(Started)
    def __init__(self) -> None:
        self.keys: dict[str, str] = {}  # name -> key id

    def add(self, name: str, key_id: UUID) -> None:
        if not KEY_NAME.fullmatch(name):
            raise InvalidKeyName(
                f"An API key's name is 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit; "
                f"not {name[:40]!r}{'...' if len(name) > 40 else ''}.",
            )
        if name in self.keys:
            raise ApiKeyNameTaken(f"An API key named {name!r} exists already.", name=name)
        self._added(name, key_id)

    class KeyAdded(AuditedEvent):
        name: str
        key_id: UUID

    @event(KeyAdded)
    def _added(self, name: str, key_id: UUID) -> None:
        self.keys[name] = str(key_id)
