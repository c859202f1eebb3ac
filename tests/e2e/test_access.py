"""Access control (SPEC 4, issue 10): every route × every kind of caller.

Two customers, each with an account, a company, a site, a fault contact and a registration.
Every route is called with no credentials, an API key of each role, the customer who owns
the resources in the path, and the other customer; the answer must be what the route's
policy says, and nothing of one customer may appear in what the other is answered."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.access import POLICIES, Policy
from lifecycle.domain.access import Role
from tests.callers import CALLS, Call, World, fresh_registration, log_in, store_settings, world  # noqa: F401
from tests.conftest import settings_for
from tests.e2e.conftest import api_key, assert_problem, bearer

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
    body = fresh_registration(world)
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
