"""What the portal makes of what a person typed, and where the service's mails send them."""

from __future__ import annotations

from api.portal.forms import Form, check_schema, folded, folded_address, read_form
from api.schemas import AccountCreate
from lifecycle.settings import Settings


def test_S2_a_phone_or_postal_code_typed_full_width_with_long_dashes_is_folded() -> None:
    assert folded("０３ー１２３４ー５６７８ ") == "03-1234-5678"
    assert folded("〒１００－０００１") == "〒100-0001"


def test_S2_a_street_keeps_the_katakana_long_mark_and_hyphenates_between_digits() -> None:
    assert folded_address("千代田１ー１") == "千代田1-1"
    assert folded_address("センタービル３Ｆ") == "センタービル3F"


def test_A1_an_empty_field_is_named_in_its_message_and_the_summary_follows_the_form() -> None:
    form = read_form({"email": "", "name": ""}, ("email", "password", "name"), {"email": "メールアドレス", "name": "氏名"})
    check_schema(form, AccountCreate, {"email": "", "password": "", "name": "", "company_name": "会社",
                                       "phone": "03-1234-5678", "agree_terms": True})
    assert form.errors["email"] == "メールアドレスを入力してください。"
    assert form.errors["name"] == "氏名を入力してください。"
    assert [name for name, _ in form.summary] == ["email", "name"]
    assert not form.ok and Form().ok


def test_A2_A3_A4_mailed_links_open_the_portal_on_the_service_s_own_address() -> None:
    settings = Settings(public_url="https://support.example.co.jp/")
    assert settings.mailed_link("confirmation") == "https://support.example.co.jp/portal/signup/confirm"
    assert settings.mailed_link("email_change") == "https://support.example.co.jp/portal/email/confirm"
    assert settings.mailed_link("password_reset") == "https://support.example.co.jp/portal/password-reset/confirm"
    own = Settings(public_url="https://a.example", confirmation_url_base="https://b.example/c")
    assert own.mailed_link("confirmation") == "https://b.example/c"
