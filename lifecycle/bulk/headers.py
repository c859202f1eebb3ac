"""Finding the header rows of a bulk-registration sheet (K-1), for the reader and the writer.

The header row is the first row, within the first HEADER_SEARCH_ROWS, that names every
required template column (by its Japanese or English text, see columns.header_key); the
columns may come in any order and other columns may stand between them. The row below
is a second header row when the template columns it fills all hold header texts too,
as the template's English row does; data start below the last header row.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from lifecycle.bulk.columns import COLUMN_OF_FIELD, COLUMNS, column_for_header, result_column_for_header
from lifecycle.domain.errors import BulkWrongHeaders


@dataclass(frozen=True)
class HeaderMatch:
    header_rows: tuple[int, ...]  # 1-based
    columns: dict[str, int]  # SheetRow field -> 1-based column
    extra_columns: dict[int, str]  # 1-based column -> its header text, for columns the template lacks
    result_column: int | None  # first of the three result columns of an earlier run, if present
    last_column: int  # the last column that has a header

    @property
    def first_data_row(self) -> int:
        return self.header_rows[-1] + 1


@dataclass(frozen=True)
class HeaderMiss:
    """The best candidate row of a sheet that had no complete header row."""

    sheet: str
    row: int | None
    found: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    repeated: tuple[str, ...] = ()


def _text(value: Any) -> str:
    return "" if value is None else " ".join(unicodedata.normalize("NFKC", str(value)).split())


def _cell(values: Sequence[Any], column: int) -> str:
    return _text(values[column - 1]) if column <= len(values) else ""


def find_headers(sheet: str, first_rows: Sequence[Sequence[Any]]) -> HeaderMatch | HeaderMiss:
    """`first_rows[i]` holds the values of row i + 1 (merged ranges filled in)."""
    best: HeaderMiss = HeaderMiss(sheet, None, missing=tuple(c.label for c in COLUMNS if c.required_header))
    for index, values in enumerate(first_rows):
        fields: dict[str, list[int]] = {}
        for column, value in enumerate(values, start=1):
            matched = column_for_header(_text(value))
            if matched is not None:
                fields.setdefault(matched.field, []).append(column)
        missing = tuple(c.label for c in COLUMNS if c.required_header and c.field not in fields)
        repeated = tuple(COLUMN_OF_FIELD[f].label for f, at in fields.items() if len(at) > 1)
        if not missing and not repeated:
            return _match(index + 1, first_rows, {f: at[0] for f, at in fields.items()})
        if fields and len(fields) > len(best.found):
            found = tuple(COLUMN_OF_FIELD[f].label for f in fields)
            best = HeaderMiss(sheet, index + 1, found, missing, repeated)
    return best


def _match(row: int, first_rows: Sequence[Sequence[Any]], columns: dict[str, int]) -> HeaderMatch:
    header_rows: tuple[int, ...] = (row,)
    below = first_rows[row] if row < len(first_rows) else ()
    below_texts = [_cell(below, c) for c in columns.values()]
    if any(below_texts) and all(column_for_header(t) is not None for t in below_texts if t):
        header_rows = (row, row + 1)

    extra: dict[int, str] = {}
    results: dict[int, int] = {}
    last = max(columns.values())
    rows = [first_rows[r - 1] for r in header_rows]
    width = max(len(values) for values in rows)
    for column in range(1, width + 1):
        text = next((t for t in (_cell(values, column) for values in rows) if t), "")
        if not text:
            continue
        last = max(last, column)
        if column in columns.values():
            continue
        result_index = result_column_for_header(text)
        if result_index is not None:
            results[column] = result_index
        else:
            extra[column] = text
    result_column = next(
        (c for c, i in results.items() if i == 0 and results.get(c + 1) == 1 and results.get(c + 2) == 2), None
    )
    if result_column is None:  # lone result-like headers are ordinary extra columns
        for column in results:
            extra[column] = next(t for t in (_cell(values, column) for values in rows) if t)
        extra = dict(sorted(extra.items()))
    return HeaderMatch(header_rows, columns, extra, result_column, last)


def wrong_headers(misses: Sequence[HeaderMiss]) -> BulkWrongHeaders:
    """One error for a workbook none of whose sheets has the headers, naming the closest."""
    expected = [c.label for c in COLUMNS if c.required_header]
    expected_ja = "・".join(c.ja for c in COLUMNS)
    closest = max(misses, key=lambda m: len(m.found), default=None)
    if closest is None or closest.row is None:
        where = "No sheet has a header row naming them in its first rows."
        missing_ja = ""
    else:
        where = f"Sheet {closest.sheet!r}, row {closest.row}, names {', '.join(closest.found)}."
        if closest.missing:
            where += f" Missing: {', '.join(closest.missing)}."
        if closest.repeated:
            where += f" Named twice: {', '.join(closest.repeated)}."
        lacking = [label.split(" (")[0] for label in closest.missing or closest.repeated]
        problem = "がありません" if closest.missing else "が重複しています"
        missing_ja = f"（「{closest.sheet}」シート{closest.row}行目：「{'」「'.join(lacking)}」{problem}）"
    return BulkWrongHeaders(
        f"Expected the columns {', '.join(expected)} (option serial numbers may be left out), "
        f"in any order, in Japanese or English. {where}",
        expected=expected,
        expected_ja=expected_ja,
        missing_ja=missing_ja,
        missing=list(closest.missing) if closest else expected,
    )
