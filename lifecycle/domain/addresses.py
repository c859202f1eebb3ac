"""Japanese addresses and phones (S-2, S-3); the postal-code directory is a port (lifecycle.ports)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, fields

from lifecycle.domain.errors import AddressMismatch, InvalidPhone, InvalidPostalCode

_PHONE = re.compile(r"^0\d{1,4}-\d{1,4}-\d{3,4}$")


@dataclass(frozen=True, kw_only=True)
class Address:
    """A Japanese postal address as a site or a fault contact keeps it (S-2, S-3): its fields
    are declared here once. Sites and fault contacts are Addresses with fields of their own
    (keyword-only here, so their own come first when built positionally); stored events keep
    them flat, as before."""

    postal_code: str
    prefecture: str
    city: str
    street: str
    building: str = ""

    def postal_line(self) -> str:
        """〒100-0001 東京都千代田区千代田1-1 (the mails' way of writing it)."""
        code = self.postal_code
        return f"〒{code[:3]}-{code[3:]} {self.prefecture}{self.city}{self.street}{self.building}"


ADDRESS_FIELDS = tuple(f.name for f in fields(Address))


@dataclass(frozen=True)
class PostalAddress:
    """What the postal-code lookup (住所検索) fills in."""

    postal_code: str
    prefecture: str
    city: str
    town: str


def normalise_postal_code(text: str) -> str:
    code = re.sub(r"[\s\-〒]", "", unicodedata.normalize("NFKC", text))
    if not re.fullmatch(r"\d{7}", code):
        raise InvalidPostalCode(f"{text!r} is not a 7-digit postal code.")
    return code


def normalise_phone(text: str) -> str:
    """Hyphen-separated phone numbers, as the seed asks (03-1234-5678)."""
    phone = unicodedata.normalize("NFKC", text).strip().replace("ー", "-")
    if not _PHONE.fullmatch(phone):
        raise InvalidPhone(f"{text!r} is not a hyphen-separated phone number like 03-1234-5678.")
    return phone


def _same(a: str, b: str) -> bool:
    return unicodedata.normalize("NFKC", a).replace(" ", "") == unicodedata.normalize(
        "NFKC", b
    ).replace(" ", "")


def resolve_address(
    lookup: Callable[[str], PostalAddress], postal_code: str, prefecture: str | None, city: str | None
) -> tuple[str, str, str]:
    """The postal code, prefecture and city of an address: filled from the postal code
    where not given, and checked against it where given."""
    code = normalise_postal_code(postal_code)
    found = lookup(code)  # the postal directory (a port): raises AddressUndefined
    if prefecture and not _same(prefecture, found.prefecture):
        raise AddressMismatch(
            f"Postal code {code} is in {found.prefecture}, not {prefecture}.",
            expected_prefecture=found.prefecture,
        )
    if city and not _same(city, found.city):
        raise AddressMismatch(
            f"Postal code {code} is in {found.city}, not {city}.", expected_city=found.city
        )
    return code, found.prefecture, found.city
