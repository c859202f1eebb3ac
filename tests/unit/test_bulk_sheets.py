"""K-1: the Excel side of bulk registration (一括登録シート): template, reading, results.

Sheets are built here with openpyxl, and hostile files by editing the ZIP, so each case
names exactly what the user (or an attacker) would upload.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any

import openpyxl
import pytest
from openpyxl.worksheet.worksheet import Worksheet

from lifecycle.bulk import container
from lifecycle.bulk.sheets import (
    RowResult,
    RowStatus,
    SheetRow,
    build_template,
    find_duplicates,
    read_sheet,
    results_from_reading,
    write_results,
)
from lifecycle.domain.errors import DomainError, Refusal
from tests.bulk_sheets import BUNDLE_ROW, NEW_ROW, RENEWAL_ROW, SERIAL, plain_workbook, rewritten



# --- helpers ----------------------------------------------------------------------------


def _save(workbook: openpyxl.Workbook) -> bytes:
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def _template_with(rows: Sequence[Sequence[Any] | None], edit: Callable[[Worksheet], None] | None = None) -> bytes:
    """The template with `rows` typed from row 3 (None leaves a row empty)."""
    workbook = openpyxl.load_workbook(io.BytesIO(build_template()))
    sheet = workbook["一括登録"]
    for number, values in enumerate(rows, start=3):
        for column, value in enumerate(values or (), start=1):
            sheet.cell(row=number, column=column, value=value)
    if edit is not None:
        edit(sheet)
    return _save(workbook)


def _refusal(data: bytes, **limits: int) -> DomainError:
    with pytest.raises(DomainError) as refused:
        read_sheet(data, **limits)
    return refused.value


def _only_row(data: bytes) -> SheetRow:
    rows = [row for row in read_sheet(data).rows if not row.is_empty]
    assert len(rows) == 1
    return rows[0]


# --- the template -----------------------------------------------------------------------


def test_K1_template_has_japanese_headers_over_english_with_frozen_panes() -> None:
    """Users read the Japanese row; integrators and the reader also know the English one."""
    sheet = openpyxl.load_workbook(io.BytesIO(build_template()))["一括登録"]
    assert [c.value for c in sheet[1]] == [
        "種別", "設置先", "チケットID", "確認コード", "シリアル番号", "オプションシリアル番号"]
    assert [c.value for c in sheet[2]] == ["Kind", "Site", "Ticket ID", "Verification code", "Serial number",
                                           "Option serial numbers"]
    assert sheet.freeze_panes == "A3"
    assert all(sheet.column_dimensions[letter].width >= 12 for letter in "ABCDEF")
    assert sheet.max_row == 2  # no example rows: whatever is typed below the headers is data


def test_K1_template_offers_the_kind_drop_down() -> None:
    """The kind is chosen, not typed: 新規 / バンドル / 更新 for every data row."""
    sheet = openpyxl.load_workbook(io.BytesIO(build_template()))["一括登録"]
    lists = [dv for dv in sheet.data_validations.dataValidation if dv.type == "list"]
    assert len(lists) == 1
    assert lists[0].formula1 == '"新規,バンドル,更新"'
    assert "A3" in lists[0].sqref and "A50000" in lists[0].sqref and "A2" not in lists[0].sqref


def test_K1_template_formats_ticket_code_and_serial_columns_as_text() -> None:
    """Leading zeros of ticket IDs, codes and serials survive only in text-formatted cells."""
    sheet = openpyxl.load_workbook(io.BytesIO(build_template()))["一括登録"]
    formats = {letter: sheet.column_dimensions[letter].number_format for letter in "ABCDEF"}
    assert formats == {"A": "General", "B": "General", "C": "@", "D": "@", "E": "@", "F": "@"}


def test_K1_template_instructions_carry_the_seed_hints() -> None:
    """p.17, p.23, p.29, Q2, Q4, Q5, E5: what the guide tells users goes with the sheet."""
    sheet = openpyxl.load_workbook(io.BytesIO(build_template()))["記入方法"]
    text = "\n".join(str(c.value) for row in sheet.iter_rows() for c in row if c.value)
    hints = ("S/N:", "冒頭16桁", "レビジョン", "頭5桁", "No.:*****", "モジュール", "電源ユニット", "ライセンス",
             "チケットIDと確認コードはありません", "オプションシリアル番号", "登録済み製品のシリアル番号", "更新用")
    for hint in hints:
        assert hint in text, hint


def test_K1_the_bare_template_is_an_empty_sheet() -> None:
    """Uploading the template untouched registers nothing and says so."""
    assert _refusal(build_template()).code == "BULK_EMPTY"


# --- reading rows -----------------------------------------------------------------------


def test_K1_filled_template_round_trips() -> None:
    """The rows typed into the template come back as typed, each with its kind and row number."""
    parsed = read_sheet(_template_with([NEW_ROW, BUNDLE_ROW, RENEWAL_ROW]))
    assert parsed.sheet_name == "一括登録"
    assert parsed.header_rows == (1, 2)
    assert parsed.columns == {"kind": 1, "site": 2, "ticket_id": 3, "verification_code": 4, "serial": 5,
                              "option_serials": 6}
    new, bundle, renewal = parsed.rows
    assert (new.row, new.kind, new.site, new.ticket_id, new.verification_code, new.serial, new.problem) == (
        3, "new", "東京本社", "01234567", "AB12CD34", SERIAL, None)
    assert (bundle.row, bundle.kind, bundle.serial, bundle.option_serials, bundle.problem) == (
        4, "bundle", "Z9Y8X7W6V5U4T3S2", ("M1N2O3P4Q5R6S7T8", "K1L2M3N4O5P6Q7R8"), None)
    assert (renewal.row, renewal.kind, renewal.ticket_id, renewal.serial, renewal.problem) == (
        5, "renewal", "07654321", SERIAL, None)


def test_K1_headers_are_found_in_any_order_language_width_and_case_and_extra_columns_are_kept() -> None:
    """A user's own sheet works when its headers name the template's columns, however spelled."""
    data = plain_workbook([
        ["受付一覧"],  # a title line above the headers
        ["備考", "ＳＥＲＩＡＬ　ＮＵＭＢＥＲ", "ticket_id", "確認 コード", "kind", "設置先（拠点名またはID）",
         "納品日"],
        ["至急", SERIAL, "01234567", "AB12CD34", "NEW", "東京本社", date(2026, 4, 1)],
    ])
    parsed = read_sheet(data)
    assert parsed.header_rows == (2,)
    assert parsed.columns == {"serial": 2, "ticket_id": 3, "verification_code": 4, "kind": 5, "site": 6}
    assert parsed.extra_columns == {1: "備考", 7: "納品日"}
    (row,) = parsed.rows
    assert (row.row, row.kind, row.serial, row.ticket_id, row.problem) == (3, "new", SERIAL, "01234567", None)
    assert row.extras == (("備考", "至急"), ("納品日", "2026-04-01"))


def test_K1_an_extra_date_column_is_kept_as_iso_text_whatever_its_form() -> None:
    """Dates arrive as Excel dates, date-times or typed text; the kept value is one ISO form."""
    data = _template_with(
        [(*NEW_ROW, datetime(2026, 4, 1)), (*BUNDLE_ROW, "2026/4/2"), (*RENEWAL_ROW, "２０２６年４月３日")],
        edit=lambda sheet: sheet.cell(row=1, column=7, value="出荷日"),
    )
    assert [row.extras for row in read_sheet(data).rows] == [
        (("出荷日", "2026-04-01"),), (("出荷日", "2026-04-02"),), (("出荷日", "2026-04-03"),)]


def test_K1_full_width_input_and_spaces_are_folded() -> None:
    """Japanese IMEs type full-width digits and letters; they mean the same ASCII text."""
    row = _only_row(_template_with([("　新規 ", "  東京　 本社 ", "０１２３４５６７", "ＡＢ１２ＣＤ３４ ",
                                     "ｓ／ｎ：ａ１ｂ２ｃ３ｄ４ｅ５ｆ６ｇ７ｈ８　Ａ", None)]))
    assert (row.kind, row.site, row.ticket_id, row.verification_code, row.serial, row.problem) == (
        "new", "東京 本社", "01234567", "AB12CD34", SERIAL, None)


@pytest.mark.parametrize(
    ("typed", "kind"),
    [("新規", "new"), ("new", "new"), ("ＮＥＷ", "new"), ("バンドル", "bundle"), ("ﾊﾞﾝﾄﾞﾙ", "bundle"),
     ("Bundle", "bundle"), ("更新", "renewal"), ("RENEWAL", "renewal")],
)
def test_K1_kind_is_read_in_japanese_or_english_in_any_width_or_case(typed: str, kind: str) -> None:
    """The drop-down is not always used: typed kinds count as long as they name one."""
    values = {"new": NEW_ROW, "bundle": BUNDLE_ROW, "renewal": RENEWAL_ROW}[kind]
    row = _only_row(_template_with([(typed, *values[1:])]))
    assert (row.kind, row.problem) == (kind, None)


def test_K1_an_unknown_kind_is_a_row_problem() -> None:
    """A row whose kind is not one of the three is refused on its own, not the sheet."""
    parsed = read_sheet(_template_with([("追加", *NEW_ROW[1:]), (None, *NEW_ROW[1:]), NEW_ROW]))
    unknown, missing, good = parsed.rows
    assert unknown.kind is None and unknown.problem is not None and unknown.problem.code == "BULK_UNKNOWN_KIND"
    assert "新規" in unknown.problem.message_ja and "'追加'" in unknown.problem.detail
    assert missing.problem is not None and missing.problem.code == "BULK_UNKNOWN_KIND"
    assert good.problem is None


def test_K1_ticket_id_that_lost_its_leading_zeros_is_reported_not_padded() -> None:
    """Excel turns 01234567 typed into a General cell into 1234567: padding would guess."""
    row = _only_row(_template_with([("新規", "東京本社", 1234567, "AB12CD34", SERIAL, None)]))
    assert row.problem is not None
    assert row.problem.code == "TICKET_ID_LEADING_ZEROS_LOST"
    assert "文字列" in row.problem.message_ja and "8桁" in row.problem.message_ja
    assert row.ticket_id == ""  # the refused value cannot reach a command


@pytest.mark.parametrize("number", [12345678, 12345678.0])
def test_K1_an_eight_digit_ticket_id_stored_as_a_number_is_accepted_as_text(number: float) -> None:
    """Nothing was lost when the number has all 8 digits."""
    row = _only_row(_template_with([("新規", "東京本社", number, "AB12CD34", SERIAL, None)]))
    assert (row.ticket_id, row.problem) == ("12345678", None)


def test_K1_a_ticket_id_number_shown_with_its_zeros_by_its_format_is_read_as_shown() -> None:
    """A number formatted 00000000 shows 01234567: the user sees all 8 digits, so do we."""

    def pad(sheet: Worksheet) -> None:
        sheet["C3"].number_format = "00000000"

    row = _only_row(_template_with([("新規", "東京本社", 1234567, "AB12CD34", SERIAL, None)], edit=pad))
    assert (row.ticket_id, row.problem) == ("01234567", None)


@pytest.mark.parametrize(
    ("typed", "serial"),
    [("S/N:A1B2C3D4E5F6G7H8 A", SERIAL), ("S/N: a1b2c3d4e5f6g7h8 ABC", SERIAL), ("A1B2C3D4E5F6G7H8XYZ", SERIAL),
     ("S/N:12AB34 C", "12AB34")],
)
def test_T2_serials_with_label_and_revision_are_normalised_as_single_commands_do(typed: str, serial: str) -> None:
    """The printed label is copied as it is; only the serial part counts (T-2, E5)."""
    assert _only_row(_template_with([("新規", "東京本社", "01234567", "AB12CD34", typed, None)])).serial == serial


def test_T2_option_serials_are_split_and_their_revisions_dropped() -> None:
    """B-2: several option serials share a cell, separated as people type them."""
    typed = "S/N:M1N2O3P4Q5R6S7T8 B, S/N: K1L2M3N4O5P6Q7R8 C、ｊ１ｋ２ｌ３\nH1I2J3K4 L5M6N7O8 A;M1N2O3P4Q5R6S7T8"
    row = _only_row(_template_with([("バンドル", "東京本社", None, None, SERIAL, typed)]))
    assert row.option_serials == ("M1N2O3P4Q5R6S7T8", "K1L2M3N4O5P6Q7R8", "J1K2L3", "H1I2J3K4", "L5M6N7O8")
    assert row.problem is None


def test_T2_a_serial_without_alphanumerics_is_refused_with_the_single_commands_code() -> None:
    """Same code and message as a single registration (K-1)."""
    row = _only_row(_template_with([("新規", "東京本社", "01234567", "AB12CD34", "S/N: --", None)]))
    assert row.problem is not None and row.problem.code == "INVALID_SERIAL"
    assert row.problem.message_ja == "シリアル番号を入力してください。"


def test_K1_empty_rows_are_reported_as_empty_and_trailing_ones_dropped() -> None:
    """A blank line between rows is answered (空行), not refused; blanks after the last row are no rows."""
    def format_rows_below(sheet: Worksheet) -> None:
        for row in (7, 8, 9):  # formatted but empty, as Excel saves rows a user has styled
            sheet.cell(row=row, column=1).number_format = "@"

    parsed = read_sheet(_template_with([NEW_ROW, None, ("  ", "", None, None, None, None), RENEWAL_ROW],
                                       edit=format_rows_below))
    assert [(row.row, row.is_empty, row.kind, row.problem) for row in parsed.rows] == [
        (3, False, "new", None), (4, True, None, None), (5, True, None, None), (6, False, "renewal", None)]


def test_K1_merged_cells_give_their_value_to_every_cell_of_the_range() -> None:
    """Users merge the site and kind cells of consecutive rows; each row still has them."""

    def merge(sheet: Worksheet) -> None:
        sheet.merge_cells("A3:A5")
        sheet.merge_cells("B3:B5")

    data = _template_with(
        [NEW_ROW, (None, None, "01234568", "AB12CD35", "B1B2C3D4E5F6G7H8", None),
         (None, None, "01234569", "AB12CD36", "C1B2C3D4E5F6G7H8", None)],
        edit=merge,
    )
    rows = read_sheet(data).rows
    assert [(row.kind, row.site, row.problem) for row in rows] == [("new", "東京本社", None)] * 3
    assert [row.ticket_id for row in rows] == ["01234567", "01234568", "01234569"]


def test_K1_headers_merged_over_two_rows_end_below_the_merge() -> None:
    """Headers merged over rows 1-2 leave row 2 blank in the file: it is a header row, not a data row."""

    def merge(sheet: Worksheet) -> None:
        for letter in "ABCDEF":
            sheet[f"{letter}2"] = None
            sheet.merge_cells(f"{letter}1:{letter}2")

    parsed = read_sheet(_template_with([NEW_ROW], edit=merge))
    assert parsed.header_rows == (1, 2)
    assert [row.row for row in parsed.rows] == [3]


def test_K1_formulas_give_their_cached_values() -> None:
    """A formula's value is what Excel saved with it (openpyxl cannot compute one, so the XML is edited)."""
    data = _template_with([("新規", "東京本社", '="0123"&"4567"', "AB12CD34", SERIAL, None),
                           ("新規", "東京本社", "=12345670+8", "AB12CD34", "B1B2C3D4E5F6G7H8", None)])

    def cache(xml: bytes) -> bytes:
        text = xml.decode()
        formula = r'<c r="{}"(?: s="\d+")?><f>(.*?)</f><v\s*/>'
        text, first = re.subn(formula.format("C3"), r'<c r="C3" t="str"><f>\1</f><v>01234567</v>', text)
        text, second = re.subn(formula.format("C4"), r'<c r="C4"><f>\1</f><v>12345678</v>', text)
        assert first == second == 1
        return text.encode()

    parsed = read_sheet(rewritten(data, {"xl/worksheets/sheet1.xml": cache}))
    assert [(row.ticket_id, row.problem) for row in parsed.rows] == [("01234567", None), ("12345678", None)]


def test_K1_a_formula_error_refuses_the_field() -> None:
    """#N/A must not be read as the serial "NA"."""
    data = _template_with([("新規", "東京本社", "01234567", "AB12CD34", "=NA()", None)])

    def error(xml: bytes) -> bytes:
        return re.sub(rb'<c r="E3"(?: s="\d+")?><f>NA\(\)</f><v\s*/>', b'<c r="E3" t="e"><f>NA()</f><v>#N/A</v>', xml)

    row = _only_row(rewritten(data, {"xl/worksheets/sheet1.xml": error}))
    assert row.problem is not None and row.problem.code == "BULK_FORMULA_ERROR"
    assert row.serial == ""


@pytest.mark.parametrize(
    ("kind_row", "field_ja"),
    [(("新規", "東京本社", "01234567", None, SERIAL, None), "確認コード"),
     (("新規", None, "01234567", "AB12CD34", SERIAL, None), "設置先"),
     (("バンドル", "東京本社", None, None, None, "M1N2O3P4Q5R6S7T8"), "シリアル番号"),
     (("更新", "東京本社", None, "EF56GH78", SERIAL, None), "チケットID")],
)
def test_K1_a_field_the_kind_needs_is_required(kind_row: tuple[Any, ...], field_ja: str) -> None:
    """新規: site, ticket, code, serial; バンドル: site, serial; 更新: serial, ticket, code."""
    row = _only_row(_template_with([kind_row]))
    assert row.problem is not None and row.problem.code == "BULK_FIELD_REQUIRED"
    assert f"「{field_ja}」" in row.problem.message_ja


def test_K1_a_renewal_needs_no_site_and_a_bundle_may_leave_its_options_empty_here() -> None:
    """The site of a renewal is ignored; a bundle's options are checked by the bundle command (B-2)."""
    parsed = read_sheet(_template_with([RENEWAL_ROW, ("バンドル", "東京本社", None, None, SERIAL, None)]))
    assert [row.problem for row in parsed.rows] == [None, None]


@pytest.mark.parametrize(
    ("kind_row", "field_ja"),
    [(("バンドル", "東京本社", "01234567", None, SERIAL, None), "チケットID"),
     (("新規", "東京本社", "01234567", "AB12CD34", SERIAL, "M1N2O3P4Q5R6S7T8"), "オプションシリアル番号")],
)
def test_K1_a_field_the_kind_does_not_use_is_refused(kind_row: tuple[Any, ...], field_ja: str) -> None:
    """Q4: bundles have no ticket; a ticket on a bundle row means the kind is wrong, and the
    row must not register as a bundle while the ticket stays unused."""
    row = _only_row(_template_with([kind_row]))
    assert row.problem is not None and row.problem.code == "BULK_FIELD_NOT_FOR_KIND"
    assert f"「{field_ja}」" in row.problem.message_ja


def test_K1_very_long_text_is_refused_for_that_row() -> None:
    """A cell is capped so that no unbounded text travels on to commands or mails."""
    parsed = read_sheet(_template_with([("新規", "東" * 201, "01234567", "AB12CD34", SERIAL, None), NEW_ROW]))
    long, good = parsed.rows
    assert long.problem is not None and long.problem.code == "BULK_FIELD_TOO_LONG"
    assert "200文字" in long.problem.message_ja and long.site == ""
    assert good.problem is None


@pytest.mark.parametrize(
    "site", ["東京_x0000_本社", "東京\n本社", "東京_x000D_本社", "東京_x001B_[31m本社", "東京\u202e本社"]
)
def test_K1_control_characters_in_a_one_line_field_are_refused(site: str) -> None:
    """NUL, line breaks, ESC sequences and bidi overrides are never passed on. Excel stores
    the characters XML cannot hold as _xHHHH_ escapes, which is how they are written here."""
    row = _only_row(_template_with([("新規", site, "01234567", "AB12CD34", SERIAL, None)]))
    assert row.problem is not None and row.problem.code == "BULK_CONTROL_CHARACTERS"
    assert row.site == ""


def test_K1_a_trailing_line_break_is_only_a_space() -> None:
    """Text pasted with a final line break is trimmed like any trailing space."""
    row = _only_row(_template_with([("新規", "東京本社\n", "01234567", "AB12CD34", f"{SERIAL}\r\n", None)]))
    assert (row.site, row.serial, row.problem) == ("東京本社", SERIAL, None)


@pytest.mark.parametrize("value", [1.5, 1234567890123456, datetime(2026, 1, 2)])
def test_K1_a_serial_excel_turned_into_a_number_or_date_is_refused(value: Any) -> None:
    """Excel keeps 15 digits and turns 1-2 into a date: what was typed is gone, so say so."""
    row = _only_row(_template_with([("新規", "東京本社", "01234567", "AB12CD34", value, None)]))
    assert row.problem is not None and row.problem.code == "BULK_VALUE_CONVERTED"
    assert "「シリアル番号」" in row.problem.message_ja


# --- content keys and duplicates --------------------------------------------------------


def test_K1_the_same_sheet_saved_again_gives_the_same_content_keys() -> None:
    """Re-saved by Excel or uploaded twice, a sheet names the same requests (not the same bytes)."""
    first = _template_with([NEW_ROW, BUNDLE_ROW, RENEWAL_ROW])
    workbook = openpyxl.load_workbook(io.BytesIO(first))
    workbook["一括登録"].insert_rows(3)  # shifted down a row and saved again
    again = _save(workbook)
    assert again != first
    keys = [row.content_key for row in read_sheet(first).rows]
    assert [row.content_key for row in read_sheet(again).rows if not row.is_empty] == keys
    assert len(set(keys)) == 3


def test_K1_content_key_ignores_how_a_row_was_typed_but_not_what_it_asks() -> None:
    """Label, width, revision and option order do not change a request; a corrected code does."""
    parsed = read_sheet(_template_with([
        BUNDLE_ROW,
        ("ﾊﾞﾝﾄﾞﾙ", "東京本社 ", None, None, "S/N:Z9Y8X7W6V5U4T3S2 A", "K1L2M3N4O5P6Q7R8 B\nM1N2O3P4Q5R6S7T8"),
        NEW_ROW,
        ("新規", "東京本社", "01234567", "AB12CD99", SERIAL, None),
        RENEWAL_ROW,
        ("更新", "大阪支店", "07654321", "EF56GH78", SERIAL, None),
    ]))
    keys = [row.content_key for row in parsed.rows]
    assert keys[0] == keys[1]
    assert keys[2] != keys[3]
    assert keys[4] == keys[5]  # a renewal's site is ignored
    assert "AB12CD34" not in keys[2]  # the code is not kept in clear


def test_K1_find_duplicates_maps_each_repeated_row_to_its_first() -> None:
    """A row copied within one sheet is registered once; its copies are reported."""
    refused = ("新規", "東京本社", 1234567, "AB12CD34", SERIAL, None)
    parsed = read_sheet(_template_with([NEW_ROW, BUNDLE_ROW, None, NEW_ROW, ("新規", *NEW_ROW[1:4], "S/N:" + SERIAL),
                                        refused, refused, None]))
    assert find_duplicates(parsed.rows) == {6: 3, 7: 3}  # empty and refused rows answer their own problem


def test_K1_results_from_reading_settle_empty_refused_and_repeated_rows() -> None:
    """What reading decides needs no command; every other row is left for one."""
    parsed = read_sheet(_template_with([NEW_ROW, None, ("追加", *NEW_ROW[1:]), NEW_ROW, RENEWAL_ROW]))
    settled = results_from_reading(parsed)
    assert {row: (r.status, r.code) for row, r in settled.items()} == {
        4: (RowStatus.EMPTY, None),
        5: (RowStatus.REFUSED, "BULK_UNKNOWN_KIND"),
        6: (RowStatus.DUPLICATE_IN_SHEET, "BULK_DUPLICATE_ROW"),
    }
    assert settled[6].message_ja == "同じ内容の行が3行目にあります。この行は登録されません。"


# --- malformed files --------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [b"", b"\x00\x01\x02 random bytes \xff" * 50, "種別,設置先,チケットID\n新規,東京本社,01234567\n".encode("cp932"),
     container.OLE_SIGNATURE + b"\x00" * 512 + "Workbook".encode("utf-16-le") + b"\x00" * 512],
    ids=["empty", "random", "csv", "xls"],
)
def test_K1_a_file_that_is_not_an_xlsx_is_refused(data: bytes) -> None:
    """CSV and old .xls files are the usual mistakes; the message says which format to use."""
    refused = _refusal(data)
    assert refused.code == "BULK_NOT_XLSX" and refused.kind is Refusal.INVALID
    assert ".xlsx" in refused.message_ja and "CSV" in refused.message_ja


def test_K1_a_zip_that_is_not_an_office_document_is_refused() -> None:
    """A ZIP is not yet a workbook."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("readme.txt", "hello")
    assert _refusal(out.getvalue()).code == "BULK_NOT_XLSX"


def test_K1_an_office_package_without_worksheets_is_refused() -> None:
    """A Word document, or a workbook part that names no sheet, cannot be read as a sheet."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>')
        archive.writestr("word/document.xml", "<document/>")
    assert _refusal(out.getvalue()).code == "BULK_NOT_XLSX"
    no_sheets = rewritten(_template_with([NEW_ROW]), {"xl/workbook.xml": b"<not-a-workbook/>"})
    assert _refusal(no_sheets).code == "BULK_NOT_XLSX"


def test_K1_a_password_protected_workbook_is_refused_as_encrypted() -> None:
    """Excel stores an encrypted workbook as an OLE file with an EncryptionInfo stream."""
    data = (container.OLE_SIGNATURE + b"\x00" * 504 + "EncryptionInfo".encode("utf-16-le") + b"\x00" * 100
            + "EncryptedPackage".encode("utf-16-le") + b"\x00" * 1000)
    refused = _refusal(data)
    assert refused.code == "BULK_FILE_ENCRYPTED"
    assert "パスワード" in refused.message_ja


def test_K1_wrong_headers_are_refused_naming_the_expected_columns() -> None:
    """The user learns which columns the sheet must have, and which of them it lacks."""
    refused = _refusal(plain_workbook([["種別", "設置先", "シリアル", "備考"], ["新規", "東京本社", SERIAL, ""]]))
    assert refused.code == "BULK_WRONG_HEADERS"
    assert "チケットID" in refused.message_ja and "確認コード" in refused.message_ja
    assert "がありません" in refused.message_ja
    assert "Ticket ID" in refused.detail and "Verification code" in refused.detail
    assert refused.extra["missing"] == ["チケットID (Ticket ID)", "確認コード (Verification code)"]


def test_K1_a_column_named_twice_is_refused_as_wrong_headers() -> None:
    """Two serial columns would leave it to chance which one is registered."""
    refused = _refusal(plain_workbook([["種別", "設置先", "チケットID", "確認コード", "シリアル番号", "Serial number"],
                               list(NEW_ROW[:5]) + [SERIAL]]))
    assert refused.code == "BULK_WRONG_HEADERS" and "重複" in refused.message_ja


def test_K1_the_sheet_with_the_headers_is_read_whichever_its_place() -> None:
    """A cover sheet before the data does not hide it."""
    workbook = openpyxl.Workbook()
    workbook.active.title = "表紙"
    workbook.active["A1"] = "一括登録のお願い"
    data_sheet = workbook.create_sheet("data")
    data_sheet.append([c for c in ("種別", "設置先", "チケットID", "確認コード", "シリアル番号")])
    data_sheet.append(list(NEW_ROW[:5]))
    parsed = read_sheet(_save(workbook))
    assert parsed.sheet_name == "data" and [row.kind for row in parsed.rows] == ["new"]


def test_K1_a_sheet_with_headers_and_no_rows_is_empty() -> None:
    """Only blank rows below the headers register nothing: one clear error."""
    refused = _refusal(_template_with([None, ("", " ", None, None, None, None)]))
    assert refused.code == "BULK_EMPTY"
    assert "登録する行がありません" in refused.message_ja


def test_K1_more_rows_than_allowed_are_refused() -> None:
    """A sheet over the row limit is refused at once, not cut short."""
    refused = _refusal(_template_with([NEW_ROW, BUNDLE_ROW, RENEWAL_ROW]), max_rows=2)
    assert refused.code == "BULK_TOO_MANY_ROWS"
    assert "2行" in refused.message_ja
    assert len(read_sheet(_template_with([NEW_ROW, BUNDLE_ROW, RENEWAL_ROW]), max_rows=3).rows) == 3


def test_K1_a_file_over_the_byte_limit_is_refused_as_too_large() -> None:
    """The size limit comes first, before the file is opened; it answers 413."""
    data = _template_with([NEW_ROW])
    refused = _refusal(data, max_bytes=len(data) - 1)
    assert refused.code == "BULK_FILE_TOO_LARGE" and refused.kind is Refusal.TOO_LARGE
    assert read_sheet(data, max_bytes=len(data)).rows


def test_K1_the_too_large_kind_maps_to_http_413() -> None:
    """The API maps each kind to one status; the new kind has its own."""
    from api.problems import STATUS_OF

    assert STATUS_OF[Refusal.TOO_LARGE] == 413
    assert set(STATUS_OF) == set(Refusal)


def test_K1_a_zip_bomb_is_refused_before_it_is_inflated() -> None:
    """A small upload that inflates a thousandfold is refused from the ZIP directory alone."""
    data = rewritten(_template_with([NEW_ROW]), {"xl/media/filler.xml": b"0" * (8 * 1024 * 1024)})
    assert len(data) < 100_000
    refused = _refusal(data)
    assert refused.code == "BULK_UNSAFE_FILE" and "inflates" in refused.detail


def test_K1_parts_declaring_more_than_the_total_limit_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """The total of declared sizes is bounded as well as each part's ratio."""
    data = _template_with([NEW_ROW])
    monkeypatch.setattr(container, "MAX_UNCOMPRESSED_BYTES", 10_000)
    refused = _refusal(data)
    assert refused.code == "BULK_UNSAFE_FILE" and "at most 10000" in refused.detail


def test_K1_a_part_that_inflates_past_its_declared_size_is_refused() -> None:
    """The ZIP directory may lie about a part's size; reading is capped and checked."""
    data = rewritten(_template_with([NEW_ROW]), {"xl/extra.xml": b"<a>" + b"x" * 5000 + b"</a>"})
    name = b"xl/extra.xml"
    entry = data.rindex(b"PK\x01\x02", 0, data.rindex(name))  # its central directory record
    assert data[entry + 46: entry + 46 + len(name)] == name
    lying = data[: entry + 24] + (100).to_bytes(4, "little") + data[entry + 28:]
    refused = _refusal(lying)
    assert refused.code == "BULK_UNSAFE_FILE" and "xl/extra.xml" in refused.detail


def test_K1_an_xml_entity_bomb_in_a_sheet_is_refused() -> None:
    """Billion laughs needs a DOCTYPE with entities: none is ever parsed."""
    bomb = ('<!DOCTYPE lolz [<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">' for i in range(1, 10)
    ) + "]>")

    def inject(xml: bytes) -> bytes:
        text = xml.decode()
        head, rest = text.split("?>", 1) if text.startswith("<?xml") else ("", text)
        rest = rest.replace("<t>東京本社</t>", "<t>&lol9;</t>")
        return ((head + "?>" if head else "") + bomb + rest).encode()

    refused = _refusal(rewritten(_template_with([NEW_ROW]), {"xl/worksheets/sheet1.xml": inject}))
    assert refused.code == "BULK_UNSAFE_FILE" and "DOCTYPE" in refused.detail


def test_K1_an_entity_declaration_in_utf16_is_refused_too() -> None:
    """An XML part may be UTF-16; the scan for declarations reads both encodings."""
    part = '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>'
    data = rewritten(_template_with([NEW_ROW]), {"docProps/custom.xml": part.encode("utf-16")})
    assert _refusal(data).code == "BULK_UNSAFE_FILE"


def test_K1_every_file_error_has_a_japanese_message_and_kind() -> None:
    """Each refusal reads like the service's others: code, kind, title, detail, message_ja."""
    cases = [
        (b"not a workbook", {}),
        (_template_with([]), {}),
        (_template_with([NEW_ROW]), {"max_bytes": 10}),
        (_template_with([NEW_ROW, NEW_ROW]), {"max_rows": 1}),
    ]
    for data, limits in cases:
        refused = _refusal(data, **limits)
        assert refused.code.startswith("BULK_") and refused.title and refused.detail
        assert re.search(r"[ぁ-んァ-ヶ一-龠]", refused.message_ja)
        assert refused.kind in (Refusal.INVALID, Refusal.TOO_LARGE)


# --- results ----------------------------------------------------------------------------


def _results_sheet(data: bytes) -> Worksheet:
    return openpyxl.load_workbook(io.BytesIO(data))["一括登録"]


def test_K1_write_results_adds_status_code_and_message_columns_and_keeps_the_sheet() -> None:
    """Each row's answer stands on its row, after the user's last column; nothing else moves."""
    original = _template_with([NEW_ROW, BUNDLE_ROW, None, RENEWAL_ROW],
                              edit=lambda sheet: sheet.cell(row=1, column=7, value="備考"))
    results = [
        RowResult(3, RowStatus.REGISTERED),
        RowResult(4, "refused", "BUNDLE_OPTIONS_INVALID", "標準添付オプションのシリアル番号が正しくありません。",
                  "K1L2M3N4O5P6Q7R8 is not an option of this bundle."),
        RowResult(5, RowStatus.EMPTY),
        RowResult(6, RowStatus.RENEWED),
    ]
    sheet = _results_sheet(write_results(original, results))
    assert [sheet.cell(row=1, column=c).value for c in (8, 9, 10)] == ["結果", "コード", "メッセージ"]
    assert [sheet.cell(row=2, column=c).value for c in (8, 9, 10)] == ["Status", "Code", "Message"]
    assert [sheet.cell(row=r, column=8).value for r in (3, 4, 5, 6)] == [
        "登録済み (registered)", "エラー (refused)", "空行 (empty)", "更新済み (renewed)"]
    assert sheet["I4"].value == "BUNDLE_OPTIONS_INVALID"
    assert sheet["J4"].value.splitlines() == ["標準添付オプションのシリアル番号が正しくありません。",
                                              "K1L2M3N4O5P6Q7R8 is not an option of this bundle."]
    # The user's cells, headers, formats and drop-down are as they were.
    assert [c.value for c in sheet[3][:7]] == list(NEW_ROW) + [None]
    assert sheet["G1"].value == "備考" and sheet.freeze_panes == "A3"
    assert sheet.column_dimensions["C"].number_format == "@"
    assert any(dv.type == "list" for dv in sheet.data_validations.dataValidation)
    assert "記入方法" in openpyxl.load_workbook(io.BytesIO(write_results(original, results))).sheetnames


def test_K1_write_results_highlights_the_rows_to_fix() -> None:
    """Refused and repeated rows are light red, registered ones light green, the rest plain."""
    original = _template_with([NEW_ROW, NEW_ROW, RENEWAL_ROW, BUNDLE_ROW, None])
    sheet = _results_sheet(write_results(original, [
        RowResult(3, RowStatus.REGISTERED), RowResult(4, RowStatus.DUPLICATE_IN_SHEET, "BULK_DUPLICATE_ROW", "重複"),
        RowResult(5, RowStatus.ALREADY_REGISTERED),
        RowResult(6, RowStatus.REFUSED, "SERIAL_NOT_FOUND", "該当のシリアルは存在しません。"),
        RowResult(7, RowStatus.EMPTY),
    ]))

    def fill(cell: str) -> str | None:
        return sheet[cell].fill.start_color.rgb if sheet[cell].fill.fill_type == "solid" else None

    assert [fill(f"G{r}") for r in range(3, 8)] == ["FFC6EFCE", "FFFFC7CE", None, "FFFFC7CE", None]
    assert fill("I6") == "FFFFC7CE"
    assert fill("A6") is None  # the user's own cells keep their look


def test_K1_a_result_sheet_uploaded_again_reads_the_same_rows_and_reuses_its_columns() -> None:
    """Users fix the red rows of the answer and upload it again: same keys, one set of result columns."""
    original = _template_with([NEW_ROW, ("追加", *NEW_ROW[1:])])
    first = write_results(original, list(results_from_reading(read_sheet(original)).values())
                          + [RowResult(3, RowStatus.REGISTERED)])
    parsed = read_sheet(first)
    assert parsed.extra_columns == {}
    assert [row.content_key for row in parsed.rows] == [row.content_key for row in read_sheet(original).rows]
    second = _results_sheet(write_results(first, [RowResult(3, RowStatus.ALREADY_REGISTERED)]))
    assert second.max_column == 9
    assert second["G3"].value == "既に登録済み (already_registered)"
    assert second["G4"].value is None and second["G4"].fill.fill_type is None  # the old answer is cleared


def test_K1_write_results_on_a_sheet_with_one_header_row_labels_both_languages() -> None:
    """A user's own sheet may have one header row: the result headers carry both names."""
    original = plain_workbook([["種別", "設置先", "チケットID", "確認コード", "シリアル番号"], list(NEW_ROW[:5])])
    sheet = openpyxl.load_workbook(io.BytesIO(write_results(original, [RowResult(2, RowStatus.REGISTERED)]))).active
    assert [sheet.cell(row=1, column=c).value for c in (6, 7, 8)] == [
        "結果 / Status", "コード / Code", "メッセージ / Message"]
    assert sheet["F2"].value == "登録済み (registered)"
    with pytest.raises(ValueError):
        write_results(original, [RowResult(1, RowStatus.REGISTERED)])


def _looks(data: bytes) -> list[tuple[Any, ...]]:
    """Every cell of the data sheet a user sees (a value, a fill): value, fill, font, border,
    alignment, format; and the columns' widths."""
    sheet = _results_sheet(data)
    return [
        (c.coordinate, c.value, c.fill.fill_type, c.fill.start_color.rgb, c.font.b, c.border.left.style,
         c.alignment.wrap_text, c.alignment.vertical, c.alignment.horizontal, c.number_format)
        for row in sheet.iter_rows() for c in row if c.value is not None or c.fill.fill_type is not None
    ] + [(letter, sheet.column_dimensions[letter].width) for letter in "ABCDEFGHIJK"]


def test_K1_the_answer_written_into_the_xml_looks_as_openpyxl_writes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The result sheet is written into the file's XML (seconds saved on 10,000 rows); a user
    sees the same cells, styles and widths as when openpyxl loads and saves the workbook, also
    for an answer uploaded again, and the other sheet is still there."""
    original = _template_with([NEW_ROW, BUNDLE_ROW, None, NEW_ROW, RENEWAL_ROW],
                              edit=lambda sheet: sheet.cell(row=1, column=7, value="備考"))
    results = [
        RowResult(3, RowStatus.REGISTERED),
        RowResult(4, "refused", "BUNDLE_OPTIONS_INVALID", "標準添付オプション <&> が正しくありません。", "K1L2 is not"),
        RowResult(5, RowStatus.EMPTY),
        RowResult(6, RowStatus.DUPLICATE_IN_SHEET, "BULK_DUPLICATE_ROW", "重複"),
        RowResult(7, RowStatus.RENEWED),
        RowResult(9, RowStatus.EMPTY),  # a row the sheet has no element for
    ]
    fast = write_results(original, results)
    again_fast = write_results(fast, results[:2])
    monkeypatch.setattr("lifecycle.bulk.results._written_into_xml", lambda *args: None)
    slow = write_results(original, results)
    assert _looks(fast) == _looks(slow)
    assert _looks(again_fast) == _looks(write_results(slow, results[:2]))
    assert "記入方法" in openpyxl.load_workbook(io.BytesIO(fast)).sheetnames
    assert [row.content_key for row in read_sheet(fast).rows] == [row.content_key for row in read_sheet(slow).rows]


def test_K1_a_sheet_the_xml_way_does_not_handle_is_answered_by_openpyxl() -> None:
    """A data sheet whose cells carry no references (other writers may omit them) is still answered."""
    original = plain_workbook([["種別", "設置先", "チケットID", "確認コード", "シリアル番号"], list(NEW_ROW[:5])])
    without_refs = rewritten(original, {"xl/worksheets/sheet1.xml": lambda xml: re.sub(rb"<c r=\"[A-Z]+[0-9]+\"", b"<c", xml)})
    sheet = openpyxl.load_workbook(io.BytesIO(write_results(without_refs, [RowResult(2, RowStatus.REGISTERED)]))).active
    assert sheet["F2"].value == "登録済み (registered)" and sheet["F1"].value == "結果 / Status"


def test_K1_write_results_refuses_what_read_sheet_refuses() -> None:
    """Stored bytes are not trusted: the answer is built only for a file that passes the same guards."""
    with pytest.raises(DomainError) as refused:
        write_results(b"PK\x03\x04 broken", [])
    assert refused.value.code == "BULK_NOT_XLSX"


def test_K1_a_row_status_outside_the_six_is_refused() -> None:
    """The result writer only knows the statuses it can display."""
    with pytest.raises(ValueError):
        RowResult(3, "maybe")  # type: ignore[arg-type]


# --- boundaries -------------------------------------------------------------------------


def test_K1_the_bulk_package_needs_no_web_queue_or_application_layer() -> None:
    """Routes, jobs and commands are wired to it elsewhere; it depends on openpyxl and the domain only."""
    code = (
        "import sys, lifecycle.bulk.sheets\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('fastapi', 'starlette', 'dramatiq', 'sqlalchemy',"
        " 'psycopg', 'api', 'workers') or m.startswith(('lifecycle.application', 'lifecycle.projections')))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
