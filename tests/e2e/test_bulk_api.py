"""K-1 over HTTP: the template, an uploaded sheet's rows answered with the single commands'
codes and messages, nothing registered twice, dry runs, malformed files, who may upload,
and a large sheet as a background job (the embedded default's in-process worker)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import openpyxl
import pytest
from fastapi.testclient import TestClient

from lifecycle.aggregates.contract import Contract
from lifecycle.bulk import container
from lifecycle.settings import Settings
from tests.bulk_sheets import NEW_ROW, XLSX, filled, plain_workbook, resaved, result_columns, rewritten, upload
from tests.conftest import settings_for
from tests.e2e.conftest import assert_problem, bearer
from tests.scenario import Flow, log_in, next_serial, shipped


@pytest.fixture
def store_settings(tmp_path: Path) -> Settings:
    return settings_for("sqlite", tmp_path, bulk_sync_rows=50, bulk_batch_rows=7)


def _post(client: TestClient, company_id: str, data: bytes, **params: str) -> Any:
    return client.post(f"/v1/companies/{company_id}/bulk", files=upload(data), params=params)


def _rows(answer: Any) -> dict[int, dict[str, Any]]:
    return {row["row"]: row for row in answer.json()["rows"]}


def _registration_events(client: TestClient, company_id: str) -> list[Any]:
    app = client.app.state.application
    return [e for e in app.events.get(UUID(company_id))
            if isinstance(e, Contract.TicketRegistered | Contract.BundleRegistered | Contract.Renewed)]


def test_K1_the_template_is_served_as_an_xlsx(client: TestClient) -> None:
    answer = client.get("/v1/bulk/template.xlsx")
    assert answer.status_code == 200 and answer.headers["content-type"] == XLSX
    assert "一括登録" in openpyxl.load_workbook(__import__("io").BytesIO(answer.content)).sheetnames


def test_K1_every_refusal_on_its_row_with_the_single_commands_code_and_message(client: TestClient, flow: Flow) -> None:
    """One row of each refusal beside good rows: the good ones are registered, each wrong
    one says why exactly as the single command would."""
    company_id, site_id = flow.company_with_site()
    flow.site(company_id, name="大阪支店")  # no fault contact yet (S-5)
    good, good_ticket = flow.ship(), flow.sell_ticket()
    option = next_serial("OP")
    bundle = flow.ship(bundle={"service": "デリバリースタンダード", "term_years": 5, "sold_on": "2026-10-05",
                               "ticket_model": "TK-5Y", "options": [{"serial": option, "code_no": "55555-01",
                                                                     "model": "PSU"}]})
    other_product = flow.ship(code_no="99999-01")
    used_ticket = flow.sell_ticket()
    flow.register(site_id, used_ticket, flow.ship())
    covered = flow.ship()
    flow.register(site_id, flow.sell_ticket(), covered)
    renewal_ticket = flow.sell_ticket(kind="renewal", sold_on="2027-09-20")
    rows = [
        ("新規", "東京本社", good_ticket["ticket_id"], good_ticket["verification_code"], good, None),  # 3
        ("バンドル", "東京本社", None, None, bundle, option),  # 4
        ("新規", "東京本社", flow.sell_ticket()["ticket_id"], "AB12CD", "ZZZZ0000", None),  # 5: E5
        ("新規", "東京本社", "87654321", "AB12CD", flow.ship(), None),  # 6: E4
        ("新規", "東京本社", flow.sell_ticket()["ticket_id"], "AB12CD", other_product, None),  # 7: T-4
        ("新規", "東京本社", renewal_ticket["ticket_id"], "AB12CD", flow.ship(), None),  # 8: T-5
        ("新規", "東京本社", used_ticket["ticket_id"], "AB12CD", flow.ship(), None),  # 9: T-6
        ("新規", "東京本社", flow.sell_ticket()["ticket_id"], "AB12CD", covered, None),  # 10: T-7
        ("新規", "大阪支店", flow.sell_ticket()["ticket_id"], "AB12CD", flow.ship(), None),  # 11: S-5
        ("新規", "名古屋", flow.sell_ticket()["ticket_id"], "AB12CD", flow.ship(), None),  # 12: unknown site
        ("更新", None, renewal_ticket["ticket_id"], "AB12CD", covered, None),  # 13: R-2 window closed
        ("更新", None, flow.sell_ticket(kind="renewal")["ticket_id"], "AB12CD", flow.ship(), None),  # 14: not registered
        ("バンドル", "東京本社", None, None, bundle, None),  # 15: B-2 options missing (another content)
        ("新規", "東京本社", good_ticket["ticket_id"], good_ticket["verification_code"], good, None),  # 16: repeat of 3
        None,  # 17: empty
        ("新規", "東京本社", 1234567, "AB12CD", flow.ship(), None),  # 18: leading zeros lost
        ("取消", "東京本社", "12345678", "AB12CD", flow.ship(), None),  # 19: unknown kind
    ]
    answer = _post(client, company_id, filled(rows))
    assert answer.status_code == 201, answer.text
    got = {n: (r["status"], r["code"]) for n, r in _rows(answer).items()}
    assert got == {
        3: ("registered", None), 4: ("registered", None),
        5: ("refused", "SERIAL_NOT_FOUND"), 6: ("refused", "NOT_IN_SHIPMENT_HISTORY"),
        7: ("refused", "PRODUCT_CODE_MISMATCH"), 8: ("refused", "TICKET_KIND_MISMATCH"),
        9: ("refused", "TICKET_ALREADY_REGISTERED"), 10: ("refused", "UNIT_ALREADY_REGISTERED"),
        11: ("refused", "FAULT_CONTACT_REQUIRED"), 12: ("refused", "SITE_NOT_FOUND"),
        13: ("refused", "RENEWAL_WINDOW_CLOSED"), 14: ("refused", "NOT_REGISTERED"),
        15: ("refused", "BUNDLE_OPTIONS_MISSING"), 16: ("duplicate_in_sheet", "BULK_DUPLICATE_ROW"),
        17: ("empty", None), 18: ("refused", "TICKET_ID_LEADING_ZEROS_LOST"), 19: ("refused", "BULK_UNKNOWN_KIND"),
    }
    rows_by_number = _rows(answer)
    assert rows_by_number[5]["message_ja"] == "該当のシリアルは存在しません。"  # E5
    assert rows_by_number[6]["message_ja"] == "出荷履歴にありません。"  # E4
    # the same message as the single command gives for the same input
    single = client.post(f"/v1/sites/{site_id}/registrations",
                         json={"ticket_id": rows[4][2], "verification_code": "AB12CD", "serial": other_product})
    assert rows_by_number[7]["message_ja"] == assert_problem(single, 422, "PRODUCT_CODE_MISMATCH")["message_ja"]
    assert client.get(f"/v1/registrations/{good}").json()["ticket_id"] == good_ticket["ticket_id"]
    assert client.get(f"/v1/registrations/{option}").status_code == 200  # B-2: the option is covered too
    # the result sheet explains each row where it stands
    sheet = client.get(f"/v1/bulk/{answer.json()['job_id']}/result.xlsx")
    assert sheet.status_code == 200 and sheet.headers["content-type"] == XLSX
    written = result_columns(sheet.content)
    assert written[3][0] == "登録済み (registered)" and written[5][1] == "SERIAL_NOT_FOUND"
    assert "該当のシリアルは存在しません。" in written[5][2]


def test_K1_full_width_input_and_excel_typed_ticket_ids_register_as_the_single_commands_do(
    client: TestClient, flow: Flow
) -> None:
    company_id, _ = flow.company_with_site()
    serials = [flow.ship() for _ in range(3)]
    tickets = [flow.sell_ticket() for _ in range(3)]
    full_width = str.maketrans("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", "０１２３４５６７８９ＡＢＣＤＥＦＧＨＩＪＫＬＭＮＯＰＱＲＳＴＵＶＷＸＹＺ")
    rows = [
        ("新規", "東京本社 ", tickets[0]["ticket_id"].translate(full_width), "ＡＢ１２ＣＤ", serials[0].translate(full_width), None),
        ("ｼﾝｷ" if False else "新規", "東京本社", int(tickets[1]["ticket_id"]), "AB12CD", f"S/N:{serials[1]} A", None),
        ("new", "東京本社", tickets[2]["ticket_id"], "AB12CD ", f" s/n:{serials[2].lower()} 01", None),
    ]
    answer = _post(client, company_id, filled(rows))
    assert [r["status"] for r in answer.json()["rows"]] == ["registered"] * 3, answer.text
    for serial, ticket in zip(serials, tickets, strict=True):
        assert client.get(f"/v1/registrations/{serial}").json()["ticket_id"] == ticket["ticket_id"]


def test_K1_uploading_the_same_sheet_again_registers_nothing_twice(client: TestClient, flow: Flow) -> None:
    """By the rows' content: the same sheet saved again by a spreadsheet is the same sheet."""
    company_id, _ = flow.company_with_site()
    rows = [("新規", "東京本社", t["ticket_id"], t["verification_code"], flow.ship(), None)
            for t in (flow.sell_ticket() for _ in range(4))]
    rows.append(("新規", "東京本社", "87654321", "AB12CD", flow.ship(), None))
    data = filled(rows)
    first = _post(client, company_id, data)
    assert [r["status"] for r in first.json()["rows"]] == ["registered"] * 4 + ["refused"]
    events = len(_registration_events(client, company_id))
    for again in (data, resaved(data)):
        second = _post(client, company_id, again)
        assert second.status_code == 201, second.text
        assert [(r["status"], r["code"]) for r in second.json()["rows"]] == (
            [("already_registered", "BULK_ALREADY_REGISTERED")] * 4 + [("refused", "NOT_IN_SHIPMENT_HISTORY")])
        assert second.json()["registered"] == 0
    assert len(_registration_events(client, company_id)) == events == 4


def test_K1_a_dry_run_validates_every_row_and_changes_nothing(client: TestClient, flow: Flow) -> None:
    company_id, _ = flow.company_with_site()
    ticket, serial = flow.sell_ticket(), flow.ship()
    data = filled([("新規", "東京本社", ticket["ticket_id"], ticket["verification_code"], serial, None),
                   ("新規", "東京本社", "87654321", "AB12CD", flow.ship(), None)])
    app = client.app.state.application
    before = app.recorder.max_notification_id()
    answer = _post(client, company_id, data, dry_run="true")
    assert answer.status_code == 200, answer.text
    assert answer.json()["job_id"] is None and answer.json()["dry_run"] is True
    assert [(r["status"], r["code"]) for r in answer.json()["rows"]] == [
        ("registered", "BULK_DRY_RUN"), ("refused", "NOT_IN_SHIPMENT_HISTORY")]
    assert app.recorder.max_notification_id() == before  # not one event
    assert client.get(f"/v1/registrations/{serial}").status_code == 404
    assert _post(client, company_id, data).json()["rows"][0]["status"] == "registered"  # still registrable


def _malformed() -> dict[str, tuple[bytes, int, str]]:
    template_row = [NEW_ROW]
    bomb = rewritten(filled(template_row), {"xl/media/filler.xml": b"0" * (8 * 1024 * 1024)})
    entity = ('<!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>')

    def inject(xml: bytes) -> bytes:
        text = xml.decode()
        head, rest = text.split("?>", 1) if text.startswith("<?xml") else ("", text)
        return ((head + "?>" if head else "") + entity + rest).encode()

    xml_bomb = rewritten(filled(template_row), {"xl/worksheets/sheet1.xml": inject})
    encrypted = (container.OLE_SIGNATURE + b"\x00" * 504 + "EncryptionInfo".encode("utf-16-le")
                 + b"\x00" * 100 + "EncryptedPackage".encode("utf-16-le") + b"\x00" * 1000)
    return {
        "csv": ("種別,設置先\n新規,東京本社\n".encode("cp932"), 422, "BULK_NOT_XLSX"),
        "encrypted": (encrypted, 422, "BULK_FILE_ENCRYPTED"),
        "wrong headers": (plain_workbook([["種別", "設置先", "シリアル"], ["新規", "東京本社", "X"]]), 422,
                          "BULK_WRONG_HEADERS"),
        "empty": (filled([]), 422, "BULK_EMPTY"),
        "too many rows": (filled([NEW_ROW] * 6), 422, "BULK_TOO_MANY_ROWS"),
        "too large": (filled([NEW_ROW]) + b"\x00" * 300_000, 413, "BULK_FILE_TOO_LARGE"),
        "zip bomb": (bomb, 422, "BULK_UNSAFE_FILE"),
        "xml entity bomb": (xml_bomb, 422, "BULK_UNSAFE_FILE"),
    }


@pytest.mark.parametrize("case", list(_malformed()))
def test_K1_a_malformed_file_gets_one_problem_at_once_and_nothing_is_imported(
    case: str, tmp_path: Path, clock: Any
) -> None:
    from api.app import create_app
    from tests.e2e.conftest import api_key

    data, status, code = _malformed()[case]
    settings = settings_for("sqlite", tmp_path, bulk_max_rows=5, bulk_max_bytes=200_000)
    with TestClient(create_app(settings, clock=clock)) as client:
        client.headers.update(bearer(api_key(client)))
        flow = Flow(client, client.app.state.application)
        company_id, _ = flow.company_with_site()
        before = client.app.state.application.recorder.max_notification_id()
        body = assert_problem(_post(client, company_id, data), status, code)
        assert body["message_ja"]
        assert client.app.state.application.recorder.max_notification_id() == before


def test_K1_a_customer_uploads_only_for_its_own_company_and_reads_only_its_own_jobs(
    anonymous: TestClient, client: TestClient, flow: Flow
) -> None:
    mine, theirs = (f"bulk-{n}-{next_serial()}@example.co.jp" for n in ("mine", "theirs"))
    my_company, _ = flow.company_with_site(flow.active_account(mine))
    their_company, _ = flow.company_with_site(flow.active_account(theirs))
    me, them = log_in(client, mine), log_in(client, theirs)
    ticket, serial = flow.sell_ticket(), flow.ship()
    data = filled([("新規", "東京本社", ticket["ticket_id"], ticket["verification_code"], serial, None)])
    refused = client.post(f"/v1/companies/{their_company}/bulk", files=upload(data), headers=bearer(me))
    assert_problem(refused, 404, "COMPANY_NOT_FOUND")
    assert client.get(f"/v1/registrations/{serial}").status_code == 404
    done = client.post(f"/v1/companies/{my_company}/bulk", files=upload(data), headers=bearer(me))
    assert done.status_code == 201 and done.json()["registered"] == 1, done.text
    job = done.json()["job_id"]
    assert client.get(f"/v1/bulk/{job}", headers=bearer(me)).status_code == 200
    assert_problem(client.get(f"/v1/bulk/{job}", headers=bearer(them)), 404, "BULK_JOB_NOT_FOUND")
    assert_problem(client.get(f"/v1/bulk/{job}/result.xlsx", headers=bearer(them)), 404, "BULK_JOB_NOT_FOUND")
    # the registration records the customer who uploaded and the job
    history = client.get(f"/v1/contracts/{client.get(f'/v1/companies/{my_company}').json()['contract_number']}/history")
    registered = [e for e in history.json()["events"] if e["type"] == "TicketRegistered"]
    assert registered[-1]["request_id"] == f"bulk:{job}", registered[-1]
    assert registered[-1]["actor"]["kind"] == "account"


def test_K1_a_large_sheet_runs_as_a_job_with_progress_and_a_result_sheet(client: TestClient, flow: Flow) -> None:
    company_id, _ = flow.company_with_site()
    pairs = shipped(client.app.state.application, 120)
    rows = [("新規", "東京本社", ticket_id, "AB12CD", serial, None) for serial, ticket_id in pairs]
    rows[5] = ("新規", "東京本社", "87654321", "AB12CD", pairs[5][0], None)
    answer = _post(client, company_id, filled(rows))
    assert answer.status_code == 202, answer.text
    location = answer.headers["Location"]
    assert location == f"/v1/bulk/{answer.json()['job_id']}"
    deadline = time.monotonic() + 60
    while (progress := client.get(location, params={"rows": "false"}).json())["status"] != "done":
        assert time.monotonic() < deadline, progress
        assert 0 <= progress["percent"] <= 100
        time.sleep(0.2)
    assert progress["rows_done"] == 120 and progress["registered"] == 119 and progress["refused"] == 1
    assert progress["percent"] == 100 and progress["estimated_seconds_left"] == 0
    assert "rows" not in progress or progress["rows"] is None
    written = result_columns(client.get(f"{location}/result.xlsx").content)
    assert written[8][1] == "NOT_IN_SHIPMENT_HISTORY" and len(written) == 120
    assert len(_registration_events(client, company_id)) == 119


def test_K1_the_command_line_imports_a_sheet_and_writes_the_result_beside_it(
    client: TestClient, flow: Flow, store_settings: Settings, tmp_path: Path
) -> None:
    import os
    import subprocess
    import sys

    company_id, _ = flow.company_with_site()
    number = client.get(f"/v1/companies/{company_id}").json()["contract_number"]
    ticket, serial = flow.sell_ticket(), flow.ship()
    good = tmp_path / "good.xlsx"
    good.write_bytes(filled([("新規", "東京本社", ticket["ticket_id"], ticket["verification_code"], serial, None)]))
    bad = tmp_path / "bad.xlsx"
    bad.write_bytes(filled([("新規", "東京本社", "87654321", "AB12CD", flow.ship(), None)]))
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"not a workbook")
    env = {**os.environ, "LIFECYCLE_DATABASE_URL": store_settings.database_url,
           "LIFECYCLE_SECRET_KEY": store_settings.secret_key, "LIFECYCLE_VAR_DIR": str(store_settings.var_dir)}

    def run(path: Path, *extra: str, company: str = number) -> int:
        return subprocess.run([sys.executable, "-m", "lifecycle", "bulk", "import", str(path), "--company",
                               company, *extra], env=env, capture_output=True, timeout=120).returncode

    assert run(good, "--dry-run") == 0
    assert client.get(f"/v1/registrations/{serial}").status_code == 404
    assert run(good) == 0
    assert result_columns((tmp_path / "good.result.xlsx").read_bytes())[3][0] == "登録済み (registered)"
    assert client.get(f"/v1/registrations/{serial}").status_code == 200
    assert run(bad) == 1
    assert result_columns((tmp_path / "bad.result.xlsx").read_bytes())[3][1] == "NOT_IN_SHIPMENT_HISTORY"
    assert run(broken) == 2
    assert run(good, company="SU00000000") == 2, "an unknown company: no row was looked at, not 'rows refused'"


class _Streamed:
    """An ASGI receive that hands the body over in chunks and counts what the service asked for."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks, self.read = chunks, 0

    async def __call__(self) -> dict[str, Any]:
        if not self.chunks:
            return {"type": "http.disconnect"}
        chunk = self.chunks.pop(0)
        self.read += len(chunk)
        return {"type": "http.request", "body": chunk, "more_body": bool(self.chunks)}


def test_K1_a_file_over_the_limit_is_refused_while_it_streams(tmp_path: Path, clock: Any) -> None:
    """No Content-Length, a 2 MB file against a 200 kB limit: refused with 413 when the file
    part passes the limit, not after the whole body (or the body limit's envelope) is read."""
    from api.app import create_app
    from tests.e2e.conftest import api_key
    from tests.support import call_asgi

    settings = settings_for("sqlite", tmp_path, bulk_max_bytes=200_000)
    with TestClient(create_app(settings, clock=clock)) as client:
        token = api_key(client)
        client.headers.update(bearer(token))
        company_id, _ = Flow(client, client.app.state.application).company_with_site()
        before = client.app.state.application.recorder.max_notification_id()
        chunk = 16 * 1024
        head = (b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.xlsx"\r\n'
                b"Content-Type: application/octet-stream\r\n\r\n")
        receive = _Streamed([head] + [b"P" * chunk] * 128 + [b"\r\n--b--\r\n"])
        headers = [(b"content-type", b"multipart/form-data; boundary=b"),
                   (b"authorization", f"Bearer {token}".encode())]
        status, response_headers, body = call_asgi(client.app, f"/v1/companies/{company_id}/bulk", headers, receive)
        assert status == 413 and json.loads(body)["code"] == "BULK_FILE_TOO_LARGE"
        assert response_headers["content-type"] == "application/problem+json"
        # The file part stopped at the limit: below what the body limit alone lets through.
        assert receive.read <= 200_000 + len(head) + chunk < 200_000 + 64 * 1024
        assert client.app.state.application.recorder.max_notification_id() == before


def test_K1_an_upload_is_one_file_in_the_field_file_and_nothing_else(client: TestClient, flow: Flow) -> None:
    company_id, _ = flow.company_with_site()
    sheet = filled([NEW_ROW])
    before = client.app.state.application.recorder.max_notification_id()
    url = f"/v1/companies/{company_id}/bulk"
    refused = {
        "a field beside the file": client.post(url, files=upload(sheet), data={"note": "x"}),
        "two files": client.post(url, files=[("file", ("a.xlsx", sheet, XLSX)), ("file", ("b.xlsx", sheet, XLSX))]),
        "the file under another name": client.post(url, files={"sheet": ("a.xlsx", sheet, XLSX)}),
        "a field named file, no file": client.post(url, data={"file": "x"}),
        "no multipart body": client.post(url, content=sheet, headers={"content-type": XLSX}),
    }
    for case, answer in refused.items():
        assert answer.status_code == 422, (case, answer.text)
        assert_problem(answer, 422, "BULK_UPLOAD_MALFORMED")
    assert client.app.state.application.recorder.max_notification_id() == before
    # The same sheet alone is read (its row refused on its own: the sheet's ticket is unknown).
    assert _post(client, company_id, sheet).status_code in (200, 201)


def test_K1_a_sheet_named_in_japanese_gets_its_result_sheet_under_its_own_name(client: TestClient, flow: Flow) -> None:
    """A header cannot carry 一括登録シート as is: the download names it by RFC 6266's filename*."""
    company_id, _ = flow.company_with_site(flow.active_account())
    sheet = filled([("新規", "東京本社", flow.sell_ticket()["ticket_id"], "AB12CD", flow.ship())])
    answer = client.post(f"/v1/companies/{company_id}/bulk", files=upload(sheet, name="一括登録シート.xlsx"))
    result = client.get(f"/v1/bulk/{answer.json()['job_id']}/result.xlsx")
    assert result.status_code == 200, result.text
    assert "filename*=UTF-8''%E4%B8%80%E6%8B%AC%E7%99%BB%E9%8C%B2%E3%82%B7%E3%83%BC%E3%83%88.result.xlsx" in (
        result.headers["content-disposition"])
    assert result_columns(result.content)[3][0] == "登録済み (registered)"
