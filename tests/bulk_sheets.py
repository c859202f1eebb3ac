"""Builders of filled bulk-registration sheets for the tests (from the served template)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable, Sequence
from typing import Any

import openpyxl

from lifecycle.bulk.sheets import build_template

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

# Rows as a user types them: kind, site, ticket ID, verification code, serial, option serials.
SERIAL = "A1B2C3D4E5F6G7H8"
NEW_ROW = ("新規", "東京本社", "01234567", "AB12CD34", SERIAL, None)
BUNDLE_ROW = ("バンドル", "東京本社", None, None, "Z9Y8X7W6V5U4T3S2", "M1N2O3P4Q5R6S7T8, K1L2M3N4O5P6Q7R8")
RENEWAL_ROW = ("更新", None, "07654321", "EF56GH78", SERIAL, None)


def filled(rows: Sequence[Sequence[Any] | None], template: bytes | None = None) -> bytes:
    """The template with `rows` typed from row 3 (None leaves a row empty): (kind, site,
    ticket ID, verification code, serial, option serials)."""
    workbook = openpyxl.load_workbook(io.BytesIO(template or build_template()))
    sheet = workbook["一括登録"]
    for number, values in enumerate(rows, start=3):
        for column, value in enumerate(values or (), start=1):
            sheet.cell(row=number, column=column, value=value)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def resaved(data: bytes) -> bytes:
    """The same sheet opened and saved again (other bytes, the same rows)."""
    workbook = openpyxl.load_workbook(io.BytesIO(data))
    workbook.properties.creator = "someone else"
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def upload(data: bytes, name: str = "sheet.xlsx") -> dict[str, Any]:
    return {"file": (name, data, XLSX)}


def result_columns(data: bytes) -> dict[int, tuple[Any, Any, Any]]:
    """Row number -> (status, code, message) written by the result sheet."""
    sheet = openpyxl.load_workbook(io.BytesIO(data))["一括登録"]
    headers = [sheet.cell(row=1, column=c).value for c in range(1, sheet.max_column + 1)]
    first = next(i for i, h in enumerate(headers, start=1) if h and "結果" in str(h))
    return {
        r: tuple(sheet.cell(row=r, column=first + k).value for k in range(3))  # type: ignore[misc]
        for r in range(3, sheet.max_row + 1)
        if sheet.cell(row=r, column=first).value is not None
    }


def plain_workbook(rows: Sequence[Sequence[Any]], title: str = "Sheet") -> bytes:
    """A plain workbook, not made from the template: every row as given, from row 1."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = title
    for values in rows:
        sheet.append(list(values))
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def rewritten(data: bytes, members: dict[str, bytes | Callable[[bytes], bytes]]) -> bytes:
    """The same ZIP with some members replaced (a callable edits the old content) or added."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            content = source.read(info)
            change = members.get(info.filename)
            target.writestr(info.filename, change(content) if callable(change) else change or content)
        for name, content in members.items():
            if name not in source.namelist():
                assert isinstance(content, bytes)
                target.writestr(name, content)
    return out.getvalue()
