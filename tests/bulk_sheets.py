"""Builders of filled bulk-registration sheets for the tests (from the served template)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

import openpyxl

from lifecycle.bulk.sheets import build_template

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


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
