"""Two customers and a sample call for every route: what the access tests (the role × route
matrix of tests/e2e/test_access.py, the wrong-kind ids of tests/e2e/test_no_oracles.py) share.
Each customer has an account, a company, a site, a fault contact and a registration; `CALLS`
holds one request per operation of the API, keyed by its method and path template."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient

from lifecycle.settings import Settings
from tests.bulk_sheets import filled, upload
from tests.conftest import settings_for
from tests.scenario import Flow, next_serial, next_ticket_id

PASSWORD = "secret123"


@dataclass
class Customer:
    email: str
    account_id: str
    company_id: str
    contract_number: str
    site_id: str
    contact_id: str
    serial: str
    ticket_id: str
    site_name: str
    token: str = ""

    def markers(self) -> list[str]:
        """What identifies this customer's data in an answer."""
        return [self.email, self.account_id, self.company_id, self.contract_number, self.site_id,
                self.contact_id, self.serial, self.ticket_id, self.site_name]


def make_customer(flow: Flow, client: TestClient, site_name: str, person: str) -> Customer:
    email = f"owner-{uuid4().hex[:8]}@example.co.jp"
    account_id = flow.active_account(email)
    company = flow.company(account_id, name=f"{site_name}株式会社")
    site = flow.site(company["company_id"], name=site_name, person=person, email=f"site-{uuid4().hex[:6]}@example.jp")
    contact = flow.fault_contact(site["site_id"], person=person, mail1=f"noc-{uuid4().hex[:6]}@example.jp")
    serial = flow.ship()
    ticket = flow.sell_ticket()
    flow.register(site["site_id"], ticket, serial)
    customer = Customer(email, account_id, company["company_id"], company["contract_number"], site["site_id"],
                        contact["contact_id"], serial, ticket["ticket_id"], site_name)
    customer.token = log_in(client, email)
    return customer


def log_in(client: TestClient, email: str) -> str:
    answer = client.post("/v1/sessions", json={"email": email, "password": PASSWORD}, headers={"Authorization": ""})
    assert answer.status_code == 201, answer.text
    return answer.json()["token"]


@dataclass
class Call:
    method: str
    path: str  # the route's template, as in POLICIES
    url: Callable[["World"], str]
    body: Callable[["World"], Any] | None = None
    # The other customer's answer when the route is theirs to see but the resource is not:
    # 404 as if it did not exist (422 when the resource is named in the body).
    other_status: int = 404
    files: Callable[["World"], Any] | None = None  # a multipart upload instead of a JSON body


@dataclass
class World:
    flow: Flow
    mine: Customer
    theirs: Customer
    admin_client: TestClient
    extra: dict[str, Any] = field(default_factory=dict)


def _site(name: str) -> dict[str, Any]:
    return {"name": name, "postal_code": "100-0001", "prefecture": "東京都", "city": "千代田区", "street": "千代田1-1",
            "person": "佐藤 花子", "phone": "03-1234-5678", "email": "hanako@example.co.jp"}


def _contact() -> dict[str, Any]:
    return {"company": "株式会社サンプル", "postal_code": "1000001", "street": "千代田1-1", "person": "鈴木 一郎",
            "phone": "03-2345-6789", "mail1": "noc@example.co.jp", "mail2": "ichiro@example.co.jp"}


def my_bulk_job(w: World) -> str:
    """A bulk job of the first customer's company (made once, directly on the service)."""
    if "bulk_job" not in w.extra:
        sheet = filled([("新規", w.mine.site_name, "99999999", "ZZ99ZZ", next_serial(), None)])
        answer, _ = w.admin_client.app.state.runtime.bulk.submit(UUID(w.mine.company_id), sheet, "mine.xlsx")
        w.extra["bulk_job"] = answer["job_id"]
    return w.extra["bulk_job"]


def fresh_registration(w: World) -> dict[str, Any]:
    serial = w.flow.ship()
    return {**w.flow.sell_ticket(), "serial": serial}


CALLS = [
    Call("GET", "/v1/health", lambda w: "/v1/health"),
    Call("GET", "/v1/health/ready", lambda w: "/v1/health/ready"),
    Call("GET", "/v1/postal-codes/{code}", lambda w: "/v1/postal-codes/1000001"),
    Call("POST", "/v1/accounts", lambda w: "/v1/accounts", lambda w: {
        "email": f"new-{uuid4().hex[:8]}@example.jp", "password": PASSWORD, "name": "新規 太郎",
        "company_name": "株式会社新規", "phone": "03-1234-5678", "agree_terms": True}),
    Call("POST", "/v1/accounts/verify", lambda w: "/v1/accounts/verify", lambda w: {"token": "not-a-token"}),
    Call("POST", "/v1/accounts/email/confirm", lambda w: "/v1/accounts/email/confirm", lambda w: {"token": "nope"}),
    Call("POST", "/v1/accounts/password-reset", lambda w: "/v1/accounts/password-reset",
         lambda w: {"email": f"nobody-{uuid4().hex[:6]}@example.jp"}),
    Call("POST", "/v1/accounts/password-reset/confirm", lambda w: "/v1/accounts/password-reset/confirm",
         lambda w: {"token": "nope", "password": "Another123"}),
    Call("POST", "/v1/sessions", lambda w: "/v1/sessions", lambda w: {"email": w.mine.email, "password": PASSWORD}),
    Call("DELETE", "/v1/sessions/current", lambda w: "/v1/sessions/current"),
    Call("GET", "/v1/accounts/me", lambda w: "/v1/accounts/me"),
    Call("GET", "/v1/accounts/{account_id}", lambda w: f"/v1/accounts/{w.mine.account_id}"),
    Call("PATCH", "/v1/accounts/{account_id}", lambda w: f"/v1/accounts/{w.mine.account_id}",
         lambda w: {"name": "山田 太郎"}),
    Call("POST", "/v1/shipments", lambda w: "/v1/shipments", lambda w: {
        "serial": next_serial(), "code_no": "12345-01", "model": "AT-x510-28GTX", "shipped_on": "2026-11-02"}),
    Call("POST", "/v1/tickets", lambda w: "/v1/tickets", lambda w: {
        "ticket_id": next_ticket_id(), "verification_code": "AB12CD", "code_no": "12345-99",
        "service": "デリバリースタンダード", "term_years": 1, "kind": "new", "sold_on": "2026-11-10"}),
    Call("GET", "/v1/companies", lambda w: f"/v1/companies?account_id={w.mine.account_id}"),
    Call("POST", "/v1/companies", lambda w: "/v1/companies",
         lambda w: {"account_id": w.mine.account_id, "name": "株式会社追加"}, other_status=422),
    Call("GET", "/v1/companies/{company_id}", lambda w: f"/v1/companies/{w.mine.company_id}"),
    Call("PATCH", "/v1/companies/{company_id}", lambda w: f"/v1/companies/{w.mine.company_id}",
         lambda w: {"name": f"{w.mine.site_name}株式会社"}),
    Call("POST", "/v1/companies/{company_id}/sites", lambda w: f"/v1/companies/{w.mine.company_id}/sites",
         lambda w: _site("追加拠点")),
    Call("GET", "/v1/sites/{site_id}", lambda w: f"/v1/sites/{w.mine.site_id}"),
    Call("PATCH", "/v1/sites/{site_id}", lambda w: f"/v1/sites/{w.mine.site_id}", lambda w: {"name": w.mine.site_name}),
    Call("POST", "/v1/sites/{site_id}/fault-contacts", lambda w: f"/v1/sites/{w.mine.site_id}/fault-contacts",
         lambda w: _contact()),
    Call("GET", "/v1/fault-contacts/{contact_id}", lambda w: f"/v1/fault-contacts/{w.mine.contact_id}"),
    Call("PATCH", "/v1/fault-contacts/{contact_id}", lambda w: f"/v1/fault-contacts/{w.mine.contact_id}",
         lambda w: {"person": "鈴木 一郎"}),
    Call("POST", "/v1/sites/{site_id}/registrations", lambda w: f"/v1/sites/{w.mine.site_id}/registrations",
         fresh_registration),
    Call("POST", "/v1/sites/{site_id}/bundles", lambda w: f"/v1/sites/{w.mine.site_id}/bundles",
         lambda w: {"serial": next_serial(), "option_serials": []}),
    Call("GET", "/v1/sites/{site_id}/registrations", lambda w: f"/v1/sites/{w.mine.site_id}/registrations"),
    Call("POST", "/v1/registrations/{serial}/renewals", lambda w: f"/v1/registrations/{w.mine.serial}/renewals",
         lambda w: {"ticket_id": "99999999", "verification_code": "ZZ99ZZ"}),
    Call("GET", "/v1/registrations/{serial}", lambda w: f"/v1/registrations/{w.mine.serial}"),
    Call("POST", "/v1/registrations/{serial}/service-upgrades",
         lambda w: f"/v1/registrations/{w.mine.serial}/service-upgrades", lambda w: {"service": "オンサイト"}),
    Call("GET", "/v1/bulk/template.xlsx", lambda w: "/v1/bulk/template.xlsx"),
    Call("POST", "/v1/companies/{company_id}/bulk", lambda w: f"/v1/companies/{w.mine.company_id}/bulk?dry_run=true",
         files=lambda w: upload(filled([("新規", w.mine.site_name, "99999999", "ZZ99ZZ", next_serial(), None)]))),
    Call("GET", "/v1/bulk/{job_id}", lambda w: f"/v1/bulk/{my_bulk_job(w)}"),
    Call("GET", "/v1/bulk/{job_id}/result.xlsx", lambda w: f"/v1/bulk/{my_bulk_job(w)}/result.xlsx"),
    Call("GET", "/v1/tickets/{ticket_id}/registration", lambda w: f"/v1/tickets/{w.mine.ticket_id}/registration"),
    Call("POST", "/v1/entitlements/check", lambda w: "/v1/entitlements/check", lambda w: {"serials": [w.mine.serial]}),
    Call("POST", "/v1/inquiries/check", lambda w: "/v1/inquiries/check",
         lambda w: {"contract_number": w.mine.contract_number, "phone": "03-2345-6789"}),
    Call("GET", "/v1/contracts/{contract_number}/history",
         lambda w: f"/v1/contracts/{w.mine.contract_number}/history"),
    Call("GET", "/v1/contracts/{contract_number}", lambda w: f"/v1/contracts/{w.mine.contract_number}"),
    Call("GET", "/v1/dashboards/expiry", lambda w: "/v1/dashboards/expiry"),
    Call("GET", "/v1/dashboards/service-in", lambda w: "/v1/dashboards/service-in"),
    Call("GET", "/metrics", lambda w: "/metrics"),
    Call("GET", "/v1/admin/notifications/failed", lambda w: "/v1/admin/notifications/failed"),
    Call("GET", "/v1/admin/notifications/{notification_id}", lambda w: f"/v1/admin/notifications/{uuid4()}"),
    Call("POST", "/v1/admin/notifications/{notification_id}/resend",
         lambda w: f"/v1/admin/notifications/{uuid4()}/resend", lambda w: {}),
    Call("POST", "/v1/admin/timers/run", lambda w: "/v1/admin/timers/run",
         lambda w: {"as_of": "2026-11-20T10:00:00+09:00"}),
    Call("GET", "/v1/admin/api-keys", lambda w: "/v1/admin/api-keys"),
    Call("POST", "/v1/admin/api-keys", lambda w: "/v1/admin/api-keys",
         lambda w: {"name": f"svc-{uuid4().hex[:8]}", "roles": ["dashboards"]}),
    Call("DELETE", "/v1/admin/api-keys/{key}", lambda w: "/v1/admin/api-keys/no-such-key"),
    Call("GET", "/v1/accounts/me/personal-data", lambda w: "/v1/accounts/me/personal-data"),
    Call("POST", "/v1/admin/personal-data/forget", lambda w: "/v1/admin/personal-data/forget",
         lambda w: {"kind": "fault-contact", "subject_id": str(uuid4()), "reason": "test"}),
    Call("GET", "/v1/admin/personal-data/{kind}/{subject_id}", lambda w: f"/v1/admin/personal-data/account/{uuid4()}"),
    Call("GET", "/v1/audit/checkpoints/latest", lambda w: "/v1/audit/checkpoints/latest"),
    Call("GET", "/v1/audit/checkpoints/{tree_size}", lambda w: "/v1/audit/checkpoints/1"),
    Call("GET", "/v1/audit/proofs/inclusion", lambda w: "/v1/audit/proofs/inclusion?index=0&tree_size=1"),
    Call("GET", "/v1/audit/proofs/consistency", lambda w: "/v1/audit/proofs/consistency?first=1&second=1"),
    Call("GET", "/v1/events", lambda w: "/v1/events?limit=5"),
]


@pytest.fixture
def store_settings(tmp_path: Path) -> Settings:
    """SQLite, with the timer test aid's route (it has a policy too)."""
    return settings_for("sqlite", tmp_path, allow_clock_override=True)


@pytest.fixture
def world(client: TestClient) -> World:
    client.app.state.runtime.attempt_limits.limits.clear()  # the matrix logs in many times
    flow = Flow(client, client.app.state.application)
    mine = make_customer(flow, client, "東京本社", "佐藤 花子")
    theirs = make_customer(flow, client, "大阪支店", "田中 次郎")
    return World(flow, mine, theirs, client)
