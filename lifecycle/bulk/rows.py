"""What reading a bulk-registration sheet gives (K-1): the sheet, its rows, their problems.

A SheetRow holds the values of one row after normalisation (NFKC, spaces trimmed, serials
as T-2 reads them) and at most one `problem` found while reading. A field that was refused
reads as empty, so a refused value can never reach a command by mistake; check `problem`
(and `is_empty`) before registering a row.

`content_key` names a row by what it asks for, never by the file it came in: the same
sheet saved again by Excel, uploaded twice, or a row copied within one sheet, give the
same key. The key covers the fields that the row's kind uses (T-1, B-1, R-1), the
verification code included: a row whose code was wrong and is corrected on a later upload
is a new request, not a repeat of the refused one. A renewal's site is ignored, as the
renewal names its unit by serial. The key is a SHA-256 digest, so the verification code
does not appear in clear wherever the key is stored.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

from lifecycle.bulk.columns import Kind
from lifecycle.domain.errors import DomainError


class RowProblem(NamedTuple):
    """A row-level refusal found while reading: (code, message_ja, detail)."""

    code: str
    message_ja: str
    detail: str

    @classmethod
    def of(cls, error: DomainError) -> RowProblem:
        return cls(error.code, error.message_ja, error.detail)


@dataclass(frozen=True)
class SheetRow:
    row: int  # 1-based row number in the sheet
    kind: Kind | None  # None when the row is empty or its kind is missing or unknown
    site: str = ""  # a site name or id, as typed (NFKC, spaces collapsed); ignored for renewals
    ticket_id: str = ""
    verification_code: str = ""
    serial: str = ""  # normalised (T-2)
    option_serials: tuple[str, ...] = ()  # normalised, in the order typed, without repeats
    problem: RowProblem | None = None
    is_empty: bool = False  # no value in any template column
    extras: tuple[tuple[str, str], ...] = ()  # (header, value) of extra columns, for display only

    @cached_property  # asked for by duplicates, claims and decisions alike
    def content_key(self) -> str:
        if self.kind == "new":
            content: list[object] = [
                self.kind, self.site.casefold(), self.ticket_id, self.verification_code, self.serial,
            ]
        elif self.kind == "bundle":
            content = [self.kind, self.site.casefold(), self.serial, sorted(self.option_serials)]
        elif self.kind == "renewal":
            content = [self.kind, self.ticket_id, self.verification_code, self.serial]
        else:
            content = [
                None, self.site.casefold(), self.ticket_id, self.verification_code, self.serial,
                sorted(self.option_serials),
            ]
        canonical = json.dumps(content, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def rows_to_json(rows: Iterable[SheetRow]) -> str:
    """Rows to register, as read (no problem, not empty), kept with a job so that its worker
    does not read the sheet again; `rows_from_json` gives them back with every field a
    registration reads (not `extras`, which only the result sheet shows, from the file)."""
    return json.dumps(
        [[r.row, r.kind, r.site, r.ticket_id, r.verification_code, r.serial, list(r.option_serials)] for r in rows],
        ensure_ascii=False, separators=(",", ":"),
    )


def rows_from_json(text: str) -> list[SheetRow]:
    return [
        SheetRow(row=row, kind=kind, site=site, ticket_id=ticket_id, verification_code=code, serial=serial,
                 option_serials=tuple(options))
        for row, kind, site, ticket_id, code, serial, options in json.loads(text)
    ]


@dataclass(frozen=True)
class ParsedSheet:
    sheet_name: str
    header_rows: tuple[int, ...]  # 1-based: (1, 2) for the template's Japanese and English rows
    columns: Mapping[str, int]  # SheetRow field -> 1-based column; option_serials may be absent
    extra_columns: Mapping[int, str]  # 1-based column -> header text of columns the template lacks
    rows: tuple[SheetRow, ...]  # every row from the first data row to the last non-empty one

    @property
    def first_data_row(self) -> int:
        return self.header_rows[-1] + 1


def find_duplicates(rows: Iterable[SheetRow]) -> dict[int, int]:
    """Row number of each repeated row -> the first row with the same content_key.

    Empty rows and rows with a problem are left out: their own problem is what to report.
    """
    first: dict[str, int] = {}
    duplicates: dict[int, int] = {}
    for row in rows:
        if row.is_empty or row.problem is not None:
            continue
        key = row.content_key
        if key in first:
            duplicates[row.row] = first[key]
        else:
            first[key] = row.row
    return duplicates
