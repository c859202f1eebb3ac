"""Reading an uploaded bulk-registration sheet (K-1): a ParsedSheet, or one error.

`read_sheet` first lets container.check_upload refuse an unsafe or foreign file, then
opens the workbook with openpyxl in read-only mode (cells are streamed, so memory stays
small whatever the sheet holds) with data_only=True (a formula gives its cached value).
It takes the sheet named like the template's (一括登録) if that one has the headers, else
the first sheet that has them, and reads every row below the headers. Merged ranges, which
read-only mode does not expose, are read from the sheet's XML part: the value of a range
belongs to every cell of it.

Nothing is half-read: it returns a ParsedSheet for the whole sheet, or raises one
DomainError (BULK_FILE_TOO_LARGE, BULK_NOT_XLSX, BULK_FILE_ENCRYPTED, BULK_UNSAFE_FILE,
BULK_WRONG_HEADERS, BULK_EMPTY, BULK_TOO_MANY_ROWS). A problem in one row never refuses
the sheet: it becomes that row's `problem`, so the valid rows can still be registered.

How cells are read, field by field:
- text: Excel's _xHHHH_ escapes decoded, NFKC (full-width digits and letters to
  half-width), zero-width characters dropped,
  leading and trailing spaces trimmed; control characters (NUL, ESC, a line break inside
  a one-line field, ...) refuse the field; so does text longer than the column allows.
- 種別: 新規 / バンドル / 更新 or new / bundle / renewal, in any width or case.
- チケットID: normalise_ticket_id; a number cell is turned back into text, and when it has
  fewer than 8 digits its leading zeros were lost: the row is refused
  (TICKET_ID_LEADING_ZEROS_LOST), never padded, unless the cell's own number format pads
  it (format "00000000": the digits the user sees are the ones read).
- シリアル番号 and オプションシリアル番号: normalise_serial, as the single commands do (T-2):
  the S/N: label and the revision after the space are dropped. Options are separated by
  commas, 、, semicolons, line breaks or spaces; a 1-3 character word right after a serial
  is its printed revision.
- a number that Excel could not have kept exactly (a fraction, more than 15 digits) or a
  date in one of these text columns refuses the field (BULK_VALUE_CONVERTED); a formula
  error (#N/A, ...) refuses it too (BULK_FORMULA_ERROR).
- extra columns are kept as text for display: dates (Excel dates, or text such as
  2026/04/01) as ISO dates, control characters dropped, long text cut; they never refuse.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from io import BytesIO
from typing import Any

from openpyxl import load_workbook
from openpyxl.utils import get_column_letter
from openpyxl.utils.cell import range_boundaries
from openpyxl.workbook.workbook import Workbook

from lifecycle.bulk.columns import (
    COLUMN_OF_FIELD,
    COLUMNS,
    FIELD_MAX_CHARS,
    HEADER_SEARCH_COLUMNS,
    HEADER_SEARCH_ROWS,
    KIND_JA,
    REQUIRED_FIELDS,
    TEMPLATE_SHEET,
    UNUSED_FIELDS,
    Column,
    Kind,
    header_key,
    kind_of,
)
from lifecycle.bulk.container import MAX_BYTES, check_upload, merged_ranges, worksheet_parts
from lifecycle.bulk.headers import HeaderMatch, HeaderMiss, find_headers, wrong_headers
from lifecycle.bulk.rows import ParsedSheet, RowProblem, SheetRow
from lifecycle.domain.errors import (
    BulkControlCharacters,
    BulkEmpty,
    BulkFieldNotForKind,
    BulkFieldRequired,
    BulkFieldTooLong,
    BulkFormulaError,
    BulkNotXlsx,
    BulkTooManyRows,
    BulkUnknownKind,
    BulkValueConverted,
    DomainError,
    InvalidTicketId,
    TicketIdLeadingZerosLost,
)
from lifecycle.domain.limits import BULK_MAX_ROWS
from lifecycle.domain.serials import normalise_serial, normalise_ticket_id

MAX_ROWS = BULK_MAX_ROWS  # K-1
TICKET_ID_DIGITS = 8
EXACT_DIGITS = 15  # Excel keeps 15 significant digits of a number

_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"))
_LINE_SEPARATORS = "\u2028\u2029\u0085"
_MULTILINE_ALLOWED = "\n\r\t"
_OPTION_SEPARATORS = re.compile(r"[,、;\n\r\t]+")
_LABEL = re.compile(r"\bS\s*/\s*N\s*:?\s*", re.IGNORECASE)  # glue a spaced "S/N :" to its serial
_TEXT_DATE = re.compile(r"(\d{4})\s*[/\-.年]\s*(\d{1,2})\s*[/\-.月]\s*(\d{1,2})\s*日?")
_PADDING_FORMAT = re.compile(r"0+")
_OOXML_ESCAPE = re.compile(r"_x([0-9A-Fa-f]{4})_")

_HINT_NOT_FOR_KIND = {
    "ticket_id": "保守バンドル製品にはチケットID・確認コードはありません。種別をご確認ください。",
    "verification_code": "保守バンドル製品にはチケットID・確認コードはありません。種別をご確認ください。",
    "option_serials": "モジュール・電源ユニット・ライセンスも1製品につき1行で登録してください。",
}


def read_sheet(data: bytes, *, max_rows: int = MAX_ROWS, max_bytes: int = MAX_BYTES) -> ParsedSheet:
    """The rows of an uploaded bulk-registration sheet; raises one DomainError otherwise."""
    checked = check_upload(data, max_bytes=max_bytes)
    try:
        workbook = load_workbook(BytesIO(data), read_only=True, data_only=True, keep_links=False)
    except (DomainError, MemoryError):
        raise
    except Exception as error:  # noqa: BLE001 - any failure to open an upload means the same to its sender
        raise BulkNotXlsx(f"openpyxl cannot open the workbook: {type(error).__name__}: {error}") from None
    try:
        sheet_name, header, merges, sheet = locate_data_sheet(data, workbook, checked.members_with_merges)
        rows = _read_rows(sheet, header, merges, max_rows)
    except (DomainError, MemoryError):
        raise
    except Exception as error:  # noqa: BLE001 - read-only sheets are parsed lazily, while rows are read
        raise BulkNotXlsx(f"The workbook cannot be read: {type(error).__name__}: {error}") from None
    finally:
        workbook.close()
    if all(row.is_empty for row in rows):
        raise BulkEmpty(f"Sheet {sheet_name!r} has no data below its header rows {header.header_rows}.")
    return ParsedSheet(
        sheet_name=sheet_name,
        header_rows=header.header_rows,
        columns=dict(header.columns),
        extra_columns=dict(header.extra_columns),
        rows=tuple(rows),
    )


def normalise_site(text: str) -> str:
    """A site name or id as the sheet gives it: NFKC, zero-width characters dropped, spaces collapsed.

    Compare a site's recorded name through this function too when resolving a row's site.
    """
    return " ".join(unicodedata.normalize("NFKC", text).translate(_ZERO_WIDTH).split())


# --- finding the sheet ------------------------------------------------------------------


@dataclass(frozen=True)
class _Merge:
    min_col: int
    min_row: int
    max_col: int
    max_row: int


def locate_data_sheet(
    data: bytes, workbook: Workbook, with_merges: frozenset[str]
) -> tuple[str, HeaderMatch, list[_Merge], Any]:
    if not workbook.worksheets:  # openpyxl opens a package whose workbook part names no sheet
        raise BulkNotXlsx("The workbook has no worksheets.")
    parts = worksheet_parts(data)
    template_key = header_key(TEMPLATE_SHEET)
    sheets = sorted(workbook.worksheets, key=lambda ws: header_key(ws.title) != template_key)
    misses: list[HeaderMiss] = []
    for sheet in sheets:
        sheet.reset_dimensions()  # some writers record wrong dimensions; read what is there
        first = [
            list(values)
            for values in sheet.iter_rows(
                min_row=1, max_row=HEADER_SEARCH_ROWS, max_col=HEADER_SEARCH_COLUMNS, values_only=True
            )
        ]
        found = find_headers(sheet.title, first)
        if isinstance(found, HeaderMiss):
            misses.append(found)
            continue
        part = parts.get(sheet.title)
        merges = _merges(data, part) if part in with_merges else []
        if merges:  # a header merged over two rows still marks the second as a header row
            _fill_merges(first, merges)
            refound = find_headers(sheet.title, first)
            found = refound if isinstance(refound, HeaderMatch) else found
        return sheet.title, found, merges, sheet
    raise wrong_headers(misses)


def _merges(data: bytes, part: str | None) -> list[_Merge]:
    if part is None:
        return []
    merges = []
    for ref in merged_ranges(data, part):
        min_col, min_row, max_col, max_row = range_boundaries(ref)
        if min_col and min_row and max_col and max_row:  # a whole-row or whole-column ref has no corner
            merges.append(_Merge(min_col, min_row, max_col, max_row))
    return sorted(merges, key=lambda m: (m.min_row, m.min_col))


def _fill_merges(first: list[list[Any]], merges: Sequence[_Merge]) -> None:
    for merge in merges:
        if merge.min_row > len(first) or merge.min_col > HEADER_SEARCH_COLUMNS:
            continue
        value = first[merge.min_row - 1][merge.min_col - 1]
        for r in range(merge.min_row, min(merge.max_row, len(first)) + 1):
            for c in range(merge.min_col, min(merge.max_col, HEADER_SEARCH_COLUMNS) + 1):
                first[r - 1][c - 1] = value


# --- reading the rows -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Cell:
    value: Any = None
    is_error: bool = False
    number_format: str = "General"


_EMPTY = _Cell()


def _cell(source: Any) -> _Cell:
    value = source.value
    if value is None:
        return _EMPTY
    if source.data_type == "e":
        return _Cell(value, is_error=True)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _Cell(value, number_format=source.number_format or "General")
    return _Cell(value)


def _read_rows(sheet: Any, header: HeaderMatch, merges: list[_Merge], max_rows: int) -> list[SheetRow]:
    first = header.first_data_row
    template_columns = list(header.columns.values())
    rows: list[SheetRow] = []
    for number, cells in _rows_with_merges(sheet, first, header.last_column, merges):
        blank = all(_is_blank(cells[c - 1]) for c in template_columns)
        if number - first + 1 > max_rows:
            if blank:
                continue  # a formatted but empty row past the limit is no data
            raise BulkTooManyRows(
                f"Sheet {sheet.title!r} has data in row {number}; at most {max_rows} rows below the headers "
                f"(rows {first}-{first + max_rows - 1}) are accepted.",
                max_rows=max_rows,
            )
        if blank:
            rows.append(SheetRow(row=number, kind=None, is_empty=True, extras=_extras(cells, header)))
        else:
            rows.append(_parse_row(number, cells, header))
    while rows and rows[-1].is_empty:  # rows after the last filled one are not part of the sheet
        rows.pop()
    return rows


def _rows_with_merges(
    sheet: Any, first: int, last_column: int, merges: list[_Merge]
) -> Iterator[tuple[int, list[_Cell]]]:
    """Each row from `first` on, as cells 1..last_column, a merged range's value in all its cells."""
    pending = [m for m in merges if m.max_row >= first and m.min_col <= last_column]  # sorted by min_row
    next_merge = 0
    active: list[_Merge] = []
    origins: dict[_Merge, _Cell] = {}
    for number, source in enumerate(sheet.iter_rows(min_row=first, max_col=last_column), start=first):
        cells = [_cell(c) for c in source] + [_EMPTY] * (last_column - len(source))
        while next_merge < len(pending) and pending[next_merge].min_row <= number:
            merge = pending[next_merge]
            next_merge += 1
            active.append(merge)
            # A range that starts in the header rows gives the data rows no value.
            origins[merge] = cells[merge.min_col - 1] if merge.min_row == number else _EMPTY
        active = [m for m in active if m.max_row >= number]
        for merge in active:
            origin = origins[merge]
            for column in range(merge.min_col, min(merge.max_col, last_column) + 1):
                if (number, column) != (merge.min_row, merge.min_col):
                    cells[column - 1] = origin
        yield number, cells


def _is_blank(cell: _Cell) -> bool:
    value = cell.value
    return value is None or (isinstance(value, str) and not value.translate(_ZERO_WIDTH).strip())


def _parse_row(number: int, cells: list[_Cell], header: HeaderMatch) -> SheetRow:
    values: dict[str, Any] = {}
    problem: RowProblem | None = None
    for column in COLUMNS:
        at = header.columns.get(column.field)
        cell = cells[at - 1] if at is not None else _EMPTY
        where = f"Row {number}, column {get_column_letter(at) if at else '-'} ({column.en})"
        try:
            values[column.field] = _READERS[column.field](cell, column, where)
        except DomainError as error:
            values[column.field] = () if column.field == "option_serials" else ""
            problem = problem or RowProblem.of(error)
    kind: Kind | None = values["kind"] or None
    if problem is None:
        problem = _kind_problem(number, kind, values)
    return SheetRow(
        row=number,
        kind=kind,
        site=values["site"],
        ticket_id=values["ticket_id"],
        verification_code=values["verification_code"],
        serial=values["serial"],
        option_serials=values["option_serials"],
        problem=problem,
        extras=_extras(cells, header),
    )


def _kind_problem(number: int, kind: Kind | None, values: dict[str, Any]) -> RowProblem | None:
    if kind is None:
        return RowProblem.of(BulkUnknownKind(f"Row {number}: the kind (種別) is empty."))
    for field in REQUIRED_FIELDS[kind]:
        if not values[field]:
            column = COLUMN_OF_FIELD[field]
            return RowProblem.of(
                BulkFieldRequired(
                    f"Row {number}: a {kind} row needs {column.en}.", field_ja=column.ja, kind_ja=KIND_JA[kind]
                )
            )
    for field in UNUSED_FIELDS[kind]:
        if values[field]:
            column = COLUMN_OF_FIELD[field]
            return RowProblem.of(
                BulkFieldNotForKind(
                    f"Row {number}: a {kind} row has no {column.en}; leave the column empty or check the kind.",
                    field_ja=column.ja,
                    kind_ja=KIND_JA[kind],
                    hint_ja=_HINT_NOT_FOR_KIND[field],
                )
            )
    return None


# --- one field --------------------------------------------------------------------------


def _clean(text: str, column: Column, where: str, *, multiline: bool = False) -> str:
    if len(text) > column.max_chars * 4:  # refuse before normalising a huge string
        raise BulkFieldTooLong(f"{where}: {len(text)} characters; at most {column.max_chars}.",
                               field_ja=column.ja, limit=column.max_chars)
    text = unicodedata.normalize("NFKC", _unescape(text)).translate(_ZERO_WIDTH).strip()
    for ch in text:
        if multiline and ch in _MULTILINE_ALLOWED:
            continue
        if unicodedata.category(ch) in ("Cc", "Cf") or ch in _LINE_SEPARATORS:
            raise BulkControlCharacters(
                f"{where}: the control character U+{ord(ch):04X} is not accepted.", field_ja=column.ja
            )
    if len(text) > column.max_chars:
        raise BulkFieldTooLong(f"{where}: {len(text)} characters; at most {column.max_chars}.",
                               field_ja=column.ja, limit=column.max_chars)
    return text


def _unescape(text: str) -> str:
    """Excel writes characters XML cannot carry as _xHHHH_ (ESC as _x001B_); openpyxl keeps the escape."""
    return _OOXML_ESCAPE.sub(lambda match: chr(int(match.group(1), 16)), text) if "_x" in text else text


def _exact_digits(cell: _Cell) -> str | None:
    """The digits of a whole number Excel kept exactly, padded as its own format shows it."""
    value = cell.value
    if isinstance(value, float):
        if not value.is_integer():
            return None
        value = int(value)
    if value < 0 or len(str(value)) > EXACT_DIGITS:
        return None
    digits = str(value)
    number_format = cell.number_format.replace('"', "")
    if _PADDING_FORMAT.fullmatch(number_format):
        digits = digits.zfill(len(number_format))
    return digits


def _text_of(cell: _Cell, column: Column, where: str, *, multiline: bool = False) -> str:
    """The text of a cell for a text column; numbers are handled by the caller."""
    value = cell.value
    if value is None:
        return ""
    if cell.is_error:
        raise BulkFormulaError(f"{where}: the formula gives {value}.", field_ja=column.ja, value=str(value))
    if isinstance(value, (datetime, date, time, timedelta)):
        raise BulkValueConverted(f"{where}: Excel turned the value into the date or time {value}.",
                                 field_ja=column.ja)
    if isinstance(value, bool):
        value = "TRUE" if value else "FALSE"
    return _clean(str(value), column, where, multiline=multiline)


def _number_as_text(cell: _Cell, column: Column, where: str) -> str | None:
    if not isinstance(cell.value, (int, float)) or isinstance(cell.value, bool):
        return None
    digits = _exact_digits(cell)
    if digits is None:
        raise BulkValueConverted(f"{where}: the number {cell.value!r} cannot hold what was typed.",
                                 field_ja=column.ja)
    return digits


def _read_kind(cell: _Cell, column: Column, where: str) -> str:
    text = _text_of(cell, column, where) if not isinstance(cell.value, (int, float)) else str(cell.value)
    if not text:
        return ""
    kind = kind_of(text)
    if kind is None:
        raise BulkUnknownKind(f"{where}: {text!r} is not 新規/バンドル/更新 (new/bundle/renewal).")
    return kind


def _read_site(cell: _Cell, column: Column, where: str) -> str:
    if isinstance(cell.value, (int, float)) and not isinstance(cell.value, bool) and not cell.is_error:
        digits = _exact_digits(cell)
        return digits if digits is not None else str(cell.value)  # an id typed as a number
    return normalise_site(_text_of(cell, column, where))


def _read_ticket_id(cell: _Cell, column: Column, where: str) -> str:
    if isinstance(cell.value, (int, float)) and not isinstance(cell.value, bool) and not cell.is_error:
        digits = _exact_digits(cell)
        if digits is None:
            raise InvalidTicketId(f"{where}: the number {cell.value!r} is not an 8-digit ticket ID.")
        if len(digits) < TICKET_ID_DIGITS:
            raise TicketIdLeadingZerosLost(
                f"{where}: Excel stored the ticket ID as the number {digits}, which has lost its leading zeros; "
                "format the cell as text and type the 8 digits.",
                value=digits,
            )
        return digits
    return normalise_ticket_id(_text_of(cell, column, where))


def _read_code(cell: _Cell, column: Column, where: str) -> str:
    digits = _number_as_text(cell, column, where) if not cell.is_error else None
    return digits if digits is not None else _text_of(cell, column, where)


def _serial(text: str, where: str) -> str:
    try:
        return normalise_serial(text)
    except DomainError as error:
        error.detail = f"{where}: {error.detail}"
        raise


def _read_serial(cell: _Cell, column: Column, where: str) -> str:
    digits = _number_as_text(cell, column, where) if not cell.is_error else None
    text = digits if digits is not None else _text_of(cell, column, where)
    return _serial(text, where) if text else ""


def _read_options(cell: _Cell, column: Column, where: str) -> tuple[str, ...]:
    digits = _number_as_text(cell, column, where) if not cell.is_error else None
    text = digits if digits is not None else _text_of(cell, column, where, multiline=True)
    serials: list[str] = []
    for piece in _OPTION_SEPARATORS.split(_LABEL.sub("S/N:", text)):
        words = piece.split()
        i = 0
        while i < len(words):
            serials.append(_serial(words[i], where))
            i += 1
            if i < len(words) and len(words[i]) <= 3 and not words[i].upper().startswith("S/N:"):
                i += 1  # the printed revision after a serial is not part of it
    return tuple(dict.fromkeys(serials))


_READERS = {
    "kind": _read_kind,
    "site": _read_site,
    "ticket_id": _read_ticket_id,
    "verification_code": _read_code,
    "serial": _read_serial,
    "option_serials": _read_options,
}


# --- extra columns ----------------------------------------------------------------------


def _extras(cells: list[_Cell], header: HeaderMatch) -> tuple[tuple[str, str], ...]:
    return tuple((name, _display(cells[column - 1])) for column, name in header.extra_columns.items())


def _display(cell: _Cell) -> str:
    value = cell.value
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time() else value.isoformat()
    if isinstance(value, (date, time)):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    text = unicodedata.normalize("NFKC", _unescape(str(value))).translate(_ZERO_WIDTH)
    text = "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) not in ("Cc", "Cf")).strip()
    if match := _TEXT_DATE.fullmatch(text):
        try:
            return date(*map(int, match.groups())).isoformat()
        except ValueError:
            pass  # not a calendar date: keep the text
    return text[:FIELD_MAX_CHARS]
