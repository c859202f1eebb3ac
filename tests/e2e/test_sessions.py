"""Customers' sessions and services' API keys over HTTP (SPEC 4, issue 10): login, expiry,
logout, the changes that end sessions, enumeration, attempt limits, revocation, scoped
idempotency keys, and who did what on every event."""

from __future__ import annotations

import logging
import statistics
import time
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from lifecycle.settings import Settings
from tests.conftest import settings_for
from tests.e2e.conftest import api_key, assert_problem, bearer
from tests.fakes import FixedClock
from tests.scenario import Flow

PASSWORD = "secret123"
NO_KEY = {"Authorization": ""}


def log_in(client: TestClient, email: str, password: str = PASSWORD) -> object:
    return client.post("/v1/sessions", json={"email": email, "password": password}, headers=NO_KEY)


def session_of(client: TestClient, email: str) -> dict[str, str]:
    answer = log_in(client, email)
    assert answer.status_code == 201, answer.text
    assert answer.json()["token"].startswith("ls_")
    return bearer(answer.json()["token"])


@pytest.fixture
def customer(flow: Flow) -> tuple[str, str]:
    email = f"customer{time.monotonic_ns()}@example.co.jp"
    return flow.active_account(email), email


def test_a_session_lasts_30_idle_minutes_and_12_hours_at_most(
    client: TestClient, customer: tuple[str, str], clock: FixedClock
) -> None:
    account_id, email = customer
    token = session_of(client, email)
    assert client.get("/v1/accounts/me", headers=token).json()["account_id"] == account_id
    clock.set(clock.now() + timedelta(minutes=29))
    assert client.get("/v1/accounts/me", headers=token).status_code == 200
    clock.set(clock.now() + timedelta(minutes=31))  # 31 minutes since the last request
    assert_problem(client.get("/v1/accounts/me", headers=token), 401, "UNAUTHENTICATED")

    token = session_of(client, email)
    for _ in range(12 * 2):  # active every 29 minutes: still ends 12 hours after login
        clock.set(clock.now() + timedelta(minutes=29))
        if client.get("/v1/accounts/me", headers=token).status_code != 200:
            break
    assert_problem(client.get("/v1/accounts/me", headers=token), 401, "UNAUTHENTICATED")


def test_last_seen_is_written_once_a_minute_but_idle_expiry_still_counts_from_the_last_request(
    client: TestClient, customer: tuple[str, str], clock: FixedClock
) -> None:
    """Touches are throttled per process: 20 minutes, a request, 20 more is still alive."""
    _, email = customer
    token = session_of(client, email)
    clock.set(clock.now() + timedelta(minutes=20))
    assert client.get("/v1/accounts/me", headers=token).status_code == 200
    clock.set(clock.now() + timedelta(minutes=20))
    assert client.get("/v1/accounts/me", headers=token).status_code == 200


def test_logging_out_ends_the_session_and_only_it(client: TestClient, customer: tuple[str, str]) -> None:
    _, email = customer
    first, second = session_of(client, email), session_of(client, email)
    assert client.delete("/v1/sessions/current", headers=first).status_code == 204
    assert_problem(client.get("/v1/accounts/me", headers=first), 401, "UNAUTHENTICATED")
    assert client.get("/v1/accounts/me", headers=second).status_code == 200


def test_a_password_reset_ends_every_session_of_the_account(
    client: TestClient, flow: Flow, customer: tuple[str, str]
) -> None:
    account_id, email = customer
    token = session_of(client, email)
    assert client.post("/v1/accounts/password-reset", json={"email": email}, headers=NO_KEY).status_code == 202
    client.app.state.application.after_answer.wait()  # looked up after the answer
    reset = flow.app.accounts.password_reset_token(UUID(account_id))
    confirmed = client.post("/v1/accounts/password-reset/confirm", json={"token": reset, "password": "NewSecret456"},
                            headers=NO_KEY)
    assert confirmed.status_code == 200, confirmed.text
    assert_problem(client.get("/v1/accounts/me", headers=token), 401, "UNAUTHENTICATED")
    assert log_in(client, email, PASSWORD).status_code == 401
    assert log_in(client, email, "NewSecret456").status_code == 201


def test_an_email_change_ends_every_session_of_the_account(
    client: TestClient, flow: Flow, customer: tuple[str, str]
) -> None:
    account_id, email = customer
    token = session_of(client, email)
    new = f"moved{time.monotonic_ns()}@example.co.jp"
    assert client.patch(f"/v1/accounts/{account_id}", json={"email": new}, headers=token).status_code == 200
    assert client.get("/v1/accounts/me", headers=token).status_code == 200  # not changed until confirmed
    confirm = flow.app.accounts.email_change_token(UUID(account_id))
    assert client.post("/v1/accounts/email/confirm", json={"token": confirm}, headers=NO_KEY).status_code == 200
    assert_problem(client.get("/v1/accounts/me", headers=token), 401, "UNAUTHENTICATED")
    assert log_in(client, email).status_code == 401  # the old login ID is gone


def test_a_provisional_account_cannot_log_in(client: TestClient) -> None:
    email = f"provisional{time.monotonic_ns()}@example.co.jp"
    signed_up = client.post("/v1/accounts", json={
        "email": email, "password": PASSWORD, "name": "山田 太郎", "company_name": "株式会社サンプル",
        "phone": "03-1234-5678", "agree_terms": True}, headers=NO_KEY)
    assert signed_up.status_code == 201
    assert_problem(log_in(client, email), 409, "ACCOUNT_NOT_ACTIVE")


def test_an_unknown_address_and_a_wrong_password_get_the_same_answer_in_the_same_time(
    client: TestClient, customer: tuple[str, str]
) -> None:
    _, email = customer
    client.app.state.runtime.attempt_limits.limits.clear()

    def attempt(address: str) -> tuple[float, int, dict]:
        started = time.perf_counter()
        answer = log_in(client, address, "not-the-password")
        return time.perf_counter() - started, answer.status_code, answer.json()

    wrong = [attempt(email) for _ in range(5)]
    unknown = [attempt(f"nobody{i}@example.co.jp") for i in range(5)]
    assert {(s, b["code"], b["detail"], b["message_ja"]) for _, s, b in wrong + unknown} == {
        (401, "INVALID_CREDENTIALS", "The e-mail address or the password is not correct.",
         "メールアドレスまたはパスワードが正しくありません。")
    }
    # Both check one Argon2 hash: without the dummy check an unknown address answers ~50x sooner.
    wrong_time = statistics.median(t for t, _, _ in wrong)
    unknown_time = statistics.median(t for t, _, _ in unknown)
    assert 0.5 < unknown_time / wrong_time < 2, (unknown_time, wrong_time)


def from_address(client: TestClient, address: str) -> TestClient:
    """The same running app, called from another client address."""
    return TestClient(client.app, client=(address, 50000))


def test_wrong_passwords_slow_down_the_address_and_client_but_never_lock_the_owner_out(
    client: TestClient, customer: tuple[str, str]
) -> None:
    """ASVS 6.3.1 without a lock-out: after the free failures each wrong password from one
    client for one login ID doubles that pair's wait (429 with Retry-After, even for the right
    password from there); another login ID from that client, and the owner from another
    address, are let in at once."""
    _, email = customer
    attacker = from_address(client, "203.0.113.66")
    settings = client.app.state.runtime.settings
    waits = []
    for attempt in range(settings.login_free_failures + 3):
        answer = log_in(attacker, email, "wrong")
        if answer.status_code == 429:
            waits.append(int(answer.headers["Retry-After"]))
            client.app.state.runtime.access.throttle.shared_storage.clear(_wait_key(client, email, "203.0.113.66"))
            answer = log_in(attacker, email, "wrong")
        assert answer.status_code == 401, (attempt, answer.text)
    assert waits == [1, 2, 4], waits  # doubling from the first delay
    refused = log_in(attacker, email)
    assert_problem(refused, 429, "RATE_LIMITED")
    assert int(refused.headers["Retry-After"]) >= 8
    # another login ID from the same client is not slowed down by this pair
    assert log_in(attacker, "someone-else@example.co.jp", "wrong").status_code == 401
    # the owner, at home: let in at once, however many times the attacker tries
    for _ in range(20):
        log_in(attacker, email, "wrong")
    assert log_in(from_address(client, "198.51.100.7"), email).status_code == 201


def _wait_key(client: TestClient, email: str, address: str) -> str:
    """The throttle's wait of a (login ID, address) pair: the test skips it instead of sleeping."""
    throttle = client.app.state.runtime.access.throttle
    from lifecycle.aggregates.index import email_key

    return f"{throttle.namespace}/login-wait/pair/{throttle._keys(email_key(email), address)['pair']}"


def test_a_forwarded_address_counts_only_behind_a_trusted_proxy(tmp_path: Path, clock: FixedClock) -> None:
    """X-Forwarded-For from anyone else is ignored: a client cannot choose the address it is
    throttled under; behind a trusted proxy the address the proxy saw is the client's."""
    settings = settings_for("sqlite", tmp_path, trusted_proxies=["192.0.2.1"], login_free_failures=1)
    with TestClient(create_app(settings, clock=clock)) as app:
        direct = from_address(app, "203.0.113.5")
        proxy = from_address(app, "192.0.2.1")
        assert log_in(direct, "who@example.co.jp", "wrong").status_code == 401
        # a forged header from the direct client does not make it someone else
        forged = direct.post("/v1/sessions", json={"email": "who@example.co.jp", "password": "wrong"},
                             headers={**NO_KEY, "X-Forwarded-For": "198.51.100.1"})
        assert forged.status_code == 429
        # through the trusted proxy: the forwarded client's own count
        via_proxy = proxy.post("/v1/sessions", json={"email": "who@example.co.jp", "password": "wrong"},
                               headers={**NO_KEY, "X-Forwarded-For": "198.51.100.1"})
        assert via_proxy.status_code == 401
        again = proxy.post("/v1/sessions", json={"email": "who@example.co.jp", "password": "wrong"},
                           headers={**NO_KEY, "X-Forwarded-For": "203.0.113.5, 198.51.100.1"})
        assert again.status_code == 429  # the rightmost untrusted hop: 198.51.100.1, waiting now


@pytest.fixture
def limited_settings(tmp_path: Path) -> Settings:
    return settings_for("sqlite", tmp_path, login_limit_per_client="3/minute", password_reset_limit_per_address="2/hour")


def test_the_per_client_limit_and_password_reset_limit(limited_settings: Settings, clock: FixedClock) -> None:
    with TestClient(create_app(limited_settings, clock=clock)) as client:
        for i in range(3):
            assert log_in(client, f"a{i}@example.co.jp").status_code == 401
        assert_problem(log_in(client, "a9@example.co.jp"), 429, "RATE_LIMITED")
        for _ in range(2):
            assert client.post("/v1/accounts/password-reset", json={"email": "x@example.co.jp"}).status_code == 202
        limited = client.post("/v1/accounts/password-reset", json={"email": "x@example.co.jp"})
        assert_problem(limited, 429, "RATE_LIMITED")
        assert int(limited.headers["Retry-After"]) > 60


def test_a_revoked_key_is_refused_at_once_and_its_name_cannot_be_reused(client: TestClient) -> None:
    token = api_key(client, "dashboards", name="board")
    assert client.get("/v1/dashboards/expiry", headers=bearer(token)).status_code == 200
    listed = client.get("/v1/admin/api-keys").json()["keys"]
    board = next(k for k in listed if k["name"] == "board")
    assert board["roles"] == ["dashboards"] and board["last_used_at"] is not None
    assert "token" not in board and token not in client.get("/v1/admin/api-keys").text
    assert client.delete("/v1/admin/api-keys/board").json()["revoked_at"] is not None
    assert_problem(client.get("/v1/dashboards/expiry", headers=bearer(token)), 401, "UNAUTHENTICATED")
    again = client.post("/v1/admin/api-keys", json={"name": "board", "roles": ["dashboards"]})
    assert_problem(again, 409, "API_KEY_NAME_TAKEN")


def test_a_key_made_over_http_is_shown_once_and_works(client: TestClient) -> None:
    made = client.post("/v1/admin/api-keys", json={"name": "auditor", "roles": ["audit"]})
    assert made.status_code == 201, made.text
    token = made.json()["token"]
    assert token.startswith("lk_") and len(token) > 43  # at least 32 random bytes
    assert client.get("/v1/dashboards/expiry", headers=bearer(token)).status_code == 403
    assert_problem(client.post("/v1/admin/api-keys", json={"name": "x", "roles": ["root"]}), 422, "UNKNOWN_ROLE")
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    assert_problem(client.get("/v1/admin/api-keys", headers=bearer(tampered)), 401, "UNAUTHENTICATED")


def test_one_idempotency_key_is_each_callers_and_each_routes_own(client: TestClient, flow: Flow) -> None:
    """A password-reset request with key K does not make a registration with K fail."""
    reset = client.post("/v1/accounts/password-reset", json={"email": "k@example.co.jp"},
                        headers={**NO_KEY, "Idempotency-Key": "K-1"})
    assert reset.status_code == 202
    site_id = flow.ready_site()
    serial = flow.ship()
    body = {**flow.sell_ticket(), "serial": serial}
    first = client.post(f"/v1/sites/{site_id}/registrations", json=body, headers={"Idempotency-Key": "K-1"})
    assert first.status_code == 201, first.text
    again = client.post(f"/v1/sites/{site_id}/registrations", json=body, headers={"Idempotency-Key": "K-1"})
    assert again.status_code == 201 and again.json() == first.json()
    # another caller's K-1 on the same route is its own: here refused on its merits, not replayed
    other = client.post(f"/v1/sites/{site_id}/registrations", json=body,
                        headers={**bearer(api_key(client, "registrations")), "Idempotency-Key": "K-1"})
    assert_problem(other, 409, "TICKET_ALREADY_REGISTERED")


def test_every_event_names_who_made_it_and_in_which_request(
    client: TestClient, flow: Flow, customer: tuple[str, str]
) -> None:
    account_id, email = customer
    company = flow.company(account_id)
    token = session_of(client, email)
    site = client.post(f"/v1/companies/{company['company_id']}/sites", json={
        "name": "東京本社", "postal_code": "100-0001", "prefecture": "東京都", "city": "千代田区", "street": "千代田1-1",
        "person": "佐藤 花子", "phone": "03-1234-5678", "email": "hanako@example.co.jp"},
        headers={**token, "X-Request-ID": "req-site-1"})
    assert site.status_code == 201 and site.headers["X-Request-ID"] == "req-site-1"
    made_up = client.get("/v1/health", headers={"X-Request-ID": "bad id with space"}).headers["X-Request-ID"]
    assert made_up != "bad id with space" and len(made_up) == 32

    audit = bearer(api_key(client, "audit", name="auditor-1"))
    history = client.get(f"/v1/contracts/{company['contract_number']}/history", headers=audit).json()["events"]
    registered, site_added = history[0], history[-1]
    assert registered["type"] == "CompanyRegistered"
    assert registered["actor"]["kind"] == "api_key" and registered["actor"]["name"] == "tests-all-roles"
    assert site_added["type"] == "SiteAdded"
    assert site_added["actor"] == {"kind": "account", "id": account_id, "name": None, "capacity": None, "role": None}
    assert site_added["request_id"] == "req-site-1"
    assert "actor" not in site_added["data"] and "request_id" not in site_added["data"]
    as_of = client.get(f"/v1/contracts/{company['contract_number']}", headers=audit).json()
    assert as_of["last_change"]["type"] == "SiteAdded" and as_of["last_change"]["request_id"] == "req-site-1"


def test_an_event_recorded_outside_any_request_shows_no_actor(client: TestClient, flow: Flow) -> None:
    """As events recorded before access control do: none, and the history still reads."""
    company = flow.company()
    client.app.state.application.companies.rename_company(UUID(company["company_id"]), "株式会社改名")
    history = client.get(f"/v1/contracts/{company['contract_number']}/history").json()["events"]
    assert history[-1]["type"] == "CompanyRenamed"
    assert history[-1]["actor"] is None and history[-1]["request_id"] is None


def test_log_lines_name_ids_never_addresses_names_phones_or_tokens(
    client: TestClient, flow: Flow, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    email = f"private{time.monotonic_ns()}@example.co.jp"
    account_id = flow.active_account(email)
    token = session_of(client, email)
    client.get("/v1/accounts/me", headers=token)
    log_in(client, email, "wrong-password")
    site_id = flow.ready_site()
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert account_id in text or site_id in text or "/v1/" in text  # the request lines are there
    for secret in (email, "山田 太郎", "03-1234-5678", token["Authorization"].split()[1], "wrong-password", PASSWORD):
        assert secret not in text
