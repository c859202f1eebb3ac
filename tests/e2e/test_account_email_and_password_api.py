"""A-3 (changing the e-mail, the login ID) and A-4 (a forgotten password) over HTTP, on
SQLite and PostgreSQL. The tokens are derived here as the mail sender derives them; the
mails themselves are read from a real SMTP server in tests/integration/test_account_mails.py."""

from __future__ import annotations

from datetime import timedelta
from uuid import UUID

from lifecycle.adapters.passwords import verify_password
from lifecycle.aggregates.index import email_key
from tests.e2e.conftest import assert_problem
from tests.scenario import Flow

EMAIL_CHANGE_GONE = "メールアドレス変更の受付情報が見つかりません。URLの有効期限（24時間）が切れたか、既に変更済みです。"
RESET_GONE = "パスワード再設定の受付情報が見つかりません。URLの有効期限が切れたか、既に使用済みです。もう一度お手続きください。"


def email_of(flow: Flow, account_id: str) -> str:
    return flow.client.get(f"/v1/accounts/{account_id}").json()["email"]


def request_email_change(flow: Flow, account_id: str, new_email: str) -> dict:
    response = flow.client.patch(f"/v1/accounts/{account_id}", json={"email": new_email})
    assert response.status_code == 200, response.text
    return response.json()


def events_of(flow: Flow, account_id: str) -> list[str]:
    return [type(e).__name__ for e in flow.app.events.get(UUID(account_id))]


class TestEmailChange:
    def test_A3_a_new_email_waits_for_the_confirmation_of_the_new_address(self, flow: Flow) -> None:
        account_id = flow.active_account()
        old = email_of(flow, account_id)
        answer = request_email_change(flow, account_id, "new.taro@example.co.jp")
        assert answer["email"] == old
        assert answer["pending_email"] == "new.taro@example.co.jp"
        assert answer["password_reset_required"] is False
        assert events_of(flow, account_id)[-1] == "EmailChangeRequested"

    def test_A3_the_confirmed_change_makes_the_new_address_the_login_id_and_asks_for_a_password(
        self, flow: Flow
    ) -> None:
        account_id = flow.active_account()
        request_email_change(flow, account_id, "new.taro@example.co.jp")
        token = flow.app.accounts.email_change_token(UUID(account_id))
        changed = flow.post("/v1/accounts/email/confirm", {"token": token}, expect=200)
        assert changed["email"] == "new.taro@example.co.jp"
        assert changed["pending_email"] is None
        assert changed["password_reset_required"] is True  # Q17
        assert email_of(flow, account_id) == "new.taro@example.co.jp"
        assert events_of(flow, account_id)[-1] == "EmailChanged"
        # The new address is now claimed: nobody else signs up with it. The sign-up is answered
        # as a new one (A-4: no oracle), and only the account's owner is told.
        response = flow.client.post("/v1/accounts", json={
            "email": "NEW.taro@example.co.jp", "password": "secret123", "name": "別人", "company_name": "別会社",
            "phone": "03-1111-2222", "agree_terms": True,
        })
        assert response.status_code == 201, response.text
        assert response.json()["account_id"] != account_id
        assert events_of(flow, account_id)[-1] == "SignUpRepeated"
        assert flow.app.indexed(email_key("new.taro@example.co.jp")) == UUID(account_id)

    def test_A3_an_address_already_registered_is_refused_as_the_new_email(self, flow: Flow) -> None:
        taken = email_of(flow, flow.active_account())
        account_id = flow.active_account()
        response = flow.client.patch(f"/v1/accounts/{account_id}", json={"email": taken.upper()})
        assert_problem(response, 409, "EMAIL_ALREADY_REGISTERED", "このメールアドレスは既に登録されています。")
        assert "EmailChangeRequested" not in events_of(flow, account_id)

    def test_A3_an_address_taken_after_the_request_is_refused_at_the_confirmation(self, flow: Flow) -> None:
        account_id = flow.active_account()
        request_email_change(flow, account_id, "wanted@example.co.jp")
        token = flow.app.accounts.email_change_token(UUID(account_id))
        flow.active_account(email="wanted@example.co.jp")  # someone signs up with it meanwhile
        response = flow.client.post("/v1/accounts/email/confirm", json={"token": token})
        assert_problem(response, 409, "EMAIL_ALREADY_REGISTERED")
        assert email_of(flow, account_id) != "wanted@example.co.jp"

    def test_A3_the_confirmation_url_works_once(self, flow: Flow) -> None:
        account_id = flow.active_account()
        request_email_change(flow, account_id, "once@example.co.jp")
        token = flow.app.accounts.email_change_token(UUID(account_id))
        flow.post("/v1/accounts/email/confirm", {"token": token}, expect=200)
        response = flow.client.post("/v1/accounts/email/confirm", json={"token": token})
        assert_problem(response, 404, "EMAIL_CHANGE_NOT_FOUND", EMAIL_CHANGE_GONE)

    def test_A3_the_confirmation_url_is_valid_24_hours(self, flow: Flow, clock) -> None:  # noqa: ANN001
        account_id = flow.active_account()
        old = email_of(flow, account_id)
        request_email_change(flow, account_id, "late@example.co.jp")
        token = flow.app.accounts.email_change_token(UUID(account_id))
        clock.set(clock.now() + timedelta(hours=24, seconds=1))
        response = flow.client.post("/v1/accounts/email/confirm", json={"token": token})
        assert_problem(response, 404, "EMAIL_CHANGE_NOT_FOUND")
        assert email_of(flow, account_id) == old

    def test_A3_a_newer_request_voids_the_earlier_url(self, flow: Flow, clock) -> None:  # noqa: ANN001
        account_id = flow.active_account()
        request_email_change(flow, account_id, "first@example.co.jp")
        first = flow.app.accounts.email_change_token(UUID(account_id))
        clock.set(clock.now() + timedelta(minutes=5))
        request_email_change(flow, account_id, "second@example.co.jp")
        assert_problem(flow.client.post("/v1/accounts/email/confirm", json={"token": first}), 404,
                       "EMAIL_CHANGE_NOT_FOUND")
        second = flow.app.accounts.email_change_token(UUID(account_id))
        assert flow.post("/v1/accounts/email/confirm", {"token": second}, expect=200)["email"] == "second@example.co.jp"

    def test_A3_unknown_or_forged_token_is_refused(self, flow: Flow) -> None:
        account_id = flow.active_account()
        request_email_change(flow, account_id, "forged@example.co.jp")
        forged = UUID(account_id).hex + ".0123456789abcdef0123456789abcdef"
        for token in ("nonsense", forged, "ｔｏｋｅｎ.ｘ"):
            response = flow.client.post("/v1/accounts/email/confirm", json={"token": token})
            assert_problem(response, 404, "EMAIL_CHANGE_NOT_FOUND", EMAIL_CHANGE_GONE)
        # A-2's token is no e-mail change token either.
        confirmation = flow.app.accounts.confirmation_token(UUID(account_id))
        assert_problem(flow.client.post("/v1/accounts/email/confirm", json={"token": confirmation}), 404,
                       "EMAIL_CHANGE_NOT_FOUND")

    def test_A3_a_provisional_account_cannot_change_its_email(self, flow: Flow) -> None:
        account = flow.post("/v1/accounts", {
            "email": "prov@example.co.jp", "password": "secret123", "name": "山田 太郎",
            "company_name": "株式会社サンプル", "phone": "03-1234-5678", "agree_terms": True,
        })
        response = flow.client.patch(f"/v1/accounts/{account['account_id']}", json={"email": "other@example.co.jp"})
        assert_problem(response, 409, "ACCOUNT_NOT_ACTIVE")

    def test_A3_the_same_email_and_other_fields_are_a_plain_profile_edit(self, flow: Flow) -> None:
        account_id = flow.active_account()
        email = email_of(flow, account_id)
        answer = flow.client.patch(f"/v1/accounts/{account_id}", json={"email": email, "name": "山田 次郎"}).json()
        assert answer["name"] == "山田 次郎" and answer["pending_email"] is None
        assert "EmailChangeRequested" not in events_of(flow, account_id)

    def test_A3_an_invalid_address_is_refused(self, flow: Flow) -> None:
        account_id = flow.active_account()
        response = flow.client.patch(f"/v1/accounts/{account_id}", json={"email": "not-an-address"})
        assert_problem(response, 422, "VALIDATION_ERROR")

    def test_A3_the_old_address_stays_with_the_account(self, flow: Flow) -> None:
        account_id = flow.active_account()
        old = email_of(flow, account_id)
        request_email_change(flow, account_id, "moved@example.co.jp")
        flow.post("/v1/accounts/email/confirm", {"token": flow.app.accounts.email_change_token(UUID(account_id))}, expect=200)
        other = flow.active_account()
        assert_problem(flow.client.patch(f"/v1/accounts/{other}", json={"email": old}), 409,
                       "EMAIL_ALREADY_REGISTERED")
        # ... and the account itself may take it back.
        request_email_change(flow, account_id, old)
        back = flow.post("/v1/accounts/email/confirm", {"token": flow.app.accounts.email_change_token(UUID(account_id))},
                         expect=200)
        assert back["email"] == old


class TestPasswordReset:
    def accepted(self, flow: Flow, email: str) -> dict:
        response = flow.client.post("/v1/accounts/password-reset", json={"email": email})
        assert response.status_code == 202, response.text
        flow.app.after_answer.wait()  # the request is looked up after the answer
        return response.json()

    def test_A4_the_answer_does_not_reveal_whether_the_address_is_registered(self, flow: Flow) -> None:
        account_id = flow.active_account()
        registered = self.accepted(flow, email_of(flow, account_id))
        unknown = self.accepted(flow, "nobody@example.co.jp")
        assert registered == unknown
        assert registered["status"] == "accepted" and registered["message_ja"]
        assert events_of(flow, account_id)[-1] == "PasswordResetRequested"

    def test_A4_the_link_sets_a_new_password_once(self, flow: Flow) -> None:
        account_id = flow.active_account()
        self.accepted(flow, email_of(flow, account_id).upper())
        token = flow.app.accounts.password_reset_token(UUID(account_id))
        answer = flow.post("/v1/accounts/password-reset/confirm", {"token": token, "password": "newpass456"},
                           expect=200)
        assert answer["account_id"] == account_id and "password_hash" not in answer
        account = flow.app.accounts.account(UUID(account_id))
        assert verify_password(account.password_hash, "newpass456")
        assert not verify_password(account.password_hash, "secret123")
        assert events_of(flow, account_id)[-1] == "PasswordChanged"
        again = flow.client.post("/v1/accounts/password-reset/confirm", json={"token": token, "password": "other789x"})
        assert_problem(again, 404, "PASSWORD_RESET_NOT_FOUND", RESET_GONE)
        assert verify_password(flow.app.accounts.account(UUID(account_id)).password_hash, "newpass456")

    def test_A4_the_new_password_follows_the_A1_rule(self, flow: Flow) -> None:
        account_id = flow.active_account()
        self.accepted(flow, email_of(flow, account_id))
        token = flow.app.accounts.password_reset_token(UUID(account_id))
        for weak in ("abcdefgh", "12345678", "abc123"):
            response = flow.client.post("/v1/accounts/password-reset/confirm", json={"token": token, "password": weak})
            assert_problem(response, 422, "WEAK_PASSWORD")
        # A refused password does not use the link up.
        flow.post("/v1/accounts/password-reset/confirm", {"token": token, "password": "strong123"}, expect=200)

    def test_A4_a_newer_request_voids_the_earlier_link(self, flow: Flow, clock) -> None:  # noqa: ANN001
        account_id = flow.active_account()
        email = email_of(flow, account_id)
        self.accepted(flow, email)
        first = flow.app.accounts.password_reset_token(UUID(account_id))
        clock.set(clock.now() + timedelta(minutes=1))
        self.accepted(flow, email)
        response = flow.client.post("/v1/accounts/password-reset/confirm",
                                    json={"token": first, "password": "strong123"})
        assert_problem(response, 404, "PASSWORD_RESET_NOT_FOUND")

    def test_A4_the_link_expires_after_24_hours(self, flow: Flow, clock) -> None:  # noqa: ANN001
        account_id = flow.active_account()
        self.accepted(flow, email_of(flow, account_id))
        token = flow.app.accounts.password_reset_token(UUID(account_id))
        clock.set(clock.now() + timedelta(hours=24, seconds=1))
        response = flow.client.post("/v1/accounts/password-reset/confirm",
                                    json={"token": token, "password": "strong123"})
        assert_problem(response, 404, "PASSWORD_RESET_NOT_FOUND")

    def test_A4_unknown_or_forged_token_is_refused(self, flow: Flow) -> None:
        account_id = flow.active_account()
        self.accepted(flow, email_of(flow, account_id))
        forged = UUID(account_id).hex + ".0123456789abcdef0123456789abcdef"
        for token in ("nonsense", forged):
            response = flow.client.post("/v1/accounts/password-reset/confirm",
                                        json={"token": token, "password": "strong123"})
            assert_problem(response, 404, "PASSWORD_RESET_NOT_FOUND", RESET_GONE)

    def test_A4_a_provisional_or_moved_address_gets_no_reset(self, flow: Flow) -> None:
        provisional = flow.post("/v1/accounts", {
            "email": "prov.reset@example.co.jp", "password": "secret123", "name": "山田 太郎",
            "company_name": "株式会社サンプル", "phone": "03-1234-5678", "agree_terms": True,
        })
        self.accepted(flow, "prov.reset@example.co.jp")
        assert "PasswordResetRequested" not in events_of(flow, provisional["account_id"])
        account_id = flow.active_account()
        old = email_of(flow, account_id)
        request_email_change(flow, account_id, "moved.reset@example.co.jp")
        flow.post("/v1/accounts/email/confirm", {"token": flow.app.accounts.email_change_token(UUID(account_id))}, expect=200)
        self.accepted(flow, old)  # the old login ID no longer names the account
        assert "PasswordResetRequested" not in events_of(flow, account_id)

    def test_A3_Q17_after_an_email_change_the_password_is_set_through_the_new_address(self, flow: Flow) -> None:
        account_id = flow.active_account()
        request_email_change(flow, account_id, "q17@example.co.jp")
        changed = flow.post("/v1/accounts/email/confirm",
                            {"token": flow.app.accounts.email_change_token(UUID(account_id))}, expect=200)
        assert changed["password_reset_required"] is True
        self.accepted(flow, "q17@example.co.jp")
        token = flow.app.accounts.password_reset_token(UUID(account_id))
        answer = flow.post("/v1/accounts/password-reset/confirm", {"token": token, "password": "fresh2026"}, expect=200)
        assert answer["password_reset_required"] is False
        assert flow.client.get(f"/v1/accounts/{account_id}").json()["password_reset_required"] is False
