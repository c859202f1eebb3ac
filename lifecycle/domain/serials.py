"""Serial numbers, ticket IDs and product code numbers as the seed prints them (T-2, T-4)."""

from __future__ import annotations

import re
import unicodedata

from lifecycle.domain.errors import InvalidSerial

SERIAL_LENGTH = 16
_SERIAL_LABEL = re.compile(r"^\s*S\s*/\s*N\s*[:：]?", re.IGNORECASE)


def _fold(text: str) -> str:
    """Full-width to half-width, ideographic spaces to spaces (NFKC)."""
    return unicodedata.normalize("NFKC", text)


def normalise_serial(printed: str) -> str:
    """The serial part of a printed `S/N:<16 alphanumerics> <revision>` label (T-2).

    Strips the label and leading spaces, cuts at the first space (dropping the 1-3
    character revision) and keeps the first 16 alphanumerics, in upper case.
    """
    text = _SERIAL_LABEL.sub("", _fold(printed)).strip()
    first_word = text.split(maxsplit=1)[0] if text else ""
    serial = "".join(ch for ch in first_word if ch.isascii() and ch.isalnum())
    serial = serial[:SERIAL_LENGTH].upper()
    if not serial:
        raise InvalidSerial(f"No serial number in {printed!r}.")
    return serial


def normalise_ticket_id(text: str) -> str:
    """Ticket IDs are 8 digits; users may type them full-width or with separators."""
    return re.sub(r"[\s\-]", "", _fold(text))


def normalise_code_no(text: str) -> str:
    """The product code No as printed `No.:12345-67`: digits and letters only."""
    text = re.sub(r"^\s*No\.?\s*[:：]?", "", _fold(text), flags=re.IGNORECASE)
    return "".join(ch for ch in text if ch.isascii() and ch.isalnum()).upper()


def same_product(ticket_code_no: str, unit_code_no: str) -> bool:
    """T-4: a ticket fits a unit when the first 5 characters of their code Nos agree."""
    ticket_prefix = normalise_code_no(ticket_code_no)[:5]
    unit_prefix = normalise_code_no(unit_code_no)[:5]
    return len(ticket_prefix) == 5 and ticket_prefix == unit_prefix
