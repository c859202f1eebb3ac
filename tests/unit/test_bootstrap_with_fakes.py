"""The service as bootstrap assembles it, with the fakes of tests/fakes.py in place of the
adapters: what a process runs is wired in one place, and a test swaps the world outside
(mail transport, timer table, credential rows, clock, postal directory) without touching
the application."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from email import message_from_bytes
from email.policy import default
from pathlib import Path
from uuid import UUID

import pytest

from lifecycle.bootstrap import Runtime, bootstrap
from lifecycle.domain.dates import TOKYO
from lifecycle.settings import Settings
from tests.fakes import (
    FakeBulkUploads,
    FakeCredentialStore,
    FakeMailer,
    FakePostalCodes,
    FakeTimerStore,
    FixedClock,
)

NOW = datetime(2026, 11, 20, 10, tzinfo=TOKYO)


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Runtime]:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'events.sqlite3'}", var_dir=tmp_path / "var",
                        secret_key="k", redis_url="", smtp_host="")
    runtime = bootstrap(settings, clock=FixedClock(NOW), postal_codes=FakePostalCodes(), mailer=FakeMailer(),
                        timers=FakeTimerStore(), credentials=FakeCredentialStore(), uploads=FakeBulkUploads())
    yield runtime
    runtime.notifications.close()
    runtime.application.close()


def test_A2_sign_up_is_mailed_through_the_fake_transport_and_its_url_activates_the_account(runtime: Runtime) -> None:
    app, notifications = runtime.application, runtime.notifications
    account = app.accounts.sign_up("taro@example.co.jp", "secret123", "山田 太郎", "株式会社サンプル",
                                   "03-1234-5678", True)

    [fired] = notifications.admin.run_timers()  # the projection fills the fake timer table first
    assert fired["kind"] == "account_confirmation" and fired["aggregate_id"] == str(account["account_id"])
    notifications.sender.deliver(UUID(fired["notification_id"]))

    [mail] = notifications.mailer.sent
    assert mail.recipients == ("taro@example.co.jp",)
    body = message_from_bytes(mail.data, policy=default).get_body(("plain",)).get_content()
    token = re.search(r"\?token=(\S+)", body).group(1)
    assert app.accounts.verify_account(token)["account_id"] == account["account_id"]
    assert notifications.store.get(UUID(fired["notification_id"])).state == "sent"


def test_a_login_session_lives_in_the_fake_credential_store_until_logout(runtime: Runtime) -> None:
    app, access = runtime.application, runtime.access
    account = app.accounts.sign_up("taro@example.co.jp", "secret123", "山田 太郎", "株式会社サンプル",
                                   "03-1234-5678", True)
    app.accounts.verify_account(app.accounts.confirmation_token(account["account_id"]))

    session = access.login("taro@example.co.jp", "secret123", "192.0.2.10")
    caller = access.authenticate(session["token"])
    assert caller.account_id == str(account["account_id"])
    assert access.store.session(caller.session_id).ended_at is None

    access.logout(caller)
    assert access.store.session(caller.session_id).ended_at == NOW
