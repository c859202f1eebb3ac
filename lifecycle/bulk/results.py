"""The answer to a bulk registration (K-1): each row's result, written onto the uploaded sheet.

`write_results` answers the uploaded workbook with three columns after the last used
column of its data sheet: 結果/Status, コード/Code, メッセージ/Message (Japanese on the
first header row, English on the second). Each result's row gets its status in Japanese
with the machine value in parentheses ("エラー (refused)"), its code and its message (the
English detail, when given, on a second line); refused and duplicate rows are filled light
red, registered and renewed ones light green, the others left plain. Only those cells are
written: the user's cells, styles, validation and other sheets stay as openpyxl read them.
A result sheet uploaded again is recognised: its result columns are reused, not repeated.

The workbook is loaded with data_only=True: a formula is answered with the value that was
read and registered, so the answer shows exactly what each status is about (and a result
sheet uploaded again reads the same). openpyxl does not keep charts and images it cannot
read; the answer is a report, the user's own file is left untouched.

`results_from_reading` settles the rows that reading alone decides (empty rows, rows with a
problem, rows repeated within the sheet); every other row is for a registration command,
whose answer becomes a RowResult with `RowResult.refused(row, error)` or a success status.
"""

from __future__ import annotations

from collections.abc import Sequence
from copy import copy
from dataclasses import dataclass
from enum import StrEnum
from io import BytesIO
from typing import Any

from openpyxl import load_workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from lifecycle.bulk.columns import HEADER_SEARCH_COLUMNS, HEADER_SEARCH_ROWS, RESULT_HEADERS, TEMPLATE_SHEET, header_key
from lifecycle.bulk.container import MAX_BYTES, check_upload, worksheet_parts
from lifecycle.bulk.headers import HeaderMatch, HeaderMiss, find_headers, wrong_headers
from lifecycle.bulk.patching import Cell, Layout, Style, patched_results
from lifecycle.bulk.reading import locate_data_sheet
from lifecycle.bulk.rows import ParsedSheet, find_duplicates
from lifecycle.bulk.template import ENGLISH_FILL, HEADER_BORDER, HEADER_FILL
from lifecycle.domain.errors import BulkDuplicateRow, BulkNotXlsx, DomainError


class RowStatus(StrEnum):
    REGISTERED = "registered"
    RENEWED = "renewed"
    ALREADY_REGISTERED = "already_registered"  # the same row was registered by an earlier upload
    REFUSED = "refused"
    DUPLICATE_IN_SHEET = "duplicate_in_sheet"
    EMPTY = "empty"


STATUS_JA: dict[RowStatus, str] = {
    RowStatus.REGISTERED: "登録済み",
    RowStatus.RENEWED: "更新済み",
    RowStatus.ALREADY_REGISTERED: "既に登録済み",
    RowStatus.REFUSED: "エラー",
    RowStatus.DUPLICATE_IN_SHEET: "シート内で重複",
    RowStatus.EMPTY: "空行",
}

BAD_FILL = PatternFill(fill_type="solid", start_color="FFFFC7CE", end_color="FFFFC7CE")
GOOD_FILL = PatternFill(fill_type="solid", start_color="FFC6EFCE", end_color="FFC6EFCE")
NO_FILL = PatternFill(fill_type=None)
# Status and code on one line each, the message wrapped.
_ALIGNMENTS = (Alignment(vertical="top"), Alignment(vertical="top"), Alignment(wrap_text=True, vertical="top"))
MAX_COLUMN = 16_384  # XFD, the last column of a sheet
_TEXT_FORMAT = 49  # the built-in number format "@"
_FILL_OF = {
    RowStatus.REFUSED: BAD_FILL,
    RowStatus.DUPLICATE_IN_SHEET: BAD_FILL,
    RowStatus.REGISTERED: GOOD_FILL,
    RowStatus.RENEWED: GOOD_FILL,
}


_FILL_NUMBER = {status: 1 if fill is GOOD_FILL else 2 for status, fill in _FILL_OF.items()}  # NO_FILL 0


@dataclass(frozen=True)
class RowResult:
    row: int  # 1-based row number in the sheet, as SheetRow.row
    status: RowStatus
    code: str | None = None
    message_ja: str | None = None
    detail: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", RowStatus(self.status))  # a plain string is checked too

    @classmethod
    def refused(cls, row: int, error: DomainError) -> RowResult:
        return cls(row, RowStatus.REFUSED, error.code, error.message_ja, error.detail)

    @property
    def status_display(self) -> str:
        return f"{STATUS_JA[self.status]} ({self.status.value})"


def results_from_reading(parsed: ParsedSheet) -> dict[int, RowResult]:
    """Row number -> result, for the rows that need no command: empty, with a problem, repeated."""
    settled: dict[int, RowResult] = {}
    for row in parsed.rows:
        if row.is_empty:
            settled[row.row] = RowResult(row.row, RowStatus.EMPTY)
        elif row.problem is not None:
            settled[row.row] = RowResult(row.row, RowStatus.REFUSED, *row.problem)
    for number, first in find_duplicates(parsed.rows).items():
        duplicate = BulkDuplicateRow(f"Row {number} asks for the same as row {first}.", first_row=first)
        settled[number] = RowResult(
            number, RowStatus.DUPLICATE_IN_SHEET, duplicate.code, duplicate.message_ja, duplicate.detail
        )
    return dict(sorted(settled.items()))


def write_results(original: bytes, results: Sequence[RowResult], *, max_bytes: int = MAX_BYTES) -> bytes:
    """The uploaded workbook with each row's result added; see the module docstring."""
    checked = check_upload(original, max_bytes=max_bytes)  # the same guards as reading: never trust stored bytes
    patched = _written_into_xml(original, results, checked.members_with_merges)
    if patched is not None:
        return patched
    try:
        workbook = load_workbook(BytesIO(original), data_only=True, keep_links=False)
    except (DomainError, MemoryError):
        raise
    except Exception as error:  # noqa: BLE001 - as in read_sheet
        raise BulkNotXlsx(f"openpyxl cannot open the workbook: {type(error).__name__}: {error}") from None
    sheet, header = _data_sheet(workbook.worksheets)
    first = header.result_column or _after_used_range(sheet, header)
    _write_headers(sheet, header, first)
    if header.result_column is not None:  # an earlier answer: clear it before writing this one
        for row in range(header.first_data_row, sheet.max_row + 1):
            for column in range(first, first + len(RESULT_HEADERS)):
                cell = sheet.cell(row=row, column=column)
                cell.value, cell.fill = None, NO_FILL
    # Setting a style on a cell looks it up in the workbook's style tables (hashing each style
    # object): most of the time a 10,000-row answer took. Each (fill, column) combination is
    # set once and its resolved style ids copied to the other cells, as openpyxl's own
    # worksheet copy does.
    styles: dict[tuple[int, int], Any] = {}
    for result in results:
        if result.row < header.first_data_row:
            raise ValueError(f"Row {result.row} is a header row; data start at row {header.first_data_row}.")
        message = "\n".join(part for part in (result.message_ja, result.detail) if part) or None
        fill = _FILL_OF.get(result.status, NO_FILL)
        for offset, value in enumerate((result.status_display, result.code, message)):
            cell = sheet.cell(row=result.row, column=first + offset, value=value)
            style = styles.get((id(fill), offset))
            if style is None:
                cell.fill = fill
                cell.number_format = "@"
                cell.alignment = _ALIGNMENTS[offset]
                styles[(id(fill), offset)] = copy(cell._style)
            else:
                cell._style = copy(style)
    out = BytesIO()
    workbook.save(out)
    return out.getvalue()


def _written_into_xml(original: bytes, results: Sequence[RowResult], with_merges: frozenset[str]) -> bytes | None:
    """The answer written into the package's XML (patching.py), or None where that does not
    apply; the same cells, values and styles as the openpyxl way below."""
    try:
        workbook = load_workbook(BytesIO(original), read_only=True, data_only=True, keep_links=False)
    except Exception:  # noqa: BLE001 - the openpyxl way reports it
        return None
    try:
        title, header, merges, _ = locate_data_sheet(original, workbook, with_merges)
    except Exception:  # noqa: BLE001 - as above
        return None
    finally:
        workbook.close()
    part = worksheet_parts(original).get(title)
    if part is None:
        return None
    for result in results:
        if result.row < header.first_data_row:
            raise ValueError(f"Row {result.row} is a header row; data start at row {header.first_data_row}.")

    def layout(used: int) -> Layout:
        last = max([used, header.last_column, *(m.max_col for m in merges)])
        first = header.result_column or (
            header.last_column + 1 if last + len(RESULT_HEADERS) > MAX_COLUMN else last + 1)
        center = Alignment(horizontal="center", vertical="center")
        styles: list[Style] = [(fill, Font(bold=fill is HEADER_FILL), HEADER_BORDER, center, 0)
                               for fill in (HEADER_FILL, ENGLISH_FILL)]
        for fill in (NO_FILL, GOOD_FILL, BAD_FILL):  # style 2 + 3 * fill + offset
            styles += [(fill, None, None, alignment, _TEXT_FORMAT) for alignment in _ALIGNMENTS]
        rows: dict[int, list[Cell]] = {}
        for offset, (ja, en, _) in enumerate(RESULT_HEADERS):
            labels = ([(header.header_rows[0], f"{ja} / {en}", 0)] if len(header.header_rows) == 1 else
                      [(header.header_rows[0], ja, 0), (header.header_rows[1], en, 1)])
            for row, text, style in labels:
                rows.setdefault(row, []).append(Cell(first + offset, text, style))
        for result in results:
            message = "\n".join(part for part in (result.message_ja, result.detail) if part) or None
            base = 2 + 3 * _FILL_NUMBER.get(result.status, 0)
            rows[result.row] = [
                Cell(first + offset, value, base + offset)
                for offset, value in enumerate((result.status_display, result.code, message))
            ]
        widths = {first + offset: width for offset, (_, _, width) in enumerate(RESULT_HEADERS)}
        clear = (first, first + len(RESULT_HEADERS) - 1, header.first_data_row if header.result_column else 1 << 30)
        return rows, clear, widths, styles

    return patched_results(original, part, layout)


def _data_sheet(sheets: Sequence[Worksheet]) -> tuple[Worksheet, HeaderMatch]:
    """The sheet read_sheet reads, found the same way (merged header cells filled in)."""
    template_key = header_key(TEMPLATE_SHEET)
    misses: list[HeaderMiss] = []
    for sheet in sorted(sheets, key=lambda ws: header_key(ws.title) != template_key):
        # Bounded by the sheet's own size: in full mode iter_rows creates the cells it visits.
        first = [
            list(values)
            for values in sheet.iter_rows(
                min_row=1,
                max_row=min(HEADER_SEARCH_ROWS, sheet.max_row),
                max_col=min(HEADER_SEARCH_COLUMNS, sheet.max_column),
                values_only=True,
            )
        ]
        width = len(first[0]) if first else 0
        for merged in sheet.merged_cells.ranges:
            if merged.min_row <= len(first) and merged.min_col <= width:
                value = first[merged.min_row - 1][merged.min_col - 1]
                for r in range(merged.min_row, min(merged.max_row, len(first)) + 1):
                    for c in range(merged.min_col, min(merged.max_col, width) + 1):
                        first[r - 1][c - 1] = value
        found = find_headers(sheet.title, first)
        if isinstance(found, HeaderMatch):
            return sheet, found
        misses.append(found)
    raise wrong_headers(misses)


def _after_used_range(sheet: Worksheet, header: HeaderMatch) -> int:
    """The first column after the sheet's used range, as Excel counts it (formatted cells too).

    A stray cell at the far right would leave no room: the results then follow the last
    header, as the reader ignores every column without a header anyway.
    """
    last: int = max([sheet.max_column, header.last_column, *(m.max_col for m in sheet.merged_cells.ranges)])
    if last + len(RESULT_HEADERS) > MAX_COLUMN:
        return header.last_column + 1
    return last + 1


def _write_headers(sheet: Worksheet, header: HeaderMatch, first: int) -> None:
    for offset, (ja, en, width) in enumerate(RESULT_HEADERS):
        column = first + offset
        sheet.column_dimensions[get_column_letter(column)].width = width
        if len(header.header_rows) == 1:
            labels = [(header.header_rows[0], f"{ja} / {en}", HEADER_FILL)]
        else:
            labels = [(header.header_rows[0], ja, HEADER_FILL), (header.header_rows[1], en, ENGLISH_FILL)]
        for row, text, fill in labels:
            cell = sheet.cell(row=row, column=column, value=text)
            cell.font, cell.fill, cell.border = Font(bold=fill is HEADER_FILL), fill, HEADER_BORDER
            cell.alignment = Alignment(horizontal="center", vertical="center")
