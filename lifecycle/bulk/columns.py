"""The columns of the bulk-registration sheet (K-1), shared by the template, the reader
and the result writer so that a header is spelled in one place.

A header is recognised by its Japanese or its English text (or a listed alias), compared
after `header_key`: NFKC (full-width to half-width), case-folded, with spaces, punctuation
and a parenthesised note removed, so 「チケット ＩＤ」, "ticket_id" and "Ticket ID (8 digits)"
all name the ticket-ID column.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Literal

Kind = Literal["new", "bundle", "renewal"]

TEMPLATE_SHEET = "一括登録"
INSTRUCTIONS_SHEET = "記入方法"
HEADER_SEARCH_ROWS = 10  # headers may sit below a title line; not further down than this
HEADER_SEARCH_COLUMNS = 200
FIELD_MAX_CHARS = 200
OPTIONS_MAX_CHARS = 2000  # several option serials share one cell

KIND_JA: dict[Kind, str] = {"new": "新規", "bundle": "バンドル", "renewal": "更新"}
KIND_EN: dict[Kind, str] = {"new": "new", "bundle": "bundle", "renewal": "renewal"}

_NOTE = re.compile(r"\([^)]*\)")
_PUNCTUATION = re.compile(r"[\s_\-./:・*※]+")


def header_key(text: str) -> str:
    """The form in which header texts are compared."""
    folded = unicodedata.normalize("NFKC", text)
    return _PUNCTUATION.sub("", _NOTE.sub("", folded)).casefold()


@dataclass(frozen=True)
class Column:
    """One column of the template: the SheetRow field it fills and how it is shown."""

    field: str
    ja: str
    en: str
    width: float
    text_format: bool  # cells formatted as text ("@"): leading zeros matter
    aliases: tuple[str, ...] = ()
    required_header: bool = True
    max_chars: int = FIELD_MAX_CHARS

    @property
    def keys(self) -> frozenset[str]:
        return frozenset(header_key(label) for label in (self.ja, self.en, *self.aliases))

    @property
    def label(self) -> str:
        return f"{self.ja} ({self.en})"


COLUMNS: tuple[Column, ...] = (
    Column("kind", "種別", "Kind", 12, False, ("区分", "登録種別", "type")),
    Column("site", "設置先", "Site", 26, False, ("設置先拠点", "拠点", "site name", "site id", "site name or id")),
    Column("ticket_id", "チケットID", "Ticket ID", 14, True, ("ticket", "チケット番号")),
    Column("verification_code", "確認コード", "Verification code", 16, True, ("verification",)),
    Column("serial", "シリアル番号", "Serial number", 24, True, ("シリアル", "serial", "serial no", "s/n")),
    # Optional in an uploaded sheet: a sheet of new tickets only may leave it out.
    Column(
        "option_serials", "オプションシリアル番号", "Option serial numbers", 44, True,
        ("オプションシリアル", "オプション", "option serials", "options"),
        required_header=False, max_chars=OPTIONS_MAX_CHARS,
    ),
)
COLUMN_OF_FIELD: dict[str, Column] = {column.field: column for column in COLUMNS}

# The result columns write_results adds; recognised again when a result sheet is uploaded.
RESULT_HEADERS: tuple[tuple[str, str, float], ...] = (
    ("結果", "Status", 24),
    ("コード", "Code", 30),
    ("メッセージ", "Message", 70),
)
RESULT_KEYS: tuple[frozenset[str], ...] = tuple(
    frozenset({header_key(ja), header_key(en), header_key(f"{ja} / {en}")}) for ja, en, _ in RESULT_HEADERS
)  # the last form is the one header write_results gives a sheet that has one header row

# Which fields each kind needs, and which it must leave empty (T-1, B-1, B-2, R-1).
REQUIRED_FIELDS: dict[Kind, tuple[str, ...]] = {
    "new": ("site", "ticket_id", "verification_code", "serial"),
    "bundle": ("site", "serial"),
    "renewal": ("serial", "ticket_id", "verification_code"),
}
UNUSED_FIELDS: dict[Kind, tuple[str, ...]] = {
    "new": ("option_serials",),
    "bundle": ("ticket_id", "verification_code"),
    "renewal": ("option_serials",),
}

_WORDS_OF_KIND: dict[Kind, tuple[str, ...]] = {
    "new": ("新規", "new"),
    "bundle": ("バンドル", "保守バンドル", "bundle"),
    "renewal": ("更新", "renewal", "renew"),
}
_KIND_WORDS: dict[str, Kind] = {header_key(word): kind for kind, words in _WORDS_OF_KIND.items() for word in words}


def column_for_header(text: str) -> Column | None:
    key = header_key(text)
    return next((column for column in COLUMNS if key in column.keys), None) if key else None


def result_column_for_header(text: str) -> int | None:
    """The index (0, 1, 2) of a result column this header names, if any."""
    key = header_key(text)
    return next((i for i, keys in enumerate(RESULT_KEYS) if key in keys), None) if key else None


def kind_of(text: str) -> Kind | None:
    """新規 / バンドル / 更新 or new / bundle / renewal, in any width or case."""
    return _KIND_WORDS.get(header_key(text))
