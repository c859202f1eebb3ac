"""Access control (SPEC 4, issue 10): every route × every kind of caller.

Two customers, each with an account, a company, a site, a fault contact and a registration.
Every route is called with no credentials, an API key of each role, the customer who owns
the resources in the path, and the other customer; the answer must be what the route's
policy says, and nothing of one customer may appear in what the other is answered."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient

from api.access import POLICIES, Policy
from lifecycle.domain.access import Role
from lifecycle.settings import Settings
from tests.bulk_sheets import filled, upload
from tests.conftest import settings_for
from tests.e2e.conftest import api_key, assert_problem, bearer
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


def _my_bulk_job(w: World) -> str:
    """A bulk job of the first customer's company (made once, directly on the service)."""
    if "bulk_job" not in w.extra:
        sheet = filled([("新規", w.mine.site_name, "99999999", "ZZ99ZZ", next_serial(), None)])
        answer, _ = w.admin_client.app.state.runtime.bulk.submit(UUID(w.mine.company_id), sheet, "mine.xlsx")
        w.extra["bulk_job"] = answer["job_id"]
    return w.extra["bulk_job"]


def _fresh_registration(w: World) -> dict[str, Any]:
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
         _fresh_registration),
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
    Call("GET", "/v1/bulk/{job_id}", lambda w: f"/v1/bulk/{_my_bulk_job(w)}"),
    Call("GET", "/v1/bulk/{job_id}/result.xlsx", lambda w: f"/v1/bulk/{_my_bulk_job(w)}/result.xlsx"),
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


def _answer(world: World, call: Call, token: str | None) -> Any:
    client = world.admin_client
    if call.path == "/v1/sessions/current" and token is not None and token.startswith("ls_"):
        # Logging out ends the token: each customer's call logs out a session of its own.
        email = world.mine.email if token == world.mine.token else world.theirs.email
        token = log_in(client, email)
    headers = bearer(token) if token else {"Authorization": ""}
    body = call.body(world) if call.body else None
    if call.files is not None:
        return client.request(call.method, call.url(world), files=call.files(world), headers=headers)
    return client.request(call.method, call.url(world), json=body, headers=headers)


def _expected(policy: Policy, caller: str, role: Role | None) -> str:
    """"allowed", or the refusal's status as text."""
    if policy.open:
        return "allowed"
    if caller == "none":
        return "401"
    if caller == "key":
        return "allowed" if role in policy.roles else "403"
    if not policy.customers:
        return "403"
    if caller == "other" and policy.owner is not None:
        return "other"
    return "allowed"


def every_operation(client: TestClient) -> set[tuple[str, str]]:
    """Every operation of the OpenAPI document, and the routes the document leaves out
    (`include_in_schema=False`, e.g. /metrics): what a caller can reach."""
    from api.access import PolicyRoute, _every_route

    document = client.get("/openapi.json").json()
    listed = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    hidden = {
        (method, path)
        for route, path in _every_route(client.app)
        if isinstance(route, PolicyRoute) and not route.include_in_schema
        for method in route.methods - {"HEAD"}
    }
    return listed | hidden


def test_every_route_answers_each_kind_of_caller_as_its_policy_says(world: World) -> None:
    """The matrix is built from the OpenAPI document: every operation × anonymous, an API key
    of each role, the customer who owns the resources, and another customer."""
    keys = {role: api_key(world.admin_client, role.value) for role in Role}
    callers: list[tuple[str, Role | None, str | None]] = [
        ("none", None, None),
        *(("key", role, token) for role, token in keys.items()),
        ("owner", None, world.mine.token),
        ("other", None, world.theirs.token),
    ]
    operations = every_operation(world.admin_client)
    assert operations - set(POLICIES) == set(), "operations without a policy in api.access.POLICIES"
    samples = {(c.method, c.path): c for c in CALLS}
    assert operations - set(samples) == set(), "operations without a sample call here: add one to CALLS"
    assert set(POLICIES) - operations == set(), "policies of routes that do not exist"
    wrong: list[str] = []
    for method, path in sorted(operations):
        call = samples[(method, path)]
        policy = POLICIES[(call.method, call.path)]
        for caller, role, token in callers:
            response = _answer(world, call, token)
            who = f"{call.method} {call.path} as {caller}{f' {role.value}' if role else ''}"
            expected = _expected(policy, caller, role)
            status = response.status_code
            if status >= 500:
                wrong.append(f"{who}: {status} {response.text[:200]}")
            elif expected == "allowed":
                if status in (401, 403) or (status == 404 and policy.owner is not None):
                    wrong.append(f"{who}: expected to be let in, got {status} {response.text[:200]}")
            elif expected == "other":
                if status != call.other_status:
                    wrong.append(f"{who}: expected {call.other_status}, got {status} {response.text[:200]}")
            elif str(status) != expected:
                wrong.append(f"{who}: expected {expected}, got {status} {response.text[:200]}")
            if status == 401:
                assert response.headers.get("WWW-Authenticate", "").startswith("Bearer"), who
            if caller in ("owner", "other") and not policy.open and 200 <= status < 300:
                stranger = world.theirs if caller == "owner" else world.mine
                leaked = [m for m in stranger.markers() if m in response.text]
                if leaked:
                    wrong.append(f"{who}: the answer shows the other customer's {leaked}")
    assert not wrong, "\n".join(wrong)


def test_a_customer_finds_its_own_companies_and_sites_and_nothing_else(world: World) -> None:
    client = world.admin_client
    mine = client.get("/v1/companies", headers=bearer(world.mine.token))
    assert mine.status_code == 200, mine.text
    [company] = mine.json()["companies"]
    assert company["contract_number"] == world.mine.contract_number
    assert [s["site_id"] for s in company["sites"]] == [world.mine.site_id]
    me = client.get("/v1/accounts/me", headers=bearer(world.mine.token)).json()
    assert me["account_id"] == world.mine.account_id and me["email"] == world.mine.email
    # another customer's account named in the query: as if it had no companies
    peeking = client.get(f"/v1/companies?account_id={world.theirs.account_id}", headers=bearer(world.mine.token))
    assert peeking.json() == {"companies": []}
    # an API key must say whose
    assert_problem(client.get("/v1/companies"), 422, "ACCOUNT_ID_REQUIRED")
    listed = client.get(f"/v1/companies?account_id={world.theirs.account_id}").json()["companies"]
    assert [c["company_id"] for c in listed] == [world.theirs.company_id]


def test_a_customer_registers_at_its_own_site_only(world: World) -> None:
    client = world.admin_client
    body = _fresh_registration(world)
    refused = client.post(f"/v1/sites/{world.theirs.site_id}/registrations", json=body,
                          headers=bearer(world.mine.token))
    assert_problem(refused, 404, "SITE_NOT_FOUND")
    assert client.get(f"/v1/registrations/{body['serial']}").status_code == 404  # nothing was registered
    done = client.post(f"/v1/sites/{world.mine.site_id}/registrations", json=body, headers=bearer(world.mine.token))
    assert done.status_code == 201, done.text
    listed = client.get(f"/v1/sites/{world.mine.site_id}/registrations", headers=bearer(world.mine.token)).json()
    assert body["serial"] in {r["serial"] for r in listed["registrations"]}


def test_the_openapi_document_has_no_route_without_a_policy_and_declares_the_bearer_scheme(
    anonymous: TestClient,
) -> None:
    document = anonymous.get("/openapi.json").json()
    operations = {(method.upper(), path) for path, item in document["paths"].items() for method in item}
    assert operations, "no operations in the document"
    assert operations - set(POLICIES) == set(), "routes without an entry in api.access.POLICIES"
    assert document["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "description": document["components"]["securitySchemes"]["bearer"]["description"]}
    registration = document["paths"]["/v1/sites/{site_id}/registrations"]["post"]
    assert {"bearer": []} in registration["security"]
    assert {"401", "403"} <= set(registration["responses"])


def test_a_route_without_a_policy_cannot_be_declared() -> None:
    from fastapi import APIRouter

    from api.access import MissingPolicy, PolicyRoute

    router = APIRouter(route_class=PolicyRoute)
    with pytest.raises(MissingPolicy):
        router.add_api_route("/v1/unlisted", lambda: {}, methods=["GET"])


def test_a_route_or_mount_added_beside_the_routers_without_a_policy_stops_the_app(tmp_path: Path) -> None:
    """Routes the routers do not declare (FastAPI's documents, the docs' files) are open
    documents; anything else added to the app has no policy, and create_app refuses it."""
    from starlette.staticfiles import StaticFiles

    from api.access import MissingPolicy, check_every_route_has_a_policy
    from api.app import create_app

    app = create_app(settings_for("sqlite", tmp_path))  # made, so every route it has passed
    check_every_route_has_a_policy(app)
    app.add_api_route("/v1/unlisted", lambda: {}, methods=["GET"])
    with pytest.raises(MissingPolicy, match="/v1/unlisted"):
        check_every_route_has_a_policy(app)
    other = create_app(settings_for("sqlite", tmp_path))
    other.mount("/files", StaticFiles(directory=tmp_path), name="files")
    with pytest.raises(MissingPolicy, match="/files"):
        check_every_route_has_a_policy(other)


def test_the_policy_table_of_docs_security_is_the_one_in_the_code() -> None:
    from api.access import policy_table

    text = (Path(__file__).parents[2] / "docs" / "security.md").read_text(encoding="utf-8")
    documented = text.split("<!-- policy-table -->\n", 1)[1].split("\n<!-- /policy-table -->", 1)[0]
    assert documented == policy_table(), "docs/security.md: paste the output of api.access.policy_table()"
