"""Rules of accounts (A-1…A-4): how long the mailed URLs are valid, the password rule."""

from __future__ import annotations

import re
import unicodedata
from datetime import timedelta

from lifecycle.domain.errors import WeakPassword

CONFIRMATION_VALIDITY = timedelta(hours=24)
EMAIL_CHANGE_VALIDITY = timedelta(hours=24)
PASSWORD_RESET_VALIDITY = timedelta(hours=24)  # the seed is silent; as its other URLs


def check_password_strength(password: str) -> None:
    """A-1: letters and digits, at least 8 characters."""
    if len(password) < 8 or not re.search(r"[A-Za-z]", password) or not re.search(r"\d", password):
        raise WeakPassword("The password needs at least 8 characters with both letters and digits.")


def login_id(email: str) -> str:
    """The one form in which login IDs (e-mail addresses) are compared and indexed: NFKC, so
    that a full-width copy of an address is the same address, then lower case. The domain is
    case-insensitive by definition; the local part is lower-cased too, as the index keys have
    always been, so keys already claimed stay valid. `str.lower`, not `casefold`: IDNA2008
    tells straße.de from strasse.de, and casefold would merge them."""
    return unicodedata.normalize("NFKC", email).strip().lower()
