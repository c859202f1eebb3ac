"""The result sheet written into the uploaded file's XML (K-1's answer, see results.py).

openpyxl loads a whole workbook into cell objects and writes every one back out: for a
10,000-row sheet, seconds of the API's time for three new cells a row. Here the data sheet's
part is edited as text instead: the result cells are added to their rows (inline strings, so
the shared strings stay as they are), the previous answer's cells are dropped, the columns'
widths and the sheet's dimension are set, and the result styles are appended to styles.xml;
every other part of the package is copied as it was (the user's charts and images too).

It covers what spreadsheet programs write: unprefixed SpreadsheetML with a reference on
every row and cell. For anything else `patched_results` answers None and write_results goes
the openpyxl way, which gives the same answer.
"""

from __future__ import annotations

import re
import zipfile
from collections.abc import Callable, Iterable
from io import BytesIO
from typing import NamedTuple
from xml.etree.ElementTree import tostring
from xml.sax.saxutils import escape

from openpyxl.styles import Alignment, Border, Font, PatternFill
from openpyxl.utils import column_index_from_string, get_column_letter

_ROW = re.compile(r"<row\b([^>]*?)(/>|>(.*?)</row>)", re.S)
_CELL = re.compile(r"<c\b([^>]*?)(?:/>|>.*?</c>)", re.S)
_REF = re.compile(r'\br="([A-Z]{1,3})(\d+)"')
_ROW_NUMBER = re.compile(r'\br="(\d+)"')
_SPANS = re.compile(r'\s+spans="[^"]*"')
_NUMBER_FORMAT_TEXT = 49  # the built-in "@"


Style = tuple[PatternFill, Font | None, Border | None, Alignment, int]  # fill, font, border, alignment, number format


class Cell(NamedTuple):
    """A result cell to write: its value and its style, an index into the layout's styles
    (openpyxl's style objects hash slowly, so cells name them by number)."""

    column: int
    value: str | None
    style: int


Layout = tuple[dict[int, list[Cell]], tuple[int, int, int], dict[int, float], list[Style]]
_USED_COLUMN = re.compile(r'<c\b[^>]*?\br="([A-Z]{1,3})\d+"')


def patched_results(original: bytes, part: str, layout: Callable[[int], Layout]) -> bytes | None:
    """The package with result cells written into the sheet `part`. `layout(last used column)`
    answers (row number -> its result cells, (first, last, from_row): the columns whose cells
    are dropped from that row down first, column -> width, the cells' styles); None if the sheet or the styles
    are not in the form this handles."""
    with zipfile.ZipFile(BytesIO(original)) as archive:
        names = archive.namelist()
        styles_part = next((n for n in names if n.lower() == "xl/styles.xml"), None)
        if styles_part is None or part not in names:
            return None
        sheet = archive.read(part).decode("utf-8")
        styles = archive.read(styles_part).decode("utf-8")
        used = max((column_index_from_string(c) for c in set(_USED_COLUMN.findall(sheet))), default=0)
        rows, clear, widths, wanted = layout(used)
        patched_styles = _Styles.patch(styles, wanted)
        if patched_styles is None:
            return None
        styles, style_ids = patched_styles
        sheet = _patch_sheet(sheet, rows, clear, widths, style_ids)
        if sheet is None:
            return None
        out = BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as written:
            for info in archive.infolist():
                if info.filename == part:
                    written.writestr(info, sheet.encode("utf-8"), zipfile.ZIP_DEFLATED)
                elif info.filename == styles_part:
                    written.writestr(info, styles.encode("utf-8"), zipfile.ZIP_DEFLATED)
                else:
                    written.writestr(info, archive.read(info.filename), zipfile.ZIP_DEFLATED)
    return out.getvalue()


def _cell_xml(ref: str, cell: Cell, style_id: int) -> str:
    if cell.value is None:
        return f'<c r="{ref}" s="{style_id}"/>'
    return f'<c r="{ref}" s="{style_id}" t="inlineStr"><is><t xml:space="preserve">{escape(cell.value)}</t></is></c>'


def _patch_sheet(
    sheet: str, rows: dict[int, list[Cell]], clear: tuple[int, int, int], widths: dict[int, float],
    style_ids: list[int],
) -> str | None:
    start, end = sheet.find("<sheetData"), sheet.find("</sheetData>")
    if start < 0 or end < 0 or "<row" in sheet[:start]:
        return None  # an empty <sheetData/>, or a prefixed namespace
    body_start = sheet.index(">", start) + 1
    body = sheet[body_start:end]
    low, high, from_row = clear
    replaced = {number: {c.column for c in cells} for number, cells in rows.items()}
    pending = sorted(rows)
    out: list[str] = []
    last_row, max_column = 0, 0
    position = 0
    for match in _ROW.finditer(body):
        if body[position:match.start()].strip():
            return None  # something between rows this does not know
        position = match.end()
        attributes, inner = match.group(1), match.group(3) or ""
        number_match = _ROW_NUMBER.search(attributes)
        if number_match is None:
            return None
        number = int(number_match.group(1))
        if number <= last_row:
            return None
        while pending and pending[0] < number:  # result rows the sheet has no element for
            out.append(_new_row(pending.pop(0), rows, style_ids))
        cells: list[tuple[int, str]] = []
        for cell in _CELL.finditer(inner):
            ref = _REF.search(cell.group(1))
            if ref is None or int(ref.group(2)) != number:
                return None
            column = column_index_from_string(ref.group(1))
            if (number >= from_row and low <= column <= high) or column in replaced.get(number, ()):
                continue  # the previous answer's cell, or one a result cell takes the place of
            cells.append((column, cell.group(0)))
        if _CELL.sub("", inner).strip():
            return None  # not only cells in the row (e.g. extension lists)
        changed = len(cells) != len(_CELL.findall(inner))
        if pending and pending[0] == number:
            pending.pop(0)
            cells += [(c.column, _cell_xml(f"{get_column_letter(c.column)}{number}", c, style_ids[c.style]))
                      for c in rows[number]]
            cells.sort(key=lambda c: c[0])
            changed = True
        if cells:
            max_column = max(max_column, cells[-1][0])
        last_row = number
        if not changed:
            out.append(match.group(0))
            continue
        attributes = _SPANS.sub("", attributes)
        out.append(f"<row{attributes}>{''.join(c for _, c in cells)}</row>" if cells else f"<row{attributes}/>")
    if body[position:].strip():
        return None
    out += [_new_row(number, rows, style_ids) for number in pending]
    last_row = max([last_row, *pending])
    max_column = max([max_column, *widths])
    patched = sheet[:body_start] + "".join(out) + sheet[end:]
    patched = _with_widths(patched, widths)
    if patched is None:
        return None
    return re.sub(r'<dimension ref="[^"]*"\s*/>', f'<dimension ref="A1:{get_column_letter(max_column)}{last_row}"/>',
                  patched, count=1)


def _new_row(number: int, rows: dict[int, list[Cell]], style_ids: list[int]) -> str:
    cells = "".join(_cell_xml(f"{get_column_letter(c.column)}{number}", c, style_ids[c.style])
                    for c in sorted(rows[number], key=lambda c: c.column))
    return f'<row r="{number}">{cells}</row>'


def _with_widths(sheet: str, widths: dict[int, float]) -> str | None:
    new = {column: f'<col min="{column}" max="{column}" width="{width}" customWidth="1"/>'
           for column, width in widths.items()}
    cols = re.search(r"<cols>(.*?)</cols>", sheet, re.S)
    if cols is None:
        at = sheet.find("<sheetData")
        return sheet[:at] + "<cols>" + "".join(new[c] for c in sorted(new)) + "</cols>" + sheet[at:]
    kept: list[tuple[int, str]] = []
    for col in re.finditer(r"<col\b[^>]*/>", cols.group(1)):
        bounds = re.search(r'\bmin="(\d+)"[^>]*\bmax="(\d+)"', col.group(0))
        if bounds is None:
            return None
        low, high = int(bounds.group(1)), int(bounds.group(2))
        if any(low <= c <= high for c in new):
            if low != high:
                return None  # a range over a result column: left to openpyxl
            continue  # the previous answer's width
        kept.append((low, col.group(0)))
    if re.sub(r"<col\b[^>]*/>", "", cols.group(1)).strip():
        return None
    merged = sorted(kept + list(new.items()), key=lambda c: c[0])
    return sheet[: cols.start(1)] + "".join(c for _, c in merged) + sheet[cols.end(1):]


class _Styles:
    """Appends the result cells' fonts, fills, borders and formats to styles.xml."""

    @staticmethod
    def patch(styles: str, wanted: Iterable[Style]) -> tuple[str, list[int]] | None:
        sections = {}
        for tag in ("fonts", "fills", "borders", "cellXfs"):
            found = re.search(rf"<{tag}\b[^>]*?(?:count=\"(\d+)\")?[^>]*>(.*?)</{tag}>", styles, re.S)
            if found is None:
                return None
            items = len(re.findall(rf"<{tag[:-1] if tag != 'cellXfs' else 'xf'}\b", found.group(2)))
            sections[tag] = [found, items, []]

        def add(tag: str, xml: str) -> int:
            section = sections[tag]
            if xml in section[2]:
                return section[1] + section[2].index(xml)
            section[2].append(xml)
            return section[1] + len(section[2]) - 1

        ids: list[int] = []
        for style in wanted:
            fill, font, border, alignment, number_format = style
            fill_id = 0 if fill.fill_type is None else add("fills", _xml(fill))
            font_id = 0 if font is None else add("fonts", _xml(font))
            border_id = 0 if border is None else add("borders", _xml(border))
            ids.append(add(
                "cellXfs",
                f'<xf numFmtId="{number_format}" fontId="{font_id}" fillId="{fill_id}" borderId="{border_id}" '
                f'xfId="0" applyNumberFormat="1" applyFont="1" applyFill="1" applyBorder="1" applyAlignment="1">'
                f"{_xml(alignment)}</xf>",
            ))
        # From the last section in the file to the first, so that earlier offsets stay right.
        for tag, (found, count, added) in sorted(sections.items(), key=lambda s: -s[1][0].start()):
            if not added:
                continue
            opening = re.sub(r'\scount="\d+"', "", styles[found.start(): found.start(2)])
            opening = opening[:-1] + f' count="{count + len(added)}">'
            styles = styles[: found.start()] + opening + found.group(2) + "".join(added) + styles[found.end(2):]
        return styles, ids


def _xml(style: Font | PatternFill | Border | Alignment) -> str:
    return tostring(style.to_tree(), encoding="unicode")

