"""The bulk-registration template (一括登録シート, K-1) offered for download.

Two sheets: 「一括登録」 for the rows (row 1 Japanese headers, row 2 English, data from
row 3, panes frozen under the headers, a drop-down of 新規 / バンドル / 更新 on the kind
column, the ticket ID, verification code and serial columns formatted as text so Excel
keeps their leading zeros) and 「記入方法」 with the seed's hints (p.17, p.23, p.29, Q2,
Q4, Q5, E5). The data sheet has no example rows: whatever is typed there is data.
"""

from __future__ import annotations

from io import BytesIO

from openpyxl import Workbook
from openpyxl.styles import Alignment, Border, Font, PatternFill, Side
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet

from lifecycle.bulk.columns import COLUMNS, INSTRUCTIONS_SHEET, KIND_JA, TEMPLATE_SHEET

HEADER_ROWS = (1, 2)
FIRST_DATA_ROW = 3
LAST_ROW = 1_048_576  # validation and formats cover the whole column below the headers
TEXT_FORMAT = "@"

HEADER_FILL = PatternFill(fill_type="solid", start_color="FFDDEBF7", end_color="FFDDEBF7")
ENGLISH_FILL = PatternFill(fill_type="solid", start_color="FFF2F2F2", end_color="FFF2F2F2")
_THIN = Side(style="thin", color="FF9BC2E6")
HEADER_BORDER = Border(left=_THIN, right=_THIN, top=_THIN, bottom=_THIN)

_INSTRUCTIONS: tuple[str, ...] = (
    "一括登録シートの記入方法",
    "",
    "■ 全般",
    "・「一括登録」シートの3行目から、1行に1製品を記入してください。1行目・2行目の見出しは変更しないでください（列の順序の入れ替えや列の追加は可能です）。",
    "・製品本体をはじめ、モジュール、電源ユニット、ライセンスなど全ての製品について、1製品ごとに1行で登録してください。",
    "・「種別」はプルダウンから「新規」「バンドル」「更新」のいずれかを選択してください。",
    "・チケットID・確認コード・シリアル番号の列は文字列の書式になっています。先頭の0が消えないよう、書式を変更しないでください。",
    "・チケットIDは8桁の数字です。先頭の0も含めて8桁すべてを入力してください。",
    "",
    "■ シリアル番号",
    "・シリアル番号は、シリアル番号シールの「S/N:」に続く冒頭16桁までの英数字を入力してください。",
    "・シリアル末尾のスペース以降の1～3桁の英数字部分（レビジョン）は登録不要です。",
    "・一部製品では16桁未満のシリアル番号の場合がございますが、同様にレビジョンは登録不要です。",
    "・シリアル番号は製品本体、または製品に同梱のシリアル番号シールをご覧ください。",
    "",
    "■ 新規（新規サポートチケット）",
    "・設置先、チケットID、確認コード、シリアル番号を入力してください。チケットIDと確認コードはサポートチケットに掲載されています。",
    "・新規チケットは、デリバリースタンダード1年／5年のみです。",
    (
        "・サポートチケットに記載の商品Code Noの頭5桁が、製品本体のコードNo（シリアル番号シールに記載の「No.:*****」）"
        "の頭5桁と同じであることをご確認ください。対象製品の異なるサポートチケットは登録できません。"
    ),
    "",
    "■ バンドル（保守バンドル製品）",
    "・保守バンドル製品には、チケットIDと確認コードはありません。設置先とシリアル番号を入力し、チケットID・確認コードの欄は空欄にしてください。",
    (
        "・標準添付のオプション品がある場合は、そのシリアル番号を「オプションシリアル番号」欄に入力してください。"
        "複数ある場合は、カンマ（,）、スペース、読点（、）または改行で区切って1つのセルに入力できます。"
    ),
    "・オプション品のシリアル番号シールは、本体梱包箱に貼られているS/Nシール（デリスタ○年保守バンドルが貼られている部分）の下に貼られています。",
    "",
    "■ 更新（更新サポートチケット）",
    "・登録済み製品のシリアル番号と、更新用サポートチケットのチケットID・確認コードを入力してください（設置先は不要です）。",
    "・サポートチケットに記載の商品Code Noの頭5桁が、製品本体のコードNoの頭5桁と同じであることをご確認ください。",
    "",
    "■ 登録結果",
    "・アップロード後、行ごとの結果が「結果」「コード」「メッセージ」の列に表示されます。エラーの行を修正して、再度アップロードしてください。",
    "・同じ内容の行は一度だけ登録されます。同じシートを再度アップロードしても、二重に登録されることはありません。",
    "",
    "■ 記入例",
)

_EXAMPLES: tuple[tuple[str, ...], ...] = (
    ("新規", "東京本社", "01234567", "AB12CD34", "A1B2C3D4E5F6G7H8", ""),
    ("バンドル", "東京本社", "", "", "Z9Y8X7W6V5U4T3S2", "M1N2O3P4Q5R6S7T8, K1L2M3N4O5P6Q7R8"),
    ("更新", "", "07654321", "EF56GH78", "A1B2C3D4E5F6G7H8", ""),
)

# Which columns each kind needs: ○ required, － left empty, △ as the bundle needs.
_REQUIRED_TABLE: tuple[tuple[str, str, str, str], ...] = (
    ("設置先", "○", "○", "－（不要）"),
    ("チケットID", "○", "－", "○"),
    ("確認コード", "○", "－", "○"),
    ("シリアル番号", "○", "○", "○"),
    ("オプションシリアル番号", "－", "△（標準添付オプションがある場合）", "－"),
)


def build_template() -> bytes:
    """The template as .xlsx bytes."""
    workbook = Workbook()
    sheet = workbook.active
    sheet.title = TEMPLATE_SHEET
    for index, column in enumerate(COLUMNS, start=1):
        letter = get_column_letter(index)
        ja = sheet.cell(row=HEADER_ROWS[0], column=index, value=column.ja)
        en = sheet.cell(row=HEADER_ROWS[1], column=index, value=column.en)
        ja.font, ja.fill = Font(bold=True), HEADER_FILL
        en.font, en.fill = Font(italic=True, color="FF595959", size=9), ENGLISH_FILL
        for cell in (ja, en):
            cell.border = HEADER_BORDER
            cell.alignment = Alignment(horizontal="center", vertical="center")
            if column.text_format:
                cell.number_format = TEXT_FORMAT
        dimension = sheet.column_dimensions[letter]
        dimension.width = column.width
        if column.text_format:
            dimension.number_format = TEXT_FORMAT  # new cells in the column are text
        if column.field == "option_serials":
            dimension.alignment = Alignment(wrap_text=True, vertical="top")
    sheet.freeze_panes = sheet.cell(row=FIRST_DATA_ROW, column=1)
    sheet.row_dimensions[HEADER_ROWS[0]].height = 22

    kinds = DataValidation(
        type="list",
        formula1='"' + ",".join(KIND_JA.values()) + '"',
        allow_blank=True,
        showDropDown=False,  # sic: False shows the in-cell drop-down arrow
        showErrorMessage=True,
        errorTitle="種別",
        error="「新規」「バンドル」「更新」のいずれかを選択してください。",
        showInputMessage=True,
        promptTitle="種別",
        prompt="新規 / バンドル / 更新",
    )
    kinds.add(f"A{FIRST_DATA_ROW}:A{LAST_ROW}")
    sheet.add_data_validation(kinds)

    ticket_letter = get_column_letter(next(i for i, c in enumerate(COLUMNS, 1) if c.field == "ticket_id"))
    ticket_length = DataValidation(
        type="textLength",
        operator="equal",
        formula1="8",
        allow_blank=True,
        showErrorMessage=True,
        errorStyle="warning",  # a warning, not a block: the service checks the ticket anyway
        errorTitle="チケットID",
        error="チケットIDは8桁の数字です。先頭の0も含めて入力してください。",
    )
    ticket_length.add(f"{ticket_letter}{FIRST_DATA_ROW}:{ticket_letter}{LAST_ROW}")
    sheet.add_data_validation(ticket_length)

    _instructions(workbook.create_sheet(INSTRUCTIONS_SHEET))
    workbook.active = 0
    out = BytesIO()
    workbook.save(out)
    return out.getvalue()


def _instructions(sheet: Worksheet) -> None:
    sheet.column_dimensions["A"].width = 26
    for letter in "BCDEF":
        sheet.column_dimensions[letter].width = 24
    row = 1
    for line in _INSTRUCTIONS:
        cell = sheet.cell(row=row, column=1, value=line or None)
        if row == 1 or line.startswith("■"):
            cell.font = Font(bold=True, size=14 if row == 1 else 11)
        row += 1
    row = _table(sheet, row, tuple(c.ja for c in COLUMNS), _EXAMPLES)
    row += 1
    sheet.cell(row=row, column=1, value="■ 種別ごとの入力項目（○必須　－入力しない）").font = Font(bold=True)
    _table(sheet, row + 1, ("項目", *KIND_JA.values()), _REQUIRED_TABLE)


def _table(sheet: Worksheet, row: int, heading: tuple[str, ...], lines: tuple[tuple[str, ...], ...]) -> int:
    """Write a small table from `row`; the row after it."""
    for column, value in enumerate(heading, start=1):
        cell = sheet.cell(row=row, column=column, value=value)
        cell.font, cell.fill, cell.border = Font(bold=True), HEADER_FILL, HEADER_BORDER
    for offset, values in enumerate(lines, start=1):
        for column, value in enumerate(values, start=1):
            cell = sheet.cell(row=row + offset, column=column, value=value or None)
            cell.number_format = TEXT_FORMAT  # the examples keep their leading zeros
            cell.border = HEADER_BORDER
    return row + len(lines) + 1
