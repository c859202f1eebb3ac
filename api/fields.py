"""The types of request fields: what the door lets in (issue 11).

Every text field is one line of printable text: NUL and lone surrogates (which PostgreSQL,
or UTF-8 itself, cannot store), line breaks, tabs and every other control character are
refused with `invalid_text`, which the problem handler answers as 422 INVALID_TEXT. No field
is multi-line, and a line break in a name would become a new line in a mail. Each field has
a length cap; booleans, integers and dates take only their own JSON type; dates and
instants lie within lifecycle.domain.limits (else `date_out_of_range`, 422
DATE_OUT_OF_RANGE). The same types serve bodies, query and path parameters.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date, datetime
from typing import Annotated, Any, Literal

from email_validator import SPECIAL_USE_DOMAIN_NAMES
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    EmailStr,
    Field,
    GetJsonSchemaHandler,
    Strict,
    StringConstraints,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

from lifecycle.domain.limits import EARLIEST_DATE, LATEST_DATE, date_in_range

# Error types the problem handler turns into their own codes.
INVALID_TEXT = "invalid_text"
DATE_OUT_OF_RANGE = "date_out_of_range"

# C0 (with TAB, LF, CR), DEL, C1, lone surrogates, the Unicode line and paragraph separators,
# and the bidirectional overrides and isolates (they reorder how a name is displayed).
# Ideographic spaces, private-use characters (外字) and zero-width joiners stay allowed.
_FORBIDDEN = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# The same rule for the OpenAPI document, as an ECMA-262 pattern. Lone surrogates are left
# out: they are no Unicode text at all (I-JSON, RFC 7493, forbids them), and generators read
# a class holding them as no class.
_REFUSED = r"\x00-\x1F\x7F-\x9F\u2028\u2029\u202A-\u202E\u2066-\u2069"
ONE_LINE_PATTERN = rf"^[^{_REFUSED}]*$"
# Spaces around a value are trimmed (Unicode White_Space, as pydantic trims): a field that
# may not be empty needs one character besides them.
_TRIMMED = r" \xA0\u1680\u2000-\u200A\u202F\u205F\u3000"
NOT_BLANK_PATTERN = rf"^[^{_REFUSED}]*[^{_REFUSED}{_TRIMMED}][^{_REFUSED}]*$"


class Documented:
    """Adds keywords to a type's JSON schema only, for rules its validators enforce with
    their own error types (INVALID_TEXT, DATE_OUT_OF_RANGE): the document then says what
    is accepted, and the answers keep their codes."""

    def __init__(self, **keywords: Any) -> None:
        self.keywords = keywords

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {**handler(schema), **self.keywords}


def check_single_line(text: Any) -> Any:
    """Refuses a forbidden character; anything but a string is left to the type's own check."""
    if not isinstance(text, str):
        return text
    found = _FORBIDDEN.search(text)
    if found is not None:
        raise PydanticCustomError(
            INVALID_TEXT,
            "The character U+{character} is not accepted in this field",
            {"character": f"{ord(found.group()):04X}"},
        )
    return text


def SingleLine(max_length: int, *, min_length: int = 1) -> Any:  # noqa: N802 - a type
    """One line of text of `min_length` to `max_length` characters (after trimming spaces).
    The characters are checked first, so that a NUL in a short postal code is INVALID_TEXT
    rather than "too short"; the body's size limit bounds what the check reads."""
    return Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=min_length, max_length=max_length),
        BeforeValidator(check_single_line),
        Documented(pattern=ONE_LINE_PATTERN if min_length == 0 else NOT_BLANK_PATTERN),
    ]


EMAIL_MAX_LENGTH = 254  # RFC 5321's path limit, less the angle brackets


def _email_text(value: Any) -> Any:
    """Before the e-mail syntax check: one line, NFKC (full-width ａ＠ｂ．ｊｐ is a@b.jp), trimmed."""
    if not isinstance(value, str):
        return value  # EmailStr refuses it as a non-string
    if len(value) > EMAIL_MAX_LENGTH:
        raise PydanticCustomError(
            "string_too_long", "String should have at most {max_length} characters", {"max_length": EMAIL_MAX_LENGTH}
        )
    return unicodedata.normalize("NFKC", check_single_line(value)).strip()


def _any_case(name: str) -> str:
    return "".join(f"[{c}{c.upper()}]" if c.isalpha() else re.escape(c) for c in name)


# The e-mail validator (email_validator, through pydantic) refuses the special-use and
# reserved domains (RFC 6761: test, localhost, invalid…): no mail is delivered there.
_EMAIL = Documented(
    maxLength=EMAIL_MAX_LENGTH,
    **{"not": {"pattern": "@(?:.*\\.)?(?:" + "|".join(map(_any_case, SPECIAL_USE_DOMAIN_NAMES)) + ")$"}},
    description="Not at a special-use domain (" + ", ".join(SPECIAL_USE_DOMAIN_NAMES) + ").",
)
Email = Annotated[EmailStr, BeforeValidator(_email_text), _EMAIL]
# mail2 of a fault contact may be left empty (S-4).
EmailOrEmpty = Annotated[Annotated[EmailStr, _EMAIL] | Literal[""], BeforeValidator(_email_text)]

StrictBool = Annotated[bool, Strict()]


def _integral_number(value: Any) -> Any:
    """JSON does not tell 1.0 from 1, and JSON Schema calls both an integer: 1.0 is 1. A string,
    a boolean or 1.5 is still refused by the strict integer."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# The domain knows which terms exist (INVALID_TICKET_TERM); the door keeps them small integers.
TermYears = Annotated[int, Strict(), Field(ge=1, le=99), BeforeValidator(_integral_number)]

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ISO_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}.*", re.DOTALL)


def _date_text(value: Any) -> Any:
    """Only an ISO `YYYY-MM-DD` string (or a date from Python callers): not a number of
    seconds since 1970, not a datetime."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        return value
    raise PydanticCustomError("iso_date_type", "Input should be an ISO 8601 date string (YYYY-MM-DD)")


def _instant_text(value: Any) -> Any:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and len(value) <= 40 and _ISO_INSTANT.fullmatch(value):
        return value
    raise PydanticCustomError("iso_datetime_type", "Input should be an ISO 8601 date and time string")


def _out_of_range() -> PydanticCustomError:
    return PydanticCustomError(
        DATE_OUT_OF_RANGE,
        "Dates from {earliest} to {latest} are accepted",
        {"earliest": EARLIEST_DATE.isoformat(), "latest": LATEST_DATE.isoformat()},
    )


def _date_in_range(day: date) -> date:
    if not date_in_range(day):
        raise _out_of_range()
    return day


def _instant_in_range(instant: datetime) -> datetime:
    # Judged by its own calendar date, before any conversion: 9999-12-31T23:00-10:00 is past
    # datetime.max once in UTC.
    if not date_in_range(instant.date()):
        raise _out_of_range()
    return instant


# The accepted range (lifecycle.domain.limits) for the document, as the years a date or an
# instant begins with; the day itself is checked as a date.
_IN_RANGE_YEARS = {"pattern": "^(?:20[0-9]{2}|2100)-", "description": "From 2000-01-01 to 2100-12-31."}
assert (EARLIEST_DATE, LATEST_DATE) == (date(2000, 1, 1), date(2100, 12, 31)), "say the new range in _IN_RANGE_YEARS"

IsoDate = Annotated[date, BeforeValidator(_date_text), AfterValidator(_date_in_range), Documented(**_IN_RANGE_YEARS)]
# An instant with its offset; one without is read as Asia/Tokyo time by the service.
Instant = Annotated[
    datetime, BeforeValidator(_instant_text), AfterValidator(_instant_in_range), Documented(**_IN_RANGE_YEARS)
]
AwareInstant = Annotated[
    AwareDatetime, BeforeValidator(_instant_text), AfterValidator(_instant_in_range), Documented(**_IN_RANGE_YEARS)
]

# --- the fields of the HTTP contract, one cap each ------------------------------------------

SerialText = SingleLine(64)  # as printed: `S/N:` + up to 16 alphanumerics, a space, a revision
TicketIdText = SingleLine(32)  # 8 digits, perhaps full-width or with separators
VerificationCode = SingleLine(32)
CodeNo = SingleLine(32)  # `No.:12345-01`
ModelName = SingleLine(100)
ServiceName = SingleLine(100)
PersonName = SingleLine(100)
CompanyName = SingleLine(200)
SiteName = SingleLine(200)  # the bulk sheet's site cell holds 200 characters too
Street = SingleLine(200)
Building = SingleLine(200, min_length=0)
Prefecture = SingleLine(10, min_length=0)  # empty or omitted: filled from the postal code
City = SingleLine(50, min_length=0)
PostalCode = SingleLine(10, min_length=7)  # 7 digits, perhaps with a hyphen or 〒
Phone = SingleLine(30)
ContractNumber = SingleLine(20)  # SU + 8 digits
Token = SingleLine(500)
InquiryEmail = SingleLine(EMAIL_MAX_LENGTH)  # the caller's address, compared, not validated
# The domain's WEAK_PASSWORD explains a short one; the door refuses only what cannot be stored.
Password = SingleLine(200, min_length=0)
Reason = SingleLine(500, min_length=0)
EventTypeName = SingleLine(64)
PostalCodeText = SingleLine(20)

# Lists in bodies and queries are capped too.
MAX_LIST_ITEMS = 100
# Dashboards and the history page through at most this far; beyond it a filter is needed.
MAX_OFFSET = 1_000_000
# Log positions are PostgreSQL bigints.
MAX_POSITION = 2**63 - 1
