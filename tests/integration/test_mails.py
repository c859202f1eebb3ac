"""M-1…M-4 and A-2 over HTTP on SQLite and PostgreSQL: the embedded scheduler and worker
send to a real SMTP server on 127.0.0.1 (the `service` fixture, tests/integration/conftest.py);
the test moves time with POST /v1/admin/timers/run."""

from __future__ import annotations

import logging
import re
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from lifecycle.domain.dates import TOKYO
from lifecycle.settings import Settings
from tests.conftest import settings_for
from tests.e2e.conftest import api_key, assert_problem, bearer
from tests.fakes import FixedClock
from tests.integration.conftest import Service, mail_settings
from tests.mail_sink import SmtpSink
from tests.scenario import next_serial


def contract_number_of(service: Service, site_id: str) -> str:
    company_id = service.client.get(f"/v1/sites/{site_id}").json()["company_id"]
    return service.client.get(f"/v1/companies/{company_id}").json()["contract_number"]


class TestServiceIn:
    def test_M1_registration_yields_one_service_in_mail_to_the_registrant_and_both_contact_mails(
        self, service: Service
    ) -> None:
        site_id, email = service.registered_site()
        serial = service.flow.ship(model="AT-x510-28GTX")
        ticket = service.flow.sell_ticket(sold_on="2026-11-10")
        service.flow.register(site_id, ticket, serial)  # Friday 2026-11-20; Monday 23 is a holiday

        assert [f["kind"] for f in service.run_timers("2026-11-24T09:59:00+09:00")] == []
        fired = service.run_timers("2026-11-24T10:00:00+09:00")
        assert [(f["kind"], f["serial"], f["due_at"]) for f in fired] == [
            ("service_in", serial, "2026-11-24T10:00:00+09:00")
        ]
        [mail] = service.sink.wait_for(1)
        assert sorted(mail.recipients) == sorted([email, "noc@example.co.jp", "ichiro@example.co.jp"])
        assert mail.message_id == f"<{fired[0]['notification_id']}@example.com>"
        assert "サポートサービス登録完了のご連絡" in mail.subject and ticket["ticket_id"] in mail.subject
        body = mail.body
        contract_number = contract_number_of(service, site_id)
        for line in [
            "山田 太郎 様",
            "ご登録の内容にて、準備が整いましたので、お知らせいたします。",
            "デリバリーサービス 連絡窓口",
            "電話 0120-000-000",
            "月～金 9:00～17:00（土日祝日・12月29日～1月3日は除く）",
            f"チケットID：{ticket['ticket_id']}",
            "機種名：AT-x510-28GTX",
            f"シリアル番号：{serial}",
            "設置場所：東京本社 〒100-0001 東京都千代田区千代田1-1サンプルビル3F",
            "◇ご使用の製品:契約番号/チケットID/製品名/シリアル番号/サポート期間",
            f"契約番号：{contract_number}/チケットID:{ticket['ticket_id']}/ AT-x510-28GTX デリバリースタンダード1年保守 /",
            f"（{serial}) / 2026/12/01 ～ 2027/12/31",
        ]:
            assert line in body, line
        assert mail.message.get_content_charset() == "utf-8"

        # Recorded once, with the recipients and the instant; a second run sends nothing.
        [notified] = service.history_events(contract_number, "ServiceInNotified")
        assert sorted(notified["data"]["recipients"]) == sorted(mail.recipients)
        assert notified["data"]["serial"] == serial
        assert notified["data"]["message_id"] == mail.message_id
        assert service.run_timers("2026-11-30T10:00:00+09:00") == []
        assert len(service.sink.quiet_for(0.3)) == 1

    @pytest.mark.parametrize("service", [{"service_in_business_days": 4}], indirect=True)
    def test_M1_service_in_is_never_later_than_the_fourth_business_day(self, service: Service, clock: FixedClock) -> None:
        site_id, _ = service.registered_site()
        clock.set(datetime(2026, 12, 25, 15, 0, tzinfo=TOKYO))  # Friday before the year-end closing
        service.flow.register(site_id, service.flow.sell_ticket(sold_on="2026-11-10"), service.flow.ship())
        assert service.run_timers("2027-01-06T09:59:00+09:00") == []
        [fired] = service.run_timers("2027-01-06T10:00:00+09:00")
        assert fired["due_at"] == "2027-01-06T10:00:00+09:00"  # Wednesday 6 January, 10:00 in Tokyo
        service.sink.wait_for(1)

    def test_S4_contact_changed_before_the_mail_means_the_mail_goes_to_the_new_contact(self, service: Service) -> None:
        site_id, email = service.registered_site()
        service.flow.register(site_id, service.flow.sell_ticket(), service.flow.ship())
        response = service.client.patch(f"/v1/fault-contacts/{service.contact_id}",
                                        json={"mail1": "new-noc@example.co.jp"})
        assert response.status_code == 200, response.text

        service.run_timers("2026-11-24T10:00:00+09:00")
        [mail] = service.sink.wait_for(1)
        assert sorted(mail.recipients) == sorted([email, "new-noc@example.co.jp", "ichiro@example.co.jp"])

    def test_M1_bundle_and_renewal_each_get_their_service_in_mail(self, service: Service, clock: FixedClock) -> None:
        site_id, _ = service.registered_site()
        option = {"serial": next_serial("OPT"), "code_no": "12345-02", "model": "AT-PWR250"}
        serial = service.flow.ship(code_no="12345-01", bundle={
            "service": "デリバリースタンダード", "term_years": 1, "sold_on": "2026-11-02",
            "ticket_model": "AT-x510-28GTX-Z1", "options": [option],
        })
        service.flow.post(f"/v1/sites/{site_id}/bundles", {"serial": serial, "option_serials": [option["serial"]]})
        service.run_timers("2026-11-24T10:00:00+09:00")
        [bundle_mail] = service.sink.wait_for(1)
        assert "チケットID：なし（保守バンドル製品）" in bundle_mail.body
        assert f"オプション品：AT-PWR250（{option['serial']}）" in bundle_mail.body

        clock.set(datetime(2027, 10, 5, 11, 0, tzinfo=TOKYO))  # the window of 2027-12-31 is open
        renewal = service.flow.post(f"/v1/registrations/{serial}/renewals", service.flow.sell_ticket(kind="renewal"),
                                    expect=201)
        assert renewal["period"]["end"] == "2028-12-31"
        fired = service.run_timers("2027-10-06T10:00:00+09:00")
        assert sorted(f["kind"] for f in fired) == ["service_in"]  # the old period's reminder was cancelled
        mails = service.sink.wait_for(2)
        assert "2028/01/01 ～ 2028/12/31" in mails[1].body


class TestRenewalReminders:
    def test_M3_reminder_goes_out_the_day_the_renewal_window_opens(self, service: Service) -> None:
        site_id, email = service.registered_site()
        serial = service.flow.ship()
        service.flow.register(site_id, service.flow.sell_ticket(sold_on="2026-11-10"), serial)  # ends 2027-12-31
        service.run_timers("2026-11-24T10:00:00+09:00")  # the service-in
        assert service.run_timers("2027-10-01T09:59:00+09:00") == []
        [reminder] = service.run_timers("2027-10-01T10:00:00+09:00")
        assert (reminder["kind"], reminder["stage"], reminder["period_end"]) == ("renewal_reminder", "three_months",
                                                                                 "2027-12-31")
        mails = service.sink.wait_for(2)
        mail = mails[1]
        assert sorted(mail.recipients) == sorted([email, "noc@example.co.jp", "ichiro@example.co.jp"])
        assert "サポートサービス更新のご案内" in mail.subject
        assert "更新手続きの受付期間：2027/10/01 ～ 2028/03/30" in mail.body
        [sent] = service.history_events(contract_number_of(service, site_id), "RenewalReminderSent")
        assert sent["data"]["stage"] == "three_months" and sent["data"]["period_end"] == "2027-12-31"

        # Beyond the seed: a month before, and on the end day.
        assert [f["stage"] for f in service.run_timers("2027-12-01T10:00:00+09:00")] == ["one_month"]
        assert [f["stage"] for f in service.run_timers("2027-12-31T10:00:00+09:00")] == ["expiry_day"]
        assert "本日 2027/12/31 をもって期間満了" in service.sink.wait_for(4)[3].body

    def test_M3_renewal_before_the_reminder_means_no_reminder(self, service: Service, clock: FixedClock) -> None:
        site_id, _ = service.registered_site()
        serial = service.flow.ship()
        service.flow.register(site_id, service.flow.sell_ticket(sold_on="2026-11-10"), serial)  # ends 2027-12-31
        clock.set(datetime(2027, 10, 1, 9, 0, tzinfo=TOKYO))  # the window opens today; the reminder is at 10:00
        service.flow.post(f"/v1/registrations/{serial}/renewals", service.flow.sell_ticket(kind="renewal"))
        fired = service.run_timers("2027-12-31T23:00:00+09:00")
        assert sorted(f["kind"] for f in fired) == ["service_in", "service_in"]
        assert all("更新のご案内" not in m.subject for m in service.sink.quiet_for(0.3))
        assert service.history_events(contract_number_of(service, site_id), "RenewalReminderSent") == []

    def test_M3_registration_after_the_window_opened_gets_its_reminder_at_once(self, service: Service) -> None:
        site_id, _ = service.registered_site()
        serial = service.flow.ship()
        service.flow.register(site_id, service.flow.sell_ticket(sold_on="2025-11-10"), serial)  # ends 2026-12-31
        fired = service.run_timers("2026-11-20T10:00:00+09:00")  # the registration's own instant
        assert [(f["kind"], f["stage"]) for f in fired] == [("renewal_reminder", "three_months")]
        [mail] = service.sink.wait_for(1)
        assert "満了日:2026/12/31" in mail.subject


class TestSentOnce:
    @pytest.mark.parametrize("service", [{"notification_max_attempts": 2}], indirect=True)
    def test_M4_failing_sends_back_off_are_listed_as_failed_and_can_be_sent_again(self, service: Service) -> None:
        site_id, _ = service.registered_site()
        service.flow.register(site_id, service.flow.sell_ticket(), service.flow.ship())
        service.sink.refuse_next = 99
        [fired] = service.run_timers("2026-11-24T10:00:00+09:00")
        notification_id = fired["notification_id"]
        first = service.client.get(f"/v1/admin/notifications/{notification_id}").json()
        assert (first["state"], first["failures"]) == ("pending", 1)
        assert first["due_at"] == "2026-11-20T10:01:00+09:00"  # the service's clock + 60 s
        assert service.client.get("/v1/admin/notifications/failed").json()["notifications"] == []

        service.run_timers("2026-11-24T10:00:00+09:00")  # the retry
        [failed] = service.client.get("/v1/admin/notifications/failed").json()["notifications"]
        assert failed["notification_id"] == notification_id
        assert failed["failures"] == 2 and "451" in failed["last_error"]
        assert service.sink.snapshot() == []

        service.sink.refuse_next = 0
        response = service.client.post(f"/v1/admin/notifications/{notification_id}/resend")
        assert response.status_code == 202, response.text
        assert service.notifications.in_process.join(timeout=30)
        assert len(service.sink.wait_for(1)) == 1
        assert service.client.get(f"/v1/admin/notifications/{notification_id}").json()["state"] == "sent"
        again = service.client.post(f"/v1/admin/notifications/{notification_id}/resend")
        assert_problem(again, 409, "NOTIFICATION_NOT_FAILED")

    def test_M4_a_permanent_refusal_fails_at_once(self, service: Service) -> None:
        site_id, _ = service.registered_site()
        service.flow.register(site_id, service.flow.sell_ticket(), service.flow.ship())
        service.sink.refuse_next, service.sink.refusal = 1, "554 5.7.1 Rejected"
        service.run_timers("2026-11-24T10:00:00+09:00")
        [failed] = service.client.get("/v1/admin/notifications/failed").json()["notifications"]
        assert failed["failures"] == 1 and "554" in failed["last_error"]

    def test_M4_unknown_notification_is_404(self, service: Service) -> None:
        response = service.client.post("/v1/admin/notifications/00000000-0000-0000-0000-000000000000/resend")
        assert_problem(response, 404, "NOTIFICATION_NOT_FOUND", "該当する通知が見つかりません。")

    def test_M4_the_same_id_delivered_twice_sends_one_mail(self, service: Service) -> None:
        site_id, _ = service.registered_site()
        service.flow.register(site_id, service.flow.sell_ticket(), service.flow.ship())
        [fired] = service.run_timers("2026-11-24T10:00:00+09:00")
        service.sink.wait_for(1)
        notification_id = UUID(fired["notification_id"])
        service.notifications.dispatcher.dispatch([notification_id, notification_id])  # the broker's at-least-once
        assert service.notifications.in_process.join(timeout=30)
        assert service.notifications.sender.deliver(notification_id).value == "not_claimed"
        assert len(service.sink.quiet_for(0.3)) == 1

    def test_M4_timers_survive_a_restart_and_a_rebuild_from_the_log(
        self, store: str, tmp_path: Path, request: pytest.FixtureRequest, smtp_sink: SmtpSink,  # noqa: F811
        clock: FixedClock,
    ) -> None:
        settings = mail_settings(store, tmp_path, request, smtp_sink)
        with TestClient(create_app(settings, clock=clock)) as client:
            client.headers.update(bearer(api_key(client)))
            service = Service(client, smtp_sink)
            site_id, _ = service.registered_site()
            service.flow.register(site_id, service.flow.sell_ticket(sold_on="2026-11-10"), service.flow.ship())
            service.run_timers("2026-11-24T10:00:00+09:00")  # service-in sent; reminders pending
        with TestClient(create_app(settings, clock=clock)) as client:  # the API restarted
            client.headers.update(bearer(api_key(client)))
            ids = service.account_id, service.company_id
            service = Service(client, smtp_sink)
            service.account_id, service.company_id = ids
            before = {r.notification_id: (r.state, r.timer.due_at) for r in _all_rows(service)}
            assert service.notifications.admin.rebuild() > 0
            after = {r.notification_id: (r.state, r.timer.due_at) for r in _all_rows(service)}
            assert after == before
            assert sorted((r.timer.kind.value, r.state) for r in _all_rows(service)) == [
                ("account_confirmation", "cancelled"),  # activated before it was sent
                ("account_retention", "cancelled"),  # activated: its personal data is kept (docs/privacy.md)
                ("renewal_reminder", "pending"),
                ("renewal_reminder", "pending"),
                ("renewal_reminder", "pending"),
                ("service_in", "sent"),
            ]
            assert [f["stage"] for f in service.run_timers("2027-10-01T10:00:00+09:00")] == ["three_months"]
            assert len(smtp_sink.wait_for(2)) == 2


def _all_rows(service: Service) -> list[Any]:
    """The timers of the service's last account and its company."""
    store = service.notifications.store
    return [*store.of(UUID(service.account_id)), *store.of(UUID(service.company_id))]


class TestConfirmationMail:
    def test_A2_sign_up_mails_a_url_that_activates_the_account(self, service: Service) -> None:
        account = service.flow.post("/v1/accounts", {
            "email": "new.user@example.co.jp", "password": "secret123", "name": "佐藤 次郎",
            "company_name": "株式会社サンプル", "phone": "03-1234-5678", "agree_terms": True,
        })
        [fired] = service.run_timers("2026-11-20T10:00:00+09:00")
        assert fired["kind"] == "account_confirmation"
        [mail] = service.sink.wait_for(1)
        assert mail.recipients == ("new.user@example.co.jp",)
        assert "ユーザー仮登録のご案内" in mail.subject
        assert "有効期限は 2026/11/21 10:00 までの24時間" in mail.body
        token = re.search(r"http://localhost:8000/portal/signup/confirm\?token=(\S+)", mail.body).group(1)  # type: ignore[union-attr]
        assert token == service.client.app.state.application.accounts.confirmation_token(UUID(account["account_id"]))
        activated = service.client.post("/v1/accounts/verify", json={"token": token})
        assert activated.status_code == 200 and activated.json()["status"] == "active"

    def test_A2_an_account_activated_before_the_mail_gets_none(self, service: Service) -> None:
        service.flow.active_account()
        assert service.run_timers("2026-11-21T10:00:00+09:00") == []
        assert service.sink.quiet_for(0.2) == []


def test_timers_run_exists_only_with_the_clock_override(tmp_path: Path, clock: FixedClock) -> None:
    settings = settings_for("sqlite", tmp_path, scheduler_interval_seconds=3600)
    with TestClient(create_app(settings, clock=clock)) as client:
        client.headers.update(bearer(api_key(client)))
        response = client.post("/v1/admin/timers/run", json={"as_of": "2027-01-01T00:00:00+09:00"})
        assert_problem(response, 404, "NOT_FOUND")
        assert client.get("/v1/admin/notifications/failed").json() == {"notifications": []}


def test_M4_a_timer_table_from_an_earlier_release_keeps_its_place_in_the_log(store_settings: Settings) -> None:
    """The timer table's position now lives in the read models' tracking; a table made when
    it had a tracking table of its own adopts that position once, instead of replaying the
    whole log (which would be harmless, but slow)."""
    from lifecycle.adapters.timer_store import OLD_TRACKING_TABLE
    from lifecycle.bootstrap import build_application, build_timer_store

    app = build_application(store_settings)
    try:
        store = build_timer_store(app.recorder.datastore)
        old = OLD_TRACKING_TABLE if store_settings.database_url.startswith("sqlite") else f"{store.schema}.{OLD_TRACKING_TABLE}"
        with store.transaction(commit=True) as cursor:
            store._execute(cursor, f"CREATE TABLE {old} (name TEXT PRIMARY KEY, position BIGINT NOT NULL)")
            store._execute(cursor, f"INSERT INTO {old} VALUES (%s, %s)", ("notification_timers", 4242))
        store.tracking.drop_tables()  # as if the shared tracking had never had the timers' row
        adopted = build_timer_store(app.recorder.datastore)
        assert adopted.position() == 4242
        assert adopted._old_tracking_table() is None  # the old table is gone
    finally:
        app.close()


def test_M4_an_event_the_mail_rules_cannot_handle_stops_the_timer_table_visibly_and_earlier_timers_still_fire(
    service: Service, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 11: the timer table is a projection too. An event its process managers cannot
    handle (one stored before a rule existed, say) used to fail every scheduler run with a
    traceback, silently for the API's health. It now stops there with one line, the health of
    any process names the event, and the timers already in the table still fire."""
    from lifecycle.aggregates.accounts import Account
    from lifecycle.policies.mail_timers import NotificationPolicies

    handle = NotificationPolicies.__dict__["changes_for"]  # the dispatcher itself, to bind to each instance

    def failing(self: NotificationPolicies, event: Any) -> Any:
        if isinstance(event, Account.SignedUp) and event.name == "壊れた名前":
            raise KeyError("no rule for this event")
        return handle.__get__(self, NotificationPolicies)(event)

    site_id, _ = service.registered_site()
    service.flow.register(site_id, service.flow.sell_ticket(sold_on="2026-11-10"), service.flow.ship())
    monkeypatch.setattr(NotificationPolicies, "changes_for", failing)
    caplog.set_level(logging.INFO, logger="lifecycle")
    service.flow.post("/v1/accounts", {
        "email": "broken@example.co.jp", "password": "secret123", "name": "壊れた名前",
        "company_name": "株式会社サンプル", "phone": "03-1234-5678", "agree_terms": True,
    })
    failed_at = service.client.app.state.application.recorder.max_notification_id() - 1  # before its Index claim
    later = service.flow.post("/v1/accounts", {
        "email": "later@example.co.jp", "password": "secret123", "name": "後の人",
        "company_name": "株式会社サンプル", "phone": "03-1234-5678", "agree_terms": True,
    })

    fired = service.run_timers("2026-11-24T10:00:00+09:00")
    assert [f["kind"] for f in fired] == ["service_in"]  # scheduled before the stop: still sent
    assert len(service.sink.wait_for(1)) == 1
    service.run_timers("2026-11-25T10:00:00+09:00")  # a second run: no second line

    health = service.client.get("/v1/health").json()
    timers = health["dependencies"]["scheduler"]["timers"]
    assert health["status"] == "degraded"
    assert timers["state"] == "stopped"
    assert timers["failed_event"]["position"] == failed_at
    assert timers["failed_event"]["topic"].endswith("Account.SignedUp")
    assert timers["failed_event"]["error_type"] == "KeyError"
    assert timers["position"] < failed_at
    # Nothing after the stop is scheduled: the later account has no confirmation timer yet.
    assert service.notifications.store.of(UUID(later["account_id"])) == []
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR and "timers" in r.getMessage()]
    assert len(lines) == 1, lines
    assert f"position {failed_at}" in lines[0] and "Account.SignedUp" in lines[0] and "KeyError" in lines[0]
    assert "broken@" not in lines[0] and "壊れた" not in lines[0]

    monkeypatch.setattr(NotificationPolicies, "changes_for", handle)  # fixed, as a new release would
    service.run_timers("2026-11-25T10:00:00+09:00")
    health = service.client.get("/v1/health").json()
    timers = health["dependencies"]["scheduler"]["timers"]
    assert timers["state"] in ("up_to_date", "behind") and timers["failed_event"] is None  # the mails' own events
    assert health["status"] == "ok"
    assert [t.timer.kind.value for t in service.notifications.store.of(UUID(later["account_id"]))] == [
        "account_confirmation", "account_retention"
    ]
