"""The Excel side of bulk registration (一括登録シート, K-1): the public interface.

Depends on openpyxl, the standard library and lifecycle.domain only; routes, jobs and the
registration commands use it like this:

    template = build_template()                    # GET /v1/bulk/template.xlsx
    parsed = read_sheet(upload)                    # one DomainError for a bad file
    results = results_from_reading(parsed)         # empty rows, row problems, repeats
    for row in parsed.rows:
        if row.row in results:
            continue
        try:                                       # row.kind names the command; a row whose
            ...                                    # content_key an earlier upload registered
                                                   # is answered ALREADY_REGISTERED instead
            results[row.row] = RowResult(row.row, RowStatus.REGISTERED)
        except DomainError as error:
            results[row.row] = RowResult.refused(row.row, error)
    answer = write_results(upload, list(results.values()))   # GET /v1/bulk/{job_id}/result.xlsx

Keep content_key for rows that were registered (answer them ALREADY_REGISTERED), not for
refused ones: a refusal such as FAULT_CONTACT_REQUIRED may no longer hold on the next upload.

File-level errors (all kind INVALID -> 422, except BULK_FILE_TOO_LARGE: TOO_LARGE -> 413):
BULK_FILE_TOO_LARGE, BULK_NOT_XLSX, BULK_FILE_ENCRYPTED, BULK_UNSAFE_FILE,
BULK_WRONG_HEADERS, BULK_EMPTY, BULK_TOO_MANY_ROWS. Row problems (SheetRow.problem) carry
BULK_UNKNOWN_KIND, BULK_FIELD_REQUIRED, BULK_FIELD_NOT_FOR_KIND, TICKET_ID_LEADING_ZEROS_LOST,
BULK_VALUE_CONVERTED, BULK_FORMULA_ERROR, BULK_FIELD_TOO_LONG, BULK_CONTROL_CHARACTERS and
the single commands' INVALID_SERIAL and INVALID_TICKET_ID; a repeated row is answered with
BULK_DUPLICATE_ROW. Each module's docstring states its part of the contract.
"""

from lifecycle.bulk.columns import COLUMNS, FIELD_MAX_CHARS, OPTIONS_MAX_CHARS, Column, Kind
from lifecycle.bulk.container import MAX_BYTES, MAX_UNCOMPRESSED_BYTES
from lifecycle.bulk.reading import MAX_ROWS, normalise_site, read_sheet
from lifecycle.bulk.results import RowResult, RowStatus, results_from_reading, write_results
from lifecycle.bulk.rows import ParsedSheet, RowProblem, SheetRow, find_duplicates, rows_from_json, rows_to_json
from lifecycle.bulk.template import build_template

__all__ = [
    "COLUMNS",
    "FIELD_MAX_CHARS",
    "MAX_BYTES",
    "MAX_ROWS",
    "MAX_UNCOMPRESSED_BYTES",
    "OPTIONS_MAX_CHARS",
    "Column",
    "Kind",
    "ParsedSheet",
    "RowProblem",
    "RowResult",
    "RowStatus",
    "SheetRow",
    "build_template",
    "find_duplicates",
    "normalise_site",
    "read_sheet",
    "results_from_reading",
    "rows_from_json",
    "rows_to_json",
    "write_results",
]
