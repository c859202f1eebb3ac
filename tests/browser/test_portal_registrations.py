"""The seed's second half in a real browser (p.16–33, Q1, Q13, E4, E5, K-1): サポートチケット一覧,
チケット登録, バンドル登録 and 更新 as 入力 → 確認 → 完了, and 一括登録 — with JavaScript on and off,
at desktop and phone width, axe on every page (errors shown too), and another customer's URLs.

These tests serve the app in this process with a clock that stands still (Friday 2026-11-20,
10:00 in Tokyo), so that periods and renewal windows are known dates, and a renewal can be
refused before its window and accepted once the clock is moved inside it. Reference data
(shipped units, sold tickets) and the customer's company, site and fault contact are made
through the application, as the order desk and the earlier screens would."""

from __future__ import annotations

import io
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import openpyxl
import pytest
import uvicorn

from api.app import create_app
from lifecycle.application import LifecycleApplication
from lifecycle.application.bulk import BulkImports
from lifecycle.domain.dates import TOKYO
from tests.fakes import FixedClock
from tests.browser.conftest import assert_accessible, unique_email
from tests.bulk_sheets import filled, result_columns
from tests.conftest import settings_for
from tests.support import free_port

PASSWORD = "portal2026pw"
NOW = datetime(2026, 11, 20, 10, 0, tzinfo=TOKYO)
SOLD = date(2026, 11, 10)  # P-1: covered 2026-12-01 … 2027-12-31 (1 year: 13 months)
E4 = "出荷履歴にありません。"
E5 = "該当のシリアルは存在しません。"
_numbers = iter(range(20_000_000, 30_000_000))


@dataclass
class Desk:
    """The app served in this process, its application and the clock it reads."""

    url: str
    clock: FixedClock
    app: LifecycleApplication
    bulk: BulkImports


@pytest.fixture(scope="module")
def desk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Desk]:
    clock = FixedClock(NOW)
    # A sheet of more than 2 rows to decide becomes a job (its progress page); fewer: answered at once.
    settings = settings_for("sqlite", tmp_path_factory.mktemp("registrations"), bulk_sync_rows=2)
    api = create_app(settings, clock=clock)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(api, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the in-process server did not start"
        time.sleep(0.05)
    try:
        yield Desk(f"http://127.0.0.1:{port}", clock, api.state.runtime.application, api.state.runtime.bulk)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(autouse=True)
def clock_at_start(desk: Desk) -> None:
    desk.clock.set(NOW)


@pytest.fixture
def open_page(browser: Any, desk: Desk) -> Iterator[Callable[..., Any]]:
    """open_page(js=True, width=1280): a page of its own (cookies) on the in-process server."""
    contexts = []

    def make(js: bool = True, width: int = 1280) -> Any:
        context = browser.new_context(base_url=desk.url, java_script_enabled=js, accept_downloads=True,
                                      viewport={"width": width, "height": 900}, locale="ja-JP",
                                      timezone_id="Asia/Tokyo")
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@dataclass
class Holder:
    """A customer with a company, a site ready for registrations (it has a fault contact)."""

    email: str
    account_id: str
    company_id: str
    contract_number: str
    site_id: str


def customer_with_site(desk: Desk, site_name: str = "東京本社") -> Holder:
    app = desk.app
    email = unique_email("holder")
    account = app.accounts.sign_up(email, PASSWORD, "山田 太郎", "株式会社サンプル", "03-1234-5678", True)
    app.accounts.verify_account(app.accounts.confirmation_token(account["account_id"]))
    company = app.companies.register_company(account["account_id"], "株式会社サンプル")
    site = app.companies.add_site(company["company_id"], {
        "name": site_name, "postal_code": "1000001", "street": "千代田1-1", "person": "佐藤 花子",
        "phone": "03-1234-5678", "email": "hanako@example.co.jp",
    })
    app.companies.add_fault_contact(site["site_id"], {
        "company": "株式会社サンプル", "postal_code": "1000001", "street": "千代田1-1", "person": "鈴木 一郎",
        "phone": "03-2345-6789", "mail1": "noc@example.co.jp",
    })
    return Holder(email, str(account["account_id"]), str(company["company_id"]), company["contract_number"],
                  str(site["site_id"]))


def shipped(desk: Desk, code_no: str = "12345-01", model: str = "AT-x510-28GTX", bundle: dict | None = None) -> str:
    serial = f"SN{next(_numbers):014d}"
    desk.app.shipments.record_shipment(serial, code_no, model, date(2026, 11, 2), bundle)
    return serial


def sold_ticket(desk: Desk, kind: str = "new", code_no: str = "12345-99") -> str:
    ticket_id = str(next(_numbers))
    desk.app.shipments.record_ticket_sale(ticket_id, "AB12CD", code_no, "デリバリースタンダード", 1, kind, SOLD)
    return ticket_id


def full_width(text: str) -> str:
    """What a person may type: full-width digits and letters."""
    return "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c for c in text)


def log_in(page: Any, holder: Holder) -> None:
    page.goto("/portal/login")
    page.get_by_label("メールアドレス").fill(holder.email)
    page.get_by_label("パスワード").fill(PASSWORD)
    page.get_by_role("button", name="ログイン").click()
    page.get_by_role("heading", name="ユーザートップ").wait_for()


def open_ticket_list(page: Any, holder: Holder) -> None:
    """From ユーザートップ, as the seed does (p.23 ①): the site's サポートチケット一覧."""
    page.goto(f"/portal/companies/{holder.company_id}/sites")
    page.get_by_role("link", name="サポートチケット一覧").first.click()
    page.get_by_role("heading", name="サポートチケット一覧").wait_for()


def field_error(page: Any, label: str) -> str:
    """The error message the field labelled `label` is described by (and it is marked invalid)."""
    field = page.get_by_label(label, exact=True)
    assert field.get_attribute("aria-invalid") == "true", label
    described = (field.get_attribute("aria-describedby") or "").split()
    messages = [page.locator(f"#{i}").inner_text() for i in described if i.endswith("-error")]
    assert messages, f"{label} is not described by an error"
    return messages[0].replace("エラー：", "").strip()


def answers(page: Any) -> dict[str, str]:
    """The check-answers list of the page: label -> value (repeated labels joined)."""
    found: dict[str, str] = {}
    for row in page.locator(".answers__row").all():
        label = row.locator("dt").inner_text().strip()
        value = row.locator("dd").inner_text().strip()
        found[label] = f"{found[label]} / {value}" if label in found else value
    return found


# With JavaScript on at a phone's width (axe and the sideways-scroll check run in the page),
# and off at a desktop's (nothing runs in the page then: the flow alone is checked).
WIDTHS = [pytest.param(True, 375, id="js-phone"), pytest.param(False, 1280, id="nojs-desktop")]


def checker(js: bool) -> Callable[[Any], None]:
    return assert_accessible if js else (lambda page: None)


@pytest.mark.parametrize(("js", "width"), WIDTHS)
def test_T3_ticket_refused_with_E4_and_E5_then_registered_as_typed(
    desk: Desk, open_page: Callable[..., Any], shot: Callable[[Any, str], Path], js: bool, width: int
) -> None:
    check = checker(js)
    holder = customer_with_site(desk)
    serial, ticket_id = shipped(desk), sold_ticket(desk)
    page = open_page(js=js, width=width)
    log_in(page, holder)
    open_ticket_list(page, holder)
    check(page); shot(page, "ticket-list-empty")

    page.get_by_role("link", name="チケット登録").click()
    check(page); shot(page, "ticket-input")
    page.get_by_label("チケットID", exact=True).fill("99999999")
    page.get_by_label("確認コード", exact=True).fill("AB12CD")
    page.get_by_label("シリアル番号", exact=True).fill("S/N:NOSUCHSERIAL01 A1")
    page.get_by_role("button", name="登録する").click()
    # Both refusals at once, each beside its field, and in the summary that links to them.
    summary = page.locator(".error-summary")
    summary.wait_for()
    assert E4 in summary.inner_text() and E5 in summary.inner_text()
    assert field_error(page, "チケットID") == E4
    assert field_error(page, "シリアル番号") == E5
    assert page.title().startswith("エラー")
    if js:  # the summary takes focus
        assert page.evaluate("document.activeElement.classList.contains('error-summary')")
    check(page); shot(page, "ticket-input-E4-E5")

    # As typed: the ticket ID in full-width digits, the serial as printed on its label.
    page.get_by_label("チケットID", exact=True).fill(full_width(ticket_id))
    page.get_by_label("確認コード", exact=True).fill(full_width("AB12CD"))
    page.get_by_label("シリアル番号", exact=True).fill(f"S/N:{full_width(serial.lower())} A1")
    page.get_by_role("button", name="登録する").click()
    page.get_by_role("heading", name="チケット登録 入力内容の確認").wait_for()
    shown = answers(page)
    assert shown["チケットID"] == ticket_id and shown["シリアル番号"] == serial
    assert shown["製品名"] == "AT-x510-28GTX"
    assert shown["サポート期間"] == "2026/12/01 ～ 2027/12/31"  # Q1: from the month after the sale
    assert holder.contract_number in shown["設置先拠点"]
    check(page); shot(page, "ticket-confirm")

    page.get_by_role("button", name="登録する").click()
    page.get_by_role("heading", name="登録完了").wait_for()
    done = answers(page)
    assert done["サポート期間"] == "2026/12/01 ～ 2027/12/31" and done["シリアル番号"] == serial
    # M-1: 4 business days counting from the day after Friday 11-20 (11-23 is a holiday).
    assert done["登録完了のメール"].startswith("2026/11/27")
    assert done["メール1"] == "noc@example.co.jp" and "鈴木 一郎" in done["障害時連絡先"]  # p.20 ⑥
    check(page); shot(page, "ticket-done")

    page.get_by_role("link", name="サポートチケット一覧に戻る").click()
    card = page.locator(".card", has_text=serial)
    assert ticket_id in card.inner_text() and "2026/12/01 ～ 2027/12/31" in card.inner_text()
    assert "サービスイン待ち" in card.inner_text()
    assert card.get_by_role("link", name="更新").count() == 0  # the window opens 2027-10-01
    check(page); shot(page, "ticket-list")

    # The same ticket again: refused at its field with the rule's message, nothing registered twice.
    page.get_by_role("link", name="チケット登録").click()
    page.get_by_label("チケットID", exact=True).fill(ticket_id)
    page.get_by_label("確認コード", exact=True).fill("AB12CD")
    page.get_by_label("シリアル番号", exact=True).fill(shipped(desk))
    page.get_by_role("button", name="登録する").click()
    assert field_error(page, "チケットID") == "このサポートチケットは既に登録されています。"


@pytest.mark.parametrize(("js", "width"), WIDTHS)
def test_B2_bundle_registered_with_its_option_serials(
    desk: Desk, open_page: Callable[..., Any], shot: Callable[[Any, str], Path], js: bool, width: int
) -> None:
    check = checker(js)
    holder = customer_with_site(desk)
    options = [f"OP{next(_numbers):014d}", f"PW{next(_numbers):014d}"]
    serial = shipped(desk, bundle={
        "service": "デリバリースタンダード", "term_years": 5, "sold_on": SOLD, "ticket_model": "AT-x510-DS5",
        "options": [{"serial": options[0], "code_no": "12345-02", "model": "AT-SFP10G"},
                    {"serial": options[1], "code_no": "12345-03", "model": "AT-PWR250"}],
    })
    page = open_page(js=js, width=width)
    log_in(page, holder)
    open_ticket_list(page, holder)
    page.get_by_role("link", name="バンドル登録").click()
    assert page.get_by_label("オプション品のシリアル番号").count() == 1
    check(page); shot(page, "bundle-input")

    # Without its options: refused, and the form now has a field for each option of the unit.
    page.get_by_label("シリアル番号", exact=True).fill(serial.lower())
    page.get_by_role("button", name="実行").click()
    page.locator(".error-summary").wait_for()
    assert "標準添付オプションのシリアル番号が入力されていません。" in page.locator(".error-summary").inner_text()
    option_fields = page.get_by_label("オプション品のシリアル番号", exact=True)
    assert option_fields.count() == 2
    assert option_fields.first.get_attribute("aria-invalid") == "true"
    assert "この製品の標準添付品：AT-SFP10G、AT-PWR250（2点）" in page.locator("#f-option_serials-hint").inner_text()
    check(page); shot(page, "bundle-options-missing")

    # One more field, by a post-back (no JavaScript needed); left empty, it is ignored.
    page.get_by_role("button", name="オプション品の欄を追加").click()
    option_fields = page.get_by_label("オプション品のシリアル番号", exact=True)
    assert option_fields.count() == 3
    assert page.get_by_label("シリアル番号", exact=True).input_value() == serial.lower()
    option_fields.nth(0).fill(f"S/N:{options[1]} B2")
    option_fields.nth(1).fill(full_width(options[0]))
    page.get_by_role("button", name="実行").click()
    page.get_by_role("heading", name="バンドル登録 入力内容の確認").wait_for()
    shown = answers(page)
    assert shown["シリアル番号"] == serial and shown["サポートチケットの型番"] == "AT-x510-DS5"
    assert "AT-SFP10G" in shown["オプション品のシリアル番号"] and "AT-PWR250" in shown["オプション品のシリアル番号"]
    assert shown["サポート期間"] == "2026/12/01 ～ 2032/02/29"  # 5 years: 63 months
    check(page); shot(page, "bundle-confirm")

    page.get_by_role("button", name="登録する").click()
    page.get_by_role("heading", name="登録完了").wait_for()
    done = answers(page)
    assert done["チケットID"] == "保守バンドル（AT-x510-DS5）"
    assert all(option in done["オプション品のシリアル番号"] for option in options)
    check(page); shot(page, "bundle-done")
    page.get_by_role("link", name="サポートチケット一覧に戻る").click()
    assert "AT-x510-DS5" in page.locator(".card", has_text=serial).inner_text()


@pytest.mark.parametrize(("js", "width"), WIDTHS)
def test_R2_renewal_refused_before_its_window_and_accepted_inside_it(
    desk: Desk, open_page: Callable[..., Any], shot: Callable[[Any, str], Path], js: bool, width: int
) -> None:
    check = checker(js)
    holder = customer_with_site(desk)
    serial = shipped(desk)
    desk.app.registrations.register_ticket(UUID(holder.site_id), sold_ticket(desk), "AB12CD", serial)
    renewal = sold_ticket(desk, kind="renewal")
    page = open_page(js=js, width=width)
    log_in(page, holder)
    open_ticket_list(page, holder)
    card = page.locator(".card", has_text=serial)
    assert card.get_by_role("link", name="更新").count() == 0  # covered until 2027-12-31

    # The renewal's address before its window: the rule's message and the window's dates.
    response = page.goto(f"/portal/registrations/{serial}/renewal")
    assert response is not None and response.status == 409
    assert "更新可能な期間ではありません。" in page.locator(".error-summary").inner_text()
    assert "2027/10/01 ～ 2028/03/30" in page.locator("main").inner_text()
    assert page.get_by_role("button", name="更新する").count() == 0
    check(page); shot(page, "renewal-before-window")

    # The clock inside the window (R-2: from 3 months before the end); the session has long
    # idled out by then, so the customer logs in again.
    desk.clock.set(datetime(2027, 11, 1, 10, 0, tzinfo=TOKYO))
    log_in(page, holder)
    open_ticket_list(page, holder)
    card = page.locator(".card", has_text=serial)
    assert "更新できる期間：2027/10/01 ～ 2028/03/30" in card.inner_text()
    check(page); shot(page, "ticket-list-renewal-open")
    card.get_by_role("link", name="更新").click()
    check(page); shot(page, "renewal-input")
    page.get_by_label("チケットID", exact=True).fill("99999999")
    page.get_by_label("確認コード", exact=True).fill("AB12CD")
    page.get_by_role("button", name="更新する").click()
    assert field_error(page, "チケットID") == E4
    check(page); shot(page, "renewal-input-E4")
    page.get_by_label("チケットID", exact=True).fill(full_width(renewal))
    page.get_by_role("button", name="更新する").click()
    page.get_by_role("heading", name="更新 入力内容の確認").wait_for()
    shown = answers(page)
    assert shown["シリアル番号"] == serial and shown["現在のサポート期間"] == "2026/12/01 ～ 2027/12/31"
    assert shown["更新後のサポート期間"] == "2028/01/01 ～ 2028/12/31"  # without a gap
    check(page); shot(page, "renewal-confirm")
    page.get_by_role("button", name="更新する").click()
    page.get_by_role("heading", name="更新完了").wait_for()
    done = answers(page)
    assert done["サポート期間"] == "2028/01/01 ～ 2028/12/31" and done["チケットID"] == renewal
    check(page); shot(page, "renewal-done")
    page.get_by_role("link", name="サポートチケット一覧に戻る").click()
    card = page.locator(".card", has_text=serial)
    assert "2028/01/01 ～ 2028/12/31" in card.inner_text() and f"{renewal}（更新）" in card.inner_text()


@pytest.mark.parametrize(("js", "width"), WIDTHS)
def test_K1_bulk_sheet_checked_then_registered_with_each_rows_result(
    desk: Desk, open_page: Callable[..., Any], shot: Callable[[Any, str], Path], tmp_path: Path, js: bool, width: int
) -> None:
    check = checker(js)
    site = f"大阪支店{uuid4().hex[:4]}"
    holder = customer_with_site(desk, site_name=site)
    page = open_page(js=js, width=width)
    log_in(page, holder)
    open_ticket_list(page, holder)
    page.get_by_role("link", name="一括登録").click()
    check(page); shot(page, "bulk-upload")

    # Nothing chosen: the field's own error.
    page.get_by_role("button", name="確認").click()
    assert field_error(page, "ファイル") == "ファイルを選択してください。"
    check(page); shot(page, "bulk-no-file")

    with page.expect_download() as downloading:
        page.get_by_role("link", name=re.compile("テンプレート")).click()
    template = downloading.value.path().read_bytes()
    assert openpyxl.load_workbook(io.BytesIO(template))["一括登録"] is not None
    good = [(shipped(desk), sold_ticket(desk)) for _ in range(2)]
    rows = [("新規", site, ticket_id, "AB12CD", serial) for serial, ticket_id in good]
    rows.append(("新規", site, sold_ticket(desk), "AB12CD", "NOSUCHSERIAL0001"))  # E5 on its row
    sheet = tmp_path / "一括登録.xlsx"
    sheet.write_bytes(filled(rows, template))

    page.get_by_label("ファイル", exact=True).set_input_files(str(sheet))
    page.get_by_role("button", name="確認").click()
    page.get_by_role("heading", name="一括登録の確認").wait_for()
    page.get_by_text("確認が終わりました").wait_for()
    results = page.locator("table").inner_text()
    assert "検証のみ：この行は登録できます" in results and E5 in results
    assert "登録済み" not in results and results.count("登録できます") >= 2  # a check registers nothing
    check(page); shot(page, "bulk-checked")
    assert desk.app.registrations.contract_covering(good[0][0]) is None  # a check registers nothing

    page.get_by_role("link", name="一括登録に戻る").click()
    page.get_by_label("ファイル", exact=True).set_input_files(str(sheet))
    page.get_by_role("button", name="登録する").click()
    page.get_by_role("heading", name="一括登録の結果").wait_for()
    # While the job runs the page shows its progress and loads itself again (no JavaScript needed).
    page.get_by_text("一括登録が終わりました").wait_for(timeout=60_000)
    results = page.locator("table").inner_text()
    assert results.count("登録済み") == 2 and E5 in results
    check(page); shot(page, "bulk-done")
    with page.expect_download() as downloading:
        page.get_by_role("link", name="結果シートをダウンロード").click()
    columns = result_columns(downloading.value.path().read_bytes())
    assert [str(columns[r][0]).split()[0] for r in (3, 4, 5)] == ["登録済み", "登録済み", "エラー"]
    assert E5 in str(columns[5][2])

    open_ticket_list(page, holder)
    assert all(page.locator(".card", has_text=serial).count() == 1 for serial, _ in good)


def test_Q2_another_customers_registrations_site_and_jobs_are_not_found(
    desk: Desk, open_page: Callable[..., Any], shot: Callable[[Any, str], Path]
) -> None:
    owner = customer_with_site(desk)
    serial = shipped(desk)
    desk.app.registrations.register_ticket(UUID(owner.site_id), sold_ticket(desk), "AB12CD", serial)
    sheet = filled([("新規", "東京本社", sold_ticket(desk), "AB12CD", shipped(desk))])
    answer, _ = desk.bulk.submit(UUID(owner.company_id), sheet, "sheet.xlsx")
    other = customer_with_site(desk)
    page = open_page()
    log_in(page, other)
    for url in (
        f"/portal/sites/{owner.site_id}/tickets",
        f"/portal/sites/{owner.site_id}/tickets/new",
        f"/portal/sites/{owner.site_id}/bundles/new",
        f"/portal/registrations/{serial}/renewal",
        f"/portal/registrations/{serial}/registered",
        f"/portal/companies/{owner.company_id}/bulk",
        f"/portal/bulk/{answer['job_id']}",
        f"/portal/bulk/{answer['job_id']}/result.xlsx",
        f"/portal/sites/{uuid4()}/tickets",
    ):
        response = page.goto(url)
        assert response is not None and response.status == 404, url
        assert serial not in page.content() and owner.contract_number not in page.content()
    assert_accessible(page); shot(page, "not-found")

    # A post to the owner's site with this customer's own valid form token: not found, nothing registered.
    page.goto(f"/portal/sites/{other.site_id}/tickets/new")
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    unit, ticket_id = shipped(desk), sold_ticket(desk)
    response = page.request.post(f"/portal/sites/{owner.site_id}/tickets/confirm", form={
        "csrf_token": token, "ticket_id": ticket_id, "verification_code": "AB12CD", "serial": unit,
    })
    assert response.status == 404
    assert desk.app.registrations.contract_covering(unit) is None


def test_T6_a_confirmation_posted_twice_registers_once_and_shows_the_same_completion(
    desk: Desk, open_page: Callable[..., Any]
) -> None:
    """A double click (or a reload of the POST) on 登録する: the screen's idempotency key
    answers the first registration again instead of TICKET_ALREADY_REGISTERED."""
    holder = customer_with_site(desk)
    serial, ticket_id = shipped(desk), sold_ticket(desk)
    page = open_page()
    log_in(page, holder)
    page.goto(f"/portal/sites/{holder.site_id}/tickets/new")
    page.get_by_label("チケットID", exact=True).fill(ticket_id)
    page.get_by_label("確認コード", exact=True).fill("AB12CD")
    page.get_by_label("シリアル番号", exact=True).fill(serial)
    page.get_by_role("button", name="登録する").click()
    page.get_by_role("heading", name="チケット登録 入力内容の確認").wait_for()
    fields = {
        name: page.locator(f"form[action$='/tickets/confirm'] input[name={name}]").get_attribute("value") or ""
        for name in ("csrf_token", "ticket_id", "verification_code", "serial", "confirm_key")
    }
    first = page.request.post(f"/portal/sites/{holder.site_id}/tickets/confirm", form=fields, max_redirects=0)
    again = page.request.post(f"/portal/sites/{holder.site_id}/tickets/confirm", form=fields, max_redirects=0)
    assert first.status == again.status == 303
    assert first.headers["location"] == again.headers["location"] == f"/portal/registrations/{serial}/registered"
    listing = desk.app.registrations.contract_covering(serial)
    assert listing is not None and len(listing.registrations) == 1
    # The event names the customer as its actor, with the request's id.
    history = desk.app.history.contract_history(holder.contract_number)["events"]
    registered = [event for event in history if event["data"].get("serial") == serial]
    assert len(registered) == 1
    assert registered[0]["actor"] == {"kind": "account", "id": holder.account_id}
    assert registered[0]["request_id"]


def test_S5_a_site_without_a_fault_contact_says_so_before_anything_is_typed(
    desk: Desk, open_page: Callable[..., Any]
) -> None:
    holder = customer_with_site(desk)
    app = desk.app
    company = app.companies.register_company(UUID(holder.account_id), "株式会社ベータ")
    bare = app.companies.add_site(company["company_id"], {
        "name": "名古屋営業所", "postal_code": "1000001", "street": "千代田2-2", "person": "高橋 次郎",
        "phone": "052-123-4567", "email": "jiro@example.co.jp",
    })
    page = open_page()
    log_in(page, holder)
    page.goto(f"/portal/sites/{bare['site_id']}/tickets/new")
    warning = page.locator(".warning")
    assert "障害時連絡先が登録されていません" in warning.inner_text()
    assert warning.get_by_role("link", name="障害時連絡先 新規登録").get_attribute("href") == (
        f"/portal/sites/{bare['site_id']}/contacts/new")
    page.get_by_label("チケットID", exact=True).fill(sold_ticket(desk))
    page.get_by_label("確認コード", exact=True).fill("AB12CD")
    page.get_by_label("シリアル番号", exact=True).fill(shipped(desk))
    page.get_by_role("button", name="登録する").click()
    assert "障害時連絡先を登録してから製品を登録してください。" in page.locator(".error-summary").inner_text()
    assert_accessible(page)


def test_K1_a_job_still_running_shows_its_progress_and_reloads_itself(
    desk: Desk, open_page: Callable[..., Any], shot: Callable[[Any, str], Path]
) -> None:
    """A job no worker has finished yet (here: recorded and never handed out): its page says how
    far it is and asks the browser to load it again (a Refresh header: no JavaScript needed)."""
    from lifecycle.aggregates.bulk_job import BulkJob

    holder = customer_with_site(desk)
    job = BulkJob(UUID(holder.company_id), "大量.xlsx", False, 250, [], {"kind": "account", "id": holder.account_id})
    desk.app.save(job)
    page = open_page(width=375)
    log_in(page, holder)
    response = page.goto(f"/portal/bulk/{job.id}")
    assert response is not None and response.headers.get("refresh") == "3"
    assert "処理中です（0 / 250 行）" in page.locator("main").inner_text()
    assert page.get_by_label(re.compile("処理中です")).get_attribute("max") == "100"
    assert page.get_by_role("link", name="結果シートをダウンロード").count() == 0  # until it is done
    assert_accessible(page); shot(page, "bulk-running")
