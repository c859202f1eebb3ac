"""Lists as files: CSV (UTF-8 with a byte-order mark, so spreadsheet programs read the
Japanese text) and Excel workbooks (openpyxl)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from fastapi.responses import Response

from api.downloads import attachment

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def flatten(item: dict[str, Any]) -> dict[str, Any]:
    """Nested values (a period) become columns of their own: period_start, period_end."""
    flat: dict[str, Any] = {}
    for key, value in item.items():
        if isinstance(value, dict):
            for inner, inner_value in value.items():
                flat[f"{key}_{inner}"] = inner_value
        else:
            flat[key] = value
    return flat


def _cell(value: Any) -> Any:
    if isinstance(value, date) or value is None or isinstance(value, (int, float, str, bool)):
        return value
    return str(value)


def as_csv(rows: Iterable[dict[str, Any]], columns: Sequence[str], filename: str) -> Response:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return Response(
        ("\ufeff" + buffer.getvalue()).encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers=attachment(f"{filename}.csv"),
    )


def as_xlsx(rows: Iterable[dict[str, Any]], columns: Sequence[str], filename: str, title: str) -> Response:
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(title=title[:31])
    sheet.append(list(columns))
    for row in rows:
        sheet.append([_cell(row.get(c)) for c in columns])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return Response(
        buffer.getvalue(),
        media_type=XLSX,
        headers=attachment(f"{filename}.xlsx"),
    )


def export(
    items: list[dict[str, Any]], columns: Sequence[str], file_format: str, filename: str, title: str
) -> Response:
    rows = [flatten(item) for item in items]
    if file_format == "csv":
        return as_csv(rows, columns, filename)
    return as_xlsx(rows, columns, filename, title)
