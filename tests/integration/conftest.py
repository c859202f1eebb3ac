"""Fixtures the integration tests share: the API with its embedded mail worker sending to a
real SMTP server on 127.0.0.1, on SQLite and on PostgreSQL (`service`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from lifecycle.settings import Settings
from tests.conftest import settings_for
from tests.e2e.conftest import api_key, bearer
from tests.fakes import FixedClock
from tests.mail_sink import SmtpSink, smtp_sink  # noqa: F401 - the fixture
from tests.scenario import Flow


def mail_settings(store: str, tmp_path: Path, request: pytest.FixtureRequest, sink: SmtpSink, **overrides: Any) -> Settings:
    postgres_url = request.getfixturevalue("postgres_url") if store == "postgres" else None
    return settings_for(
        store,
        tmp_path,
        postgres_url,
        smtp_host="127.0.0.1",
        smtp_port=sink.port,
        smtp_timeout_seconds=5,
        allow_clock_override=True,
        scheduler_interval_seconds=3600,  # the tests fire the timers themselves
        notification_retry_base_seconds=60,
        **overrides,
    )


@pytest.fixture(params=["sqlite", "postgres"])
def store(request: pytest.FixtureRequest) -> str:
    return request.param


class Service:
    """The API with its embedded mail worker, and a customer's flow through it."""

    def __init__(self, client: TestClient, sink: SmtpSink) -> None:
        self.client = client
        self.flow = Flow(client, client.app.state.application)
        self.notifications = client.app.state.runtime.notifications
        self.sink = sink

    def run_timers(self, as_of: str) -> list[dict[str, Any]]:
        self.client.app.state.application.after_answer.wait()  # requests looked up after their answer
        response = self.client.post("/v1/admin/timers/run", json={"as_of": as_of})
        assert response.status_code == 200, response.text
        fired = response.json()["fired"]
        assert self.notifications.in_process.join(timeout=30)
        return fired

    def registered_site(self) -> tuple[str, str]:
        """A ready site of a fresh account; answers (site_id, registrant e-mail)."""
        self.account_id = account_id = self.flow.active_account()
        email = self.client.get(f"/v1/accounts/{account_id}").json()["email"]
        company = self.flow.company(account_id)
        self.company_id = company["company_id"]
        site_id = self.flow.site(company["company_id"])["site_id"]
        self.contact_id = self.flow.fault_contact(site_id)["contact_id"]
        return site_id, email

    def history_events(self, contract_number: str, type_: str) -> list[dict[str, Any]]:
        history = self.client.get(f"/v1/contracts/{contract_number}/history").json()
        return [e for e in history["events"] if e["type"] == type_]


@pytest.fixture
def service(store: str, tmp_path: Path, request: pytest.FixtureRequest, smtp_sink: SmtpSink,  # noqa: F811
            clock: FixedClock) -> Iterator[Service]:
    overrides = getattr(request, "param", {})
    with TestClient(create_app(mail_settings(store, tmp_path, request, smtp_sink, **overrides), clock=clock)) as client:
        client.headers.update(bearer(api_key(client)))
        yield Service(client, smtp_sink)
