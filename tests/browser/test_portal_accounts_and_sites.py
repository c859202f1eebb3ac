"""The seed's first half in a real browser (p.5–15, p.34, Q15, Q17, E1, E2): sign-up with the
mailed confirmation, login, companies, sites with 住所検索, fault contacts, the profile and the
e-mail change, the forgotten password, logout — with JavaScript on and off, axe on every page,
and what another customer and a forged form can do (nothing)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx2 as httpx
import pytest

from tests.browser.conftest import (
    PASSWORD,
    Customer,
    Served,
    assert_accessible,
    log_in,
    sign_up_and_confirm,
    unique_email,
)


def fill_site(page: Any, postal_code: str = "１００ー０００１") -> None:
    page.get_by_label("拠点名").fill("東京本社")
    page.get_by_label("郵便番号").fill(postal_code)
    page.get_by_role("button", name="住所検索").click()
    page.get_by_label("番地").fill(page.get_by_label("番地").input_value() + "１ー１")
    page.get_by_label("担当者名").fill("佐藤 花子")
    page.get_by_label("電話番号").fill("０３－１２３４－５６７８")
    page.get_by_label("メールアドレス").fill("hanako@example.co.jp")


def register_company_site_and_contact(page: Any, shot: Callable[[Any, str], Any], check: Callable[[Any], None]) -> str:
    """From ユーザートップ to a site with its fault contact; answers the site's detail URL."""
    page.get_by_role("link", name="設置先会社 新規登録").click()
    check(page); shot(page, "company-new")
    page.get_by_label("設置先会社名").fill("株式会社サンプル")
    page.get_by_role("button", name="登録する").click()
    check(page); shot(page, "company-check")
    page.get_by_role("button", name="登録する").click()
    contract = page.get_by_text(re.compile(r"契約番号：SU\d{8}")).first
    assert re.search(r"SU\d{8}", contract.inner_text())
    check(page); shot(page, "top-with-company")

    page.get_by_role("link", name="設置先拠点", exact=True).click()
    check(page); shot(page, "sites-empty")
    page.get_by_role("link", name="設置先拠点 新規登録").click()
    fill_site(page)
    assert page.get_by_label("都道府県").input_value() == "東京都"
    assert page.get_by_label("市区町村").input_value() == "千代田区"
    assert page.get_by_label("番地").input_value() == "千代田１ー１"
    check(page); shot(page, "site-form-filled")
    page.get_by_role("button", name="登録する").click()
    # The check page shows what will be saved: folded and hyphenated.
    answers = page.locator(".answers").inner_text()
    for shown in ("100-0001", "東京都", "千代田区", "千代田1-1", "03-1234-5678"):
        assert shown in answers
    check(page); shot(page, "site-check")
    page.get_by_role("button", name="登録する").click()
    page.get_by_role("heading", name="設置先拠点詳細").wait_for()
    check(page); shot(page, "site-detail-no-contact")
    site_url = page.url.split("?")[0]

    page.get_by_role("link", name="障害時連絡先 新規登録").click()
    page.get_by_label("会社名").fill("株式会社サンプル")
    page.get_by_label("郵便番号").fill("1000001")
    page.get_by_role("button", name="住所検索").click()
    page.get_by_label("番地").fill("千代田1-1")
    page.get_by_label("担当者名").fill("鈴木 一郎")
    page.get_by_label("電話番号").fill("03-2345-6789")
    page.get_by_label("メール1").fill("noc@example.co.jp")
    check(page); shot(page, "contact-form")
    page.get_by_role("button", name="登録する").click()
    check(page); shot(page, "contact-check")
    page.get_by_role("button", name="登録する").click()
    page.get_by_text("障害時連絡先を登録しました。").wait_for()
    assert "noc@example.co.jp" in page.locator("main").inner_text()
    check(page); shot(page, "site-detail")
    return site_url


@pytest.mark.parametrize("js", [True, False], ids=["js", "no-js"])
def test_A1_A2_S1_S4_the_seed_flow_from_sign_up_to_a_fault_contact(
    served: Served, new_page: Callable[..., Any], shot: Callable[[Any, str], Any], js: bool
) -> None:
    """新規登録 → 同意する → the form (the password rule shown before it is broken) → 確認 →
    確認メールを送信しました → the mailed URL → ログイン → 設置先会社 → 設置先拠点 with 住所検索
    → 障害時連絡先 → ログアウト; every page passes axe (with JavaScript on)."""
    page = new_page(js=js)
    check = assert_accessible if js else (lambda page: None)
    address = unique_email("flow")
    page.goto("/")
    page.get_by_role("heading", name="ログイン").wait_for()
    check(page); shot(page, "login")
    page.get_by_role("link", name="新規登録").click()
    check(page); shot(page, "terms")
    page.get_by_role("button", name="同意する").click()
    assert "英字と数字を両方含む8文字以上" in page.locator("main").inner_text()  # before it is broken
    check(page); shot(page, "signup-form")
    page.get_by_role("button", name="登録する").click()  # everything empty: errors at each field
    summary = page.locator(".error-summary")
    assert summary.is_visible()
    if js:
        assert page.evaluate("document.activeElement.classList.contains('error-summary')")
    assert page.get_by_label("メールアドレス").get_attribute("aria-invalid") == "true"
    check(page); shot(page, "signup-errors")
    page.get_by_label("メールアドレス").fill(address.replace("flow", "ｆｌｏｗ"))  # full-width, as typed
    page.get_by_label("パスワード", exact=True).fill("short1")
    page.get_by_label("パスワード（確認）").fill("short1")
    page.get_by_label("氏名").fill("山田 太郎")
    page.get_by_label("会社名").fill("株式会社サンプル")
    page.get_by_label("電話番号").fill("０３ー１２３４ー５６７８")
    page.get_by_role("button", name="登録する").click()
    assert "パスワードは英字と数字を含む8文字以上で入力してください。" in page.locator("#f-password-error").inner_text()
    page.get_by_label("パスワード", exact=True).fill(PASSWORD)
    page.get_by_label("パスワード（確認）").fill(PASSWORD)
    page.get_by_role("button", name="登録する").click()
    answers = page.locator(".answers").inner_text()
    assert address in answers and "03-1234-5678" in answers  # shown normalised
    check(page); shot(page, "signup-check")
    page.get_by_role("button", name="登録する").click()
    page.get_by_role("heading", name="確認メールを送信しました").wait_for()
    check(page); shot(page, "signup-sent")

    link = served.link_in_mail(address, "signup/confirm")
    assert link.startswith(f"{served.url}/portal/signup/confirm?token=")  # the service's own address
    page.goto(link)
    page.get_by_role("heading", name="新規会員登録完了").wait_for()
    check(page); shot(page, "signup-confirmed")
    page.goto(link)  # again: E1, worded as harmless
    assert "仮ユーザー情報が登録されていません。" in page.locator("main").inner_text()
    assert "そのままログインしてください" in page.locator("main").inner_text()
    check(page); shot(page, "signup-e1")

    page.get_by_role("link", name="ログイン").click()
    page.get_by_label("メールアドレス").fill(address)
    page.get_by_label("パスワード").fill("wrong-password1")
    page.get_by_role("button", name="ログイン").click()
    assert "メールアドレスまたはパスワードが正しくありません。" in page.locator(".error-summary").inner_text()
    check(page); shot(page, "login-refused")
    page.get_by_label("パスワード").fill(PASSWORD)
    page.get_by_role("button", name="ログイン").click()
    page.get_by_role("heading", name="ユーザートップ").wait_for()
    check(page); shot(page, "top-empty")

    register_company_site_and_contact(page, shot, check)

    page.get_by_role("button", name="ログアウト").click()
    page.get_by_text("ログアウトしました。").wait_for()
    page.goto("/portal/")
    page.get_by_role("heading", name="ログイン").wait_for()  # the session is over


def test_S3_E2_an_office_code_is_refused_at_its_field_and_several_towns_are_a_choice(
    served: Served, new_page: Callable[..., Any], shot: Callable[[Any, str], Any], customer: Customer
) -> None:
    page = new_page()
    log_in(page, customer)
    page.get_by_role("link", name="設置先会社 新規登録").click()
    page.get_by_label("設置先会社名").fill("株式会社住所")
    page.get_by_role("button", name="登録する").click()
    page.get_by_role("button", name="登録する").click()
    page.get_by_role("link", name="設置先拠点", exact=True).click()
    page.get_by_role("link", name="設置先拠点 新規登録").click()

    page.get_by_label("郵便番号").fill("100-8994")  # 東京中央郵便局: a large office's own code
    page.get_by_role("button", name="住所検索").click()
    field = page.get_by_label("郵便番号")
    assert field.get_attribute("aria-invalid") == "true"
    error = page.locator("#f-postal_code-error").inner_text()
    assert "未定義の住所が入力されました。" in error and "住所から導き出される郵便番号" in error
    assert "f-postal_code-error" in (field.get_attribute("aria-describedby") or "")
    assert page.locator(".error-summary a[href='#f-postal_code']").count() == 1
    assert_accessible(page); shot(page, "e2")

    page.get_by_label("郵便番号").fill("068-0546")  # 夕張市: 南部青葉町 and 南部菊水町
    page.get_by_role("button", name="住所検索").click()
    assert page.get_by_label("市区町村").input_value() == "夕張市"
    page.get_by_label("南部菊水町").check()
    assert_accessible(page); shot(page, "towns")
    page.get_by_role("button", name="この町域を入力する").click()
    assert page.get_by_label("番地").input_value() == "南部菊水町"


def test_A3_Q17_profile_e_mail_change_and_password(
    served: Served, new_page: Callable[..., Any], shot: Callable[[Any, str], Any], customer: Customer
) -> None:
    """ユーザー情報: 更新する saves the profile; a new e-mail takes effect through the mail sent to
    it (the portal's page on the service's address); then the password is set again."""
    page = new_page()
    log_in(page, customer)
    page.get_by_role("link", name="ユーザー情報").click()
    assert_accessible(page); shot(page, "profile")
    page.get_by_label("電話番号").fill("０６－１１１１－２２２２")
    page.get_by_role("button", name="更新する").click()
    page.get_by_text("ユーザー情報を更新しました。").wait_for()
    assert page.get_by_label("電話番号").input_value() == "06-1111-2222"

    new_address = unique_email("moved")
    page.get_by_label("メールアドレス").fill(new_address)
    page.get_by_role("button", name="更新する").click()
    page.get_by_text("メールアドレス変更確認メール").first.wait_for()
    assert_accessible(page); shot(page, "profile-email-pending")
    link = served.link_in_mail(new_address, "email/confirm")
    page.goto(link)
    page.get_by_role("button", name="メールアドレスを変更する").click()
    page.get_by_role("heading", name="メールアドレスの変更をしました").wait_for()
    assert_accessible(page); shot(page, "email-changed")

    log_in(page, Customer(new_address, customer.password))
    assert "パスワードを設定し直してください" in page.locator("main").inner_text()
    page.get_by_role("link", name="ユーザー情報").click()
    page.get_by_label("現在のパスワード").fill(customer.password)
    page.get_by_label("新しいパスワード", exact=True).fill("another2027pw")
    page.get_by_label("新しいパスワード（確認）").fill("another2027pw")
    page.get_by_role("button", name="パスワードを変更する").click()
    page.get_by_text("パスワードを変更しました。").wait_for()
    assert "パスワードを設定し直してください" not in page.locator("main").inner_text()
    page.get_by_role("button", name="ログアウト").click()
    log_in(page, Customer(new_address, "another2027pw"))


def test_A4_forgotten_password_answers_alike_and_the_mailed_link_sets_a_new_one(
    served: Served, new_page: Callable[..., Any], shot: Callable[[Any, str], Any], customer: Customer
) -> None:
    page = new_page()
    page.goto("/portal/login")
    page.get_by_role("link", name="パスワードを忘れた方はこちら").click()
    assert_accessible(page); shot(page, "reset-request")
    page.get_by_label("メールアドレス").fill(unique_email("nobody"))
    page.get_by_role("button", name="送信する").click()
    unknown_answer = page.locator("main").inner_text()
    page.goto("/portal/password-reset")
    page.get_by_label("メールアドレス").fill(customer.email)
    page.get_by_role("button", name="送信する").click()
    assert page.locator("main").inner_text() == unknown_answer  # no enumeration
    assert_accessible(page); shot(page, "reset-requested")

    page.goto(served.link_in_mail(customer.email, "password-reset/confirm"))
    page.get_by_label("パスワード", exact=True).fill("reset2027pw")
    page.get_by_label("パスワード（確認）").fill("reset2027pw")
    assert_accessible(page); shot(page, "reset-form")
    page.get_by_role("button", name="設定する").click()
    page.get_by_role("heading", name="パスワードを再設定しました").wait_for()
    log_in(page, Customer(customer.email, "reset2027pw"))


def test_Q2_another_customers_pages_are_not_found(
    served: Served, new_page: Callable[..., Any], shot: Callable[[Any, str], Any], customer: Customer
) -> None:
    owner = new_page()
    log_in(owner, customer)
    site_url = register_company_site_and_contact(owner, lambda page, name: None, lambda page: None)
    site_id = site_url.rstrip("/").split("/")[-1]
    company_edit = owner.get_by_role("link", name="設置先拠点 一覧に戻る").get_attribute("href")
    owner.get_by_role("link", name="編集").last.click()
    contact_edit = owner.url

    intruder = new_page()
    log_in(intruder, sign_up_and_confirm(new_page(), served))
    for url in (site_url, f"/portal/sites/{site_id}/edit", f"/portal/sites/{site_id}/contacts/new",
                company_edit, contact_edit, "/portal/sites/not-a-uuid"):
        response = intruder.goto(url)
        assert response.status == 404, url
        intruder.get_by_role("heading", name="ページが見つかりません").wait_for()
    assert_accessible(intruder); shot(intruder, "not-found")
    # A form posted to another customer's site, with the intruder's own valid CSRF token:
    # the same not-found page, and the site is unchanged.
    token = intruder.locator("input[name=csrf_token]").first.get_attribute("value")
    posted = intruder.request.post(f"/portal/sites/{site_id}/edit", form={
        "csrf_token": token, "name": "乗っ取り", "postal_code": "1000001", "prefecture": "東京都", "city": "千代田区",
        "street": "千代田1-1", "building": "", "person": "x", "phone": "03-0000-0000", "email": "x@example.co.jp"})
    assert posted.status == 404
    owner.goto(site_url)
    assert "乗っ取り" not in owner.locator("main").inner_text()


def test_CSRF_a_form_posted_without_its_token_changes_nothing(served: Served, customer: Customer) -> None:
    """A logged-in browser made to post from elsewhere: the cookie alone is not enough."""
    with httpx.Client(base_url=served.url, follow_redirects=False) as client:
        login_page = client.get("/portal/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', login_page.text).group(1)
        client.post("/portal/login", data={"csrf_token": token, "email": customer.email, "password": customer.password})
        before = client.get("/portal/account").text
        forged = client.post("/portal/account", data={"name": "乗っ取り", "company_name": "x", "phone": "03-0000-0000",
                                                      "email": customer.email})
        assert forged.status_code == 403
        wrong = client.post("/portal/companies/new", data={"name": "偽の会社", "step": "confirmed", "csrf_token": "0" * 64})
        assert wrong.status_code == 403
        after = client.get("/portal/account").text
        assert "乗っ取り" not in after and before.count("value=") == after.count("value=")
        assert "偽の会社" not in client.get("/portal/").text


def test_the_session_cookie_is_httponly_and_samesite_lax_and_pages_carry_a_strict_csp(
    served: Served, customer: Customer
) -> None:
    with httpx.Client(base_url=served.url, follow_redirects=False) as client:
        page = client.get("/portal/login")
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
        answer = client.post("/portal/login", data={"csrf_token": token, "email": customer.email,
                                                    "password": customer.password})
        cookie = next(h for h in answer.headers.get_list("set-cookie") if h.startswith("portal_session="))
        assert "HttpOnly" in cookie and "SameSite=lax" in cookie.replace("Lax", "lax")
        assert "<script>" not in client.get("/portal/").text  # no inline script anywhere


def test_the_main_pages_fit_a_phone_375px_wide_and_pass_axe(
    served: Served, new_page: Callable[..., Any], shot: Callable[[Any, str], Any], customer: Customer
) -> None:
    page = new_page(width=375, height=812)
    for url in ("/portal/login", "/portal/signup", "/portal/signup/account?agree_terms=yes"):
        page.goto(url)
        assert_accessible(page); shot(page, "phone-" + url.strip("/").replace("/", "-").split("?")[0])
    log_in(page, customer)
    register_company_site_and_contact(page, lambda p, name: shot(p, "phone-" + name), assert_accessible)


def test_a_session_about_to_time_out_says_so_and_can_be_extended(
    served: Served, new_page: Callable[..., Any], shot: Callable[[Any, str], Any], customer: Customer
) -> None:
    """Five minutes before the idle timeout (and a minute's margin), an alert says the session
    will end; ログイン状態を延長する keeps it (any request of the customer's is activity)."""
    page = new_page()
    page.clock.install()
    log_in(page, customer)
    notice = page.get_by_role("alert").filter(has_text="まもなく自動的にログアウトします")
    assert not notice.is_visible()
    page.clock.fast_forward("23:00")
    assert not notice.is_visible()
    page.clock.fast_forward("02:30")
    notice.wait_for()
    assert_accessible(page); shot(page, "session-notice")
    page.get_by_role("button", name="ログイン状態を延長する").click()
    notice.wait_for(state="hidden")


def test_keyboard_only_the_skip_link_then_a_login_with_the_keys_alone(
    served: Served, new_page: Callable[..., Any], shot: Callable[[Any, str], Any], customer: Customer
) -> None:
    """The first Tab shows 本文へスキップ (visible focus); Enter moves to the main content; the
    form is filled and sent with the keyboard alone; the error summary's link moves focus to
    its field."""
    page = new_page()
    page.goto("/portal/login")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="本文へスキップ")
    assert page.evaluate("document.activeElement.textContent") == "本文へスキップ"
    box = skip.bounding_box()
    assert box is not None and box["x"] >= 0 and box["width"] > 0  # on screen once focused
    shot(page, "skip-link-focused")
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "f-email"
    page.keyboard.press("Enter")  # sends the empty form: errors, the summary focused
    page.locator(".error-summary").wait_for()
    assert page.evaluate("document.activeElement.classList.contains('error-summary')")
    page.keyboard.press("Tab")
    page.keyboard.press("Enter")  # the summary's first link
    assert page.evaluate("document.activeElement.id") == "f-email"
    page.keyboard.type(customer.email)
    page.keyboard.press("Tab")
    page.keyboard.type(customer.password)
    page.keyboard.press("Enter")
    page.get_by_role("heading", name="ユーザートップ").wait_for()
