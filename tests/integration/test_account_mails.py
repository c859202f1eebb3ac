"""A-3 and A-4 mails over HTTP on SQLite and PostgreSQL, as A-2's in test_mails.py: the
embedded scheduler and worker send to a real SMTP server on 127.0.0.1; the test fires the
timers, reads the mail, and opens the URL in it."""

from __future__ import annotations

import re
from datetime import timedelta
from uuid import UUID

from tests.e2e.conftest import assert_problem
from tests.fakes import FixedClock
from tests.integration.conftest import Service
from tests.mail_sink import smtp_sink  # noqa: F401 - the fixture


def account_events(service: Service, account_id: str) -> list[object]:
    return list(service.client.app.state.application.events.get(UUID(account_id)))


def token_in(body: str, url_base: str) -> str:
    match = re.search(re.escape(url_base) + r"\?token=(\S+)", body)
    assert match is not None, body
    return match.group(1)


class TestEmailChangeMail:
    def test_A3_the_new_address_is_mailed_a_url_that_makes_it_the_login_id(self, service: Service) -> None:
        account_id = service.flow.active_account()
        old = service.client.get(f"/v1/accounts/{account_id}").json()["email"]
        response = service.client.patch(f"/v1/accounts/{account_id}", json={"email": "moved@example.co.jp"})
        assert response.status_code == 200, response.text

        [fired] = service.run_timers("2026-11-20T10:00:00+09:00")
        assert fired["kind"] == "email_change_confirmation"
        [mail] = service.sink.wait_for(1)
        assert mail.recipients == ("moved@example.co.jp",)
        assert mail.message_id == f"<{fired['notification_id']}@example.com>"
        assert "メールアドレス変更のご確認" in mail.subject
        for line in ["山田 太郎 様", f"変更前：{old}", "変更後：moved@example.co.jp",
                     "このURLの有効期限は 2026/11/21 10:00 までの24時間です。"]:
            assert line in mail.body, line
        [sent] = [e for e in account_events(service, account_id) if type(e).__name__ == "EmailChangeMailSent"]
        assert sent.recipients == ["moved@example.co.jp"] and str(sent.notification_id) == fired["notification_id"]

        token = token_in(mail.body, "http://localhost:8000/portal/email/confirm")
        changed = service.client.post("/v1/accounts/email/confirm", json={"token": token})
        assert changed.status_code == 200, changed.text
        assert changed.json()["email"] == "moved@example.co.jp"
        assert changed.json()["password_reset_required"] is True
        assert_problem(service.client.post("/v1/accounts/email/confirm", json={"token": token}), 404,
                       "EMAIL_CHANGE_NOT_FOUND")
        # The old address is told, with the time of the change and whom to call (ASVS 6.3.7).
        [notice] = service.run_timers("2026-11-20T11:00:00+09:00")
        assert notice["kind"] == "email_changed"
        [_, told] = service.sink.wait_for(2)
        assert told.recipients == (old,)
        assert "ログインID（メールアドレス）が変更されました" in told.subject
        for line in [f"変更前：{old}", "2026/11/20 10:00 に変更されました", "至急下記までご連絡ください",
                     "contracts@example.com"]:
            assert line in told.body, (line, told.body)
        [recorded] = [e for e in account_events(service, account_id) if type(e).__name__ == "NoticeMailSent"]
        assert recorded.recipients == [old] and recorded.kind == "email_changed"
        # Each sent once: firing the timers again sends nothing.
        assert service.run_timers("2026-11-20T12:00:00+09:00") == []
        assert len(service.sink.quiet_for(0.2)) == 2

    def test_A3_a_service_key_cannot_change_the_login_email_and_support_is_recorded_as_such(
        self, service: Service
    ) -> None:
        """Least privilege: the registrations role edits profiles, not the login ID (else its
        holder could take the account over through the confirmation and a reset)."""
        from tests.e2e.conftest import api_key, bearer

        account_id = service.flow.active_account()
        registrations = bearer(api_key(service.client, "registrations"))
        refused = service.client.patch(f"/v1/accounts/{account_id}", json={"email": "thief@example.co.jp"},
                                       headers=registrations)
        assert_problem(refused, 403, "FORBIDDEN")
        renamed = service.client.patch(f"/v1/accounts/{account_id}", json={"name": "山田 花子"}, headers=registrations)
        assert renamed.status_code == 200 and renamed.json()["pending_email"] is None
        support = bearer(api_key(service.client, "admin", name="support-desk"))
        asked = service.client.patch(f"/v1/accounts/{account_id}", json={"email": "new@example.co.jp"}, headers=support)
        assert asked.status_code == 200, asked.text
        [requested] = [e for e in account_events(service, account_id) if type(e).__name__ == "EmailChangeRequested"]
        assert requested.actor["capacity"] == "support" and requested.actor["name"] == "support-desk"

    def test_A3_a_request_superseded_before_its_mail_went_out_is_not_mailed(
        self, service: Service, clock: FixedClock
    ) -> None:
        account_id = service.flow.active_account()
        service.client.patch(f"/v1/accounts/{account_id}", json={"email": "first@example.co.jp"})
        clock.set(clock.now() + timedelta(minutes=5))
        service.client.patch(f"/v1/accounts/{account_id}", json={"email": "second@example.co.jp"})
        service.run_timers("2026-11-20T10:10:00+09:00")
        mails = service.sink.quiet_for(0.3)
        assert [m.recipients for m in mails] == [("second@example.co.jp",)]


class TestPasswordResetMail:
    def test_A4_a_registered_address_is_mailed_a_single_use_link(self, service: Service) -> None:
        account_id = service.flow.active_account()
        email = service.client.get(f"/v1/accounts/{account_id}").json()["email"]
        answer = service.client.post("/v1/accounts/password-reset", json={"email": email})
        assert answer.status_code == 202, answer.text

        [fired] = service.run_timers("2026-11-20T10:00:00+09:00")
        assert fired["kind"] == "password_reset"
        [mail] = service.sink.wait_for(1)
        assert mail.recipients == (email,)
        assert "パスワード再設定のご案内" in mail.subject
        assert "このURLは一度だけご利用いただけます。有効期限は 2026/11/21 10:00 までです。" in mail.body
        [sent] = [e for e in account_events(service, account_id) if type(e).__name__ == "PasswordResetMailSent"]
        assert sent.recipients == [email]

        token = token_in(mail.body, "http://localhost:8000/portal/password-reset/confirm")
        confirm = "/v1/accounts/password-reset/confirm"
        reset = service.client.post(confirm, json={"token": token, "password": "newpass456"})
        assert reset.status_code == 200, reset.text
        again = service.client.post(confirm, json={"token": token, "password": "newpass789"})
        assert_problem(again, 404, "PASSWORD_RESET_NOT_FOUND")

    def test_A4_an_unknown_address_gets_the_same_answer_and_no_mail(self, service: Service) -> None:
        account_id = service.flow.active_account()
        email = service.client.get(f"/v1/accounts/{account_id}").json()["email"]
        known = service.client.post("/v1/accounts/password-reset", json={"email": email})
        unknown = service.client.post("/v1/accounts/password-reset", json={"email": "nobody@example.co.jp"})
        assert (known.status_code, known.json()) == (unknown.status_code, unknown.json()) == (202, known.json())
        fired = service.run_timers("2026-11-20T10:00:00+09:00")
        assert [f["kind"] for f in fired] == ["password_reset"]
        assert [m.recipients for m in service.sink.quiet_for(0.3)] == [(email,)]


class TestAlreadyRegisteredMail:
    def test_A4_a_sign_up_of_a_registered_address_mails_its_owner_the_login_and_reset_links(
        self, service: Service
    ) -> None:
        account_id = service.flow.active_account()
        email = service.client.get(f"/v1/accounts/{account_id}").json()["email"]
        again = service.client.post("/v1/accounts", json={
            "email": email.upper(), "password": "another123", "name": "誰か", "company_name": "某社",
            "phone": "03-9999-0000", "agree_terms": True})
        assert again.status_code == 201 and again.json()["status"] == "provisional"
        fired = service.run_timers("2026-11-20T10:00:00+09:00")
        assert [f["kind"] for f in fired] == ["already_registered"]
        [mail] = service.sink.wait_for(1)
        assert mail.recipients == (email,)
        assert "このメールアドレスは登録済みです" in mail.subject
        for line in ["http://localhost:8000/portal/login", "http://localhost:8000/portal/password-reset",
                     "このメールアドレスはすでにご登録いただいています。"]:
            assert line in mail.body, line
        # the caller's name, password and phone went nowhere: the account is unchanged
        account = service.client.get(f"/v1/accounts/{account_id}").json()
        assert account["name"] == "山田 太郎" and account["phone"] != "03-9999-0000"
