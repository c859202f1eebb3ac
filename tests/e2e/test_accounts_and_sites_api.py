"""Accounts (A-1, A-2, A-3), companies (S-1), sites (S-2, S-3) and fault contacts (S-4)."""

from __future__ import annotations

import re
from datetime import timedelta
from uuid import UUID

from tests.e2e.conftest import assert_problem
from tests.scenario import Flow

SIGN_UP = {
    "email": "taro@example.co.jp",
    "password": "secret123",
    "name": "山田 太郎",
    "company_name": "株式会社サンプル",
    "phone": "03-1234-5678",
    "agree_terms": True,
}


class TestAccounts:
    def test_A1_sign_up_creates_a_provisional_account(self, flow: Flow) -> None:
        account = flow.post("/v1/accounts", SIGN_UP)
        assert account["status"] == "provisional"
        assert account["email"] == SIGN_UP["email"]
        assert "password" not in account and "password_hash" not in account
        assert flow.client.get(f"/v1/accounts/{account['account_id']}").json()["status"] == "provisional"

    def test_A1_sign_up_needs_consent_to_the_terms(self, flow: Flow) -> None:
        response = flow.client.post("/v1/accounts", json={**SIGN_UP, "agree_terms": False})
        assert_problem(response, 422, "TERMS_NOT_ACCEPTED")

    def test_A1_password_needs_letters_and_digits_and_8_characters(self, flow: Flow) -> None:
        for password in ("abcdefgh", "12345678", "abc123"):
            response = flow.client.post("/v1/accounts", json={**SIGN_UP, "password": password})
            assert_problem(response, 422, "WEAK_PASSWORD")

    def test_A1_every_field_is_required(self, flow: Flow) -> None:
        for field in ("email", "password", "name", "company_name", "phone", "agree_terms"):
            body = {k: v for k, v in SIGN_UP.items() if k != field}
            body = assert_problem(flow.client.post("/v1/accounts", json=body), 422, "VALIDATION_ERROR")
            assert field in body["detail"]

    def test_A1_phone_must_be_hyphen_separated(self, flow: Flow) -> None:
        response = flow.client.post("/v1/accounts", json={**SIGN_UP, "phone": "0312345678"})
        assert_problem(response, 422, "INVALID_PHONE")

    def test_A4_a_registered_address_is_answered_as_a_new_one_and_its_owner_is_told(self, flow: Flow) -> None:
        """No yes/no answer to anyone: the same status and body shape as a new sign-up; the
        account is not created again, and its owner gets the "already registered" notice."""
        first = flow.post("/v1/accounts", SIGN_UP)
        response = flow.client.post("/v1/accounts", json={**SIGN_UP, "email": "TARO@example.co.jp"})
        assert response.status_code == 201, response.text
        again = response.json()
        assert set(again) == set(first) and again["status"] == first["status"] == "provisional"
        assert again["account_id"] != first["account_id"]
        assert flow.client.get(f"/v1/accounts/{again['account_id']}").status_code == 404  # nothing was made
        events = [type(e).__name__ for e in flow.app.events.get(UUID(first["account_id"]))]
        assert events[-1] == "SignUpRepeated"

    def test_A2_confirmation_token_activates_the_account(self, flow: Flow) -> None:
        account = flow.post("/v1/accounts", SIGN_UP)
        token = flow.app.accounts.confirmation_token(UUID(account["account_id"]))
        assert flow.post("/v1/accounts/verify", {"token": token}, expect=200)["status"] == "active"

    def test_A2_opening_the_url_again_answers_E1(self, flow: Flow) -> None:
        account = flow.post("/v1/accounts", SIGN_UP)
        token = flow.app.accounts.confirmation_token(UUID(account["account_id"]))
        flow.post("/v1/accounts/verify", {"token": token}, expect=200)
        response = flow.client.post("/v1/accounts/verify", json={"token": token})
        assert_problem(response, 404, "PROVISIONAL_USER_NOT_FOUND", "仮ユーザー情報が登録されていません。")

    def test_A2_unknown_or_forged_token_answers_E1(self, flow: Flow) -> None:
        account = flow.post("/v1/accounts", SIGN_UP)
        forged = UUID(account["account_id"]).hex + ".0123456789abcdef0123456789abcdef"
        for token in ("nonsense", forged):
            response = flow.client.post("/v1/accounts/verify", json={"token": token})
            assert_problem(response, 404, "PROVISIONAL_USER_NOT_FOUND", "仮ユーザー情報が登録されていません。")
        assert flow.client.get(f"/v1/accounts/{account['account_id']}").json()["status"] == "provisional"

    def test_A2_confirmation_url_is_valid_24_hours(self, flow: Flow, clock) -> None:  # noqa: ANN001
        account = flow.post("/v1/accounts", SIGN_UP)
        token = flow.app.accounts.confirmation_token(UUID(account["account_id"]))
        clock.set(clock.now() + timedelta(hours=24, seconds=1))
        response = flow.client.post("/v1/accounts/verify", json={"token": token})
        assert_problem(response, 404, "PROVISIONAL_USER_NOT_FOUND")

    def test_A3_profile_fields_can_be_edited(self, flow: Flow) -> None:
        account_id = flow.active_account()
        response = flow.client.patch(f"/v1/accounts/{account_id}", json={"name": "山田 次郎", "phone": "06-1111-2222"})
        assert response.status_code == 200, response.text
        assert response.json()["name"] == "山田 次郎"
        assert flow.client.get(f"/v1/accounts/{account_id}").json()["phone"] == "06-1111-2222"

    def test_A3_email_is_not_a_plain_profile_edit(self, flow: Flow) -> None:
        """It waits for the confirmation mail to the new address (see test_account_email_and_password_api)."""
        account_id = flow.active_account()
        before = flow.client.get(f"/v1/accounts/{account_id}").json()["email"]
        response = flow.client.patch(f"/v1/accounts/{account_id}", json={"email": "new@example.co.jp"})
        assert response.status_code == 200, response.text
        assert response.json()["email"] == before and response.json()["pending_email"] == "new@example.co.jp"
        assert flow.client.get(f"/v1/accounts/{account_id}").json()["email"] == before

    def test_unknown_account_is_404(self, flow: Flow) -> None:
        response = flow.client.get("/v1/accounts/00000000-0000-0000-0000-000000000000")
        assert_problem(response, 404, "ACCOUNT_NOT_FOUND")


class TestCompanies:
    def test_S1_company_gets_a_contract_number_SU_and_8_digits(self, flow: Flow) -> None:
        numbers = {flow.company()["contract_number"] for _ in range(3)}
        assert len(numbers) == 3
        assert all(re.fullmatch(r"SU\d{8}", n) for n in numbers)

    def test_S1_company_name_can_be_changed(self, flow: Flow) -> None:
        company = flow.company(name="旧社名")
        response = flow.client.patch(f"/v1/companies/{company['company_id']}", json={"name": "新社名"})
        assert response.json()["name"] == "新社名"
        assert response.json()["contract_number"] == company["contract_number"]

    def test_provisional_account_cannot_register_a_company(self, flow: Flow) -> None:
        account = flow.post("/v1/accounts", SIGN_UP)
        response = flow.client.post("/v1/companies", json={"account_id": account["account_id"], "name": "X"})
        assert_problem(response, 409, "ACCOUNT_NOT_ACTIVE")

    def test_unknown_account_cannot_register_a_company(self, flow: Flow) -> None:
        response = flow.client.post(
            "/v1/companies", json={"account_id": "00000000-0000-0000-0000-000000000000", "name": "X"}
        )
        assert_problem(response, 422, "ACCOUNT_NOT_FOUND")

    def test_unknown_company_is_404(self, flow: Flow) -> None:
        unknown = "00000000-0000-0000-0000-000000000000"
        assert_problem(flow.client.patch(f"/v1/companies/{unknown}", json={"name": "X"}), 404, "COMPANY_NOT_FOUND")
        response = flow.client.post(f"/v1/companies/{unknown}/sites", json={
            "name": "n", "postal_code": "1000001", "street": "s", "person": "p", "phone": "03-1234-5678",
            "email": "a@example.co.jp"})
        assert_problem(response, 404, "COMPANY_NOT_FOUND")


class TestSites:
    def test_S2_site_keeps_its_address_person_phone_and_email(self, flow: Flow) -> None:
        company = flow.company()
        site = flow.site(company["company_id"])
        again = flow.client.get(f"/v1/sites/{site['site_id']}").json()
        assert again == site
        assert site["postal_code"] == "1000001"
        assert (site["prefecture"], site["city"], site["street"]) == ("東京都", "千代田区", "千代田1-1")
        assert site["contract_number"] == company["contract_number"]

    def test_S2_phone_must_be_hyphen_separated(self, flow: Flow) -> None:
        company = flow.company()
        response = flow.client.post(f"/v1/companies/{company['company_id']}/sites", json={
            "name": "n", "postal_code": "1000001", "street": "s", "person": "p", "phone": "03 1234 5678",
            "email": "a@example.co.jp"})
        assert_problem(response, 422, "INVALID_PHONE")

    def test_S2_postal_code_has_7_digits(self, flow: Flow) -> None:
        company = flow.company()
        response = flow.client.post(f"/v1/companies/{company['company_id']}/sites", json={
            "name": "n", "postal_code": "100-00X1", "street": "s", "person": "p", "phone": "03-1234-5678",
            "email": "a@example.co.jp"})
        assert_problem(response, 422, "INVALID_POSTAL_CODE")

    def test_S3_prefecture_and_city_are_filled_from_the_postal_code(self, flow: Flow) -> None:
        company = flow.company()
        site = flow.site(company["company_id"], postal_code="530-0001", prefecture=None, city=None)
        assert (site["prefecture"], site["city"]) == ("大阪府", "大阪市北区")

    def test_S3_address_not_matching_the_postal_code_is_refused(self, flow: Flow) -> None:
        company = flow.company()
        response = flow.client.post(f"/v1/companies/{company['company_id']}/sites", json={
            "name": "n", "postal_code": "530-0001", "prefecture": "東京都", "street": "s", "person": "p",
            "phone": "03-1234-5678", "email": "a@example.co.jp"})
        assert_problem(response, 422, "ADDRESS_MISMATCH")

    def test_S3_large_office_code_is_E2_with_a_hint(self, flow: Flow) -> None:
        company = flow.company()
        response = flow.client.post(f"/v1/companies/{company['company_id']}/sites", json={
            "name": "n", "postal_code": "060-8621", "street": "s", "person": "p", "phone": "03-1234-5678",
            "email": "a@example.co.jp"})
        body = assert_problem(response, 422, "ADDRESS_UNDEFINED", "未定義の住所が入力されました。")
        assert body["ordinary_postal_code"] == "0600001"
        assert "0600001" in body["detail"]

    def test_S3_unknown_postal_code_is_E2(self, flow: Flow) -> None:
        response = flow.client.get("/v1/postal-codes/0000000")
        assert_problem(response, 422, "ADDRESS_UNDEFINED", "未定義の住所が入力されました。")

    def test_S3_postal_code_lookup(self, flow: Flow) -> None:
        response = flow.client.get("/v1/postal-codes/100-0001")
        assert response.json() == {"postal_code": "1000001", "prefecture": "東京都", "city": "千代田区", "town": "千代田"}

    def test_S4_site_edit_changes_only_what_is_given(self, flow: Flow) -> None:
        site = flow.site(flow.company()["company_id"])
        response = flow.client.patch(f"/v1/sites/{site['site_id']}", json={"postal_code": "530-0001", "street": "梅田1-1"})
        assert response.status_code == 200, response.text
        changed = response.json()
        assert (changed["prefecture"], changed["city"], changed["street"]) == ("大阪府", "大阪市北区", "梅田1-1")
        assert changed["person"] == site["person"]

    def test_S4_site_edit_is_validated_like_a_new_site(self, flow: Flow) -> None:
        site = flow.site(flow.company()["company_id"])
        response = flow.client.patch(f"/v1/sites/{site['site_id']}", json={"postal_code": "0608621"})
        assert_problem(response, 422, "ADDRESS_UNDEFINED")
        assert flow.client.get(f"/v1/sites/{site['site_id']}").json() == site

    def test_S4_fault_contact_has_mail1_and_mail2_and_can_be_edited(self, flow: Flow) -> None:
        site = flow.site(flow.company()["company_id"])
        contact = flow.fault_contact(site["site_id"])
        assert (contact["mail1"], contact["mail2"]) == ("noc@example.co.jp", "ichiro@example.co.jp")
        assert contact["prefecture"] == "東京都"
        response = flow.client.patch(f"/v1/fault-contacts/{contact['contact_id']}", json={"mail2": "new@example.co.jp"})
        assert response.json()["mail2"] == "new@example.co.jp"
        assert flow.client.get(f"/v1/fault-contacts/{contact['contact_id']}").json()["mail2"] == "new@example.co.jp"
        assert flow.client.get(f"/v1/sites/{site['site_id']}").json()["fault_contact_ids"] == [contact["contact_id"]]

    def test_S4_fault_contact_mail_must_be_an_address(self, flow: Flow) -> None:
        site = flow.site(flow.company()["company_id"])
        response = flow.client.post(f"/v1/sites/{site['site_id']}/fault-contacts", json={
            "company": "c", "postal_code": "1000001", "street": "s", "person": "p", "phone": "03-1234-5678",
            "mail1": "not-an-address"})
        body = assert_problem(response, 422, "VALIDATION_ERROR")
        assert "mail1" in body["detail"]

    def test_unknown_site_and_contact_are_404(self, flow: Flow) -> None:
        unknown = "00000000-0000-0000-0000-000000000000"
        assert_problem(flow.client.patch(f"/v1/sites/{unknown}", json={"name": "x"}), 404, "SITE_NOT_FOUND")
        assert_problem(flow.client.get(f"/v1/fault-contacts/{unknown}"), 404, "FAULT_CONTACT_NOT_FOUND")
        response = flow.client.post(f"/v1/sites/{unknown}/fault-contacts", json={
            "company": "c", "postal_code": "1000001", "street": "s", "person": "p", "phone": "03-1234-5678",
            "mail1": "a@example.co.jp"})
        assert_problem(response, 404, "SITE_NOT_FOUND")
