"""What a careful attacker tries next (issue 18): ids of the wrong kind, yes/no questions
without credentials, and answers that fail loudly. Ids are uuid5 of natural keys that anyone
can compute, so every id of one kind is tried where an id of each other kind is expected;
an anonymous caller gets the same answer, body shape and time for a registered address as
for an unknown one; nothing answers 500."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, unquote
from uuid import UUID, uuid4

import pytest
from fastapi.testclient import TestClient

from lifecycle.aggregates.api_keys import KeyRing
from lifecycle.aggregates.contract import Contract
from lifecycle.aggregates.idempotency import CommandAnswer
from lifecycle.aggregates.index import Index, email_key
from lifecycle.aggregates.shipments import Ticket, Unit
from tests.bulk_sheets import filled, upload
from tests.callers import CALLS, World, my_bulk_job, store_settings, world  # noqa: F401 - fixtures
from tests.e2e.conftest import api_key, assert_problem, bearer
from tests.scenario import next_serial

NO_KEY = {"Authorization": ""}
SIGN_UP = {"password": "secret123", "name": "山田 太郎", "company_name": "株式会社サンプル", "phone": "03-1234-5678",
           "agree_terms": True}


def ids_of_every_kind(w: World) -> dict[str, UUID]:
    """One id of each kind the service keeps, all of them existing."""
    app = w.admin_client.app.state.application
    key_id = UUID(w.admin_client.post("/v1/admin/api-keys", json={"name": f"k-{uuid4().hex[:6]}",
                                                                    "roles": ["audit"]}).json()["key_id"])
    answer = w.admin_client.post("/v1/shipments", headers={"Idempotency-Key": f"kinds-{uuid4().hex}"}, json={
        "serial": next_serial(), "code_no": "12345-01", "model": "AT-x510-28GTX", "shipped_on": "2026-11-02"})
    assert answer.status_code == 201, answer.text  # leaves a CommandAnswer, the idempotency record
    kinds = {
        "account": UUID(w.mine.account_id),
        "company": UUID(w.mine.company_id),
        "site": UUID(w.mine.site_id),
        "fault_contact": UUID(w.mine.contact_id),
        "bulk_job": UUID(my_bulk_job(w)),
        "api_key": key_id,
        "key_ring": KeyRing.ID,
        "unit": Unit.create_id(w.mine.serial),
        "ticket": Ticket.create_id(w.mine.ticket_id),
        "login_index": Index.create_id(email_key(w.mine.email)),
    }
    assert kinds["company"] == Contract.create_id(w.mine.contract_number)  # computable from its number
    answers = [n for n in app.recorder.select_notifications(start=1, limit=100_000) if "CommandAnswer" in n.topic]
    assert answers, "no idempotency record to try"
    kinds["command_answer"] = answers[-1].originator_id
    for kind, aggregate_id in kinds.items():
        if kind not in ("site", "fault_contact"):  # ids of parts of a contract, not aggregates
            assert app.exists(aggregate_id), kind
    return kinds


def _uuid_routes(document: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(method, path template, parameter) of every operation with a UUID path parameter."""
    found = []
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path" and parameter["schema"].get("format") == "uuid":
                    found.append((method.upper(), path, parameter["name"]))
    return found


def _call(client: TestClient, method: str, path: str, url: str, w: World, headers: dict[str, str]) -> Any:
    template = next((c for c in CALLS if (c.method, c.path) == (method, path)), None)
    assert template is not None, f"{method} {path}: no sample call in tests/e2e/test_access.py"
    if template.files is not None:
        return client.request(method, url, files=template.files(w), headers=headers)
    return client.request(method, url, json=template.body(w) if template.body else None, headers=headers)


def _shape(response: Any, value: str) -> tuple[int, str, str]:
    """Status, code and detail, with the id asked for taken out (it is echoed as given)."""
    body = response.json() if response.headers.get("content-type", "").startswith("application/") else {}
    detail = str(body.get("detail", "")).replace(value, "<id>")
    return response.status_code, body.get("code", ""), detail


def test_an_id_of_every_other_kind_on_every_uuid_path_parameter_answers_as_an_unknown_one(world: World) -> None:
    """For each UUID path parameter of the OpenAPI document, an existing id of every kind the
    service keeps is answered exactly as a random one: same status, code and detail; never
    500. As the internal services (every role) and as the customer who owns the world."""
    client = world.admin_client
    client.app.state.runtime.attempt_limits.limits.clear()
    routes = _uuid_routes(client.get("/openapi.json").json())
    assert len(routes) >= 10, routes
    kinds = ids_of_every_kind(world)
    own = {"company_id": "company", "site_id": "site", "contact_id": "fault_contact", "job_id": "bulk_job",
           "account_id": "account"}
    wrong: list[str] = []
    for who, headers in (("services", {}), ("customer", bearer(world.mine.token))):
        for method, path, name in routes:
            if who == "customer" and "/admin/" in path:
                continue  # refused before any id is looked at (403)
            unknown = str(uuid4())
            expected = _shape(_call(client, method, path, path.replace(f"{{{name}}}", unknown), world, headers),
                              unknown)
            if expected[0] >= 500:
                wrong.append(f"{who} {method} {path} with an unknown id: {expected}")
            for kind, value in kinds.items():
                if own.get(name) == kind:
                    continue  # the right kind: it exists
                url = path.replace(f"{{{name}}}", str(value))
                got = _shape(_call(client, method, path, url, world, headers), str(value))
                if got != expected:
                    wrong.append(f"{who} {method} {path} with a {kind} id: {got}, an unknown id: {expected}")
    assert not wrong, "\n".join(wrong)


def test_the_text_path_parameters_given_a_value_of_another_kind_are_unknown_not_500(world: World) -> None:
    """Serials, ticket ids, contract numbers and key names: each given the others' values (and
    an id) is answered 404 or 422 with the route's own code, never 500."""
    client = world.admin_client
    values = [world.mine.serial, world.mine.ticket_id, world.mine.contract_number, world.mine.email,
              world.mine.account_id, world.mine.company_id, "SU00000000"]
    text_routes = {
        ("GET", "/v1/registrations/{serial}"): "serial",
        ("POST", "/v1/registrations/{serial}/renewals"): "serial",
        ("POST", "/v1/registrations/{serial}/service-upgrades"): "serial",
        ("GET", "/v1/tickets/{ticket_id}/registration"): "ticket_id",
        ("GET", "/v1/contracts/{contract_number}/history"): "contract_number",
        ("GET", "/v1/contracts/{contract_number}"): "contract_number",
        ("DELETE", "/v1/admin/api-keys/{key}"): "key",
        ("GET", "/v1/postal-codes/{code}"): "code",
    }
    right = {"serial": world.mine.serial, "ticket_id": world.mine.ticket_id,
             "contract_number": world.mine.contract_number}
    wrong = []
    for (method, path), name in text_routes.items():
        for value in values:
            if right.get(name) == value:
                continue
            response = _call(client, method, path, path.replace(f"{{{name}}}", quote(value, safe="")), world, {})
            if response.status_code not in (404, 422):
                wrong.append(f"{method} {path} with {value!r}: {response.status_code} {response.text[:200]}")
    assert not wrong, "\n".join(wrong)


def test_a_body_naming_an_account_by_an_id_of_another_kind_is_refused_as_an_unknown_one(world: World) -> None:
    """The body reference of POST /v1/companies: 422 ACCOUNT_NOT_FOUND for every other kind, as
    for a random id."""
    client = world.admin_client
    unknown = str(uuid4())
    expected = _shape(client.post("/v1/companies", json={"account_id": unknown, "name": "株式会社X"}), unknown)
    assert expected[:2] == (422, "ACCOUNT_NOT_FOUND")
    for kind, value in ids_of_every_kind(world).items():
        if kind == "account":
            continue
        got = client.post("/v1/companies", json={"account_id": str(value), "name": "株式会社X"})
        assert _shape(got, str(value)) == expected, kind


def test_a_key_token_built_from_an_id_of_any_kind_is_an_unknown_key(world: World) -> None:
    """The token format names its key's id: one built from any other existing id (an
    account's, a contract's, ...) is refused exactly as one built from a random id."""
    client = world.admin_client
    kinds = ids_of_every_kind(world)
    reference = client.get("/v1/accounts/me", headers=bearer(f"lk_{uuid4().hex}_x"))
    assert_problem(reference, 401, "UNAUTHENTICATED")
    for kind, value in kinds.items():
        if kind == "api_key":
            continue
        got = client.get("/v1/accounts/me", headers=bearer(f"lk_{value.hex}_x"))
        assert (got.status_code, got.json()) == (reference.status_code, reference.json()), kind


def test_a_customer_posting_a_company_with_a_body_that_is_not_json_gets_422(world: World) -> None:
    client = world.admin_client
    for body in (b"not json", b"{", b"\xff\xfe", b"[1,2"):
        response = client.post("/v1/companies", content=body,
                               headers={**bearer(world.mine.token), "content-type": "application/json"})
        assert_problem(response, 422, response.json().get("code", "?"))
        assert response.status_code == 422, (body, response.text)


# --- yes/no questions without credentials -----------------------------------------------------


def timed(request: Callable[[], Any], after: Callable[[], Any] = lambda: None) -> Callable[[], float]:
    """A call that answers how long `request` took (seconds); `after` runs off the clock."""
    def call() -> float:
        started = time.perf_counter()
        request()
        took = time.perf_counter() - started
        after()
        return took
    return call


def interleaved(first: Callable[[], float], second: Callable[[], float], pairs: int = 30) -> tuple[float, float]:
    """Median milliseconds of `first` and `second`, called alternately (which goes first
    alternates too), so that the machine's load falls on both alike."""
    a: list[float] = []
    b: list[float] = []
    for n in range(pairs):
        order = [(first, a), (second, b)] if n % 2 == 0 else [(second, b), (first, a)]
        for call, into in order:
            into.append(call())
    return statistics.median(a) * 1000, statistics.median(b) * 1000


def no_systematic_difference(first: Callable[[], float], second: Callable[[], float], *, relative: float,
                             absolute_ms: float, rounds: int = 3) -> tuple[float, float]:
    """Passes when one of `rounds` runs of 30 interleaved pairs has medians within the
    tolerance: a real difference (every pair slower, as before this change: 3.2 against 2.1
    ms) fails them all; a burst of load on a shared 2-core machine fails one at most."""
    seen = []
    for _ in range(rounds):
        one, two = interleaved(first, second)
        seen.append((round(one, 2), round(two, 2)))
        if abs(one - two) <= max(relative * min(one, two), absolute_ms):
            return one, two
    raise AssertionError(f"a systematic timing difference in every round (medians in ms): {seen}")


def test_A4_password_reset_answers_alike_and_in_the_same_time_for_a_registered_and_an_unknown_address(
    world: World,
) -> None:
    client = world.admin_client
    app = client.app.state.application
    client.app.state.runtime.attempt_limits.limits.clear()  # the timing is the subject here
    registered, unknown = world.mine.email, "nobody-at-all@example.co.jp"
    answers = [client.post("/v1/accounts/password-reset", json={"email": e}, headers=NO_KEY)
               for e in (registered, unknown)]
    assert [a.status_code for a in answers] == [202, 202]
    assert answers[0].json() == answers[1].json()
    assert set(answers[0].headers) == set(answers[1].headers)

    def ask(email: str) -> Callable[[], float]:
        # the work after the answer is waited for off the clock: it is not the answer's time
        return timed(lambda: client.post("/v1/accounts/password-reset", json={"email": email}, headers=NO_KEY),
                     app.after_answer.wait)

    interleaved(ask(registered), ask(unknown), pairs=2)  # warm both paths
    no_systematic_difference(ask(registered), ask(unknown), relative=0.25, absolute_ms=0.3)
    app.after_answer.wait()
    events = [type(e).__name__ for e in app.events.get(UUID(world.mine.account_id))]
    assert events.count("PasswordResetRequested") >= 30  # the registered one's work was done


def test_A4_sign_up_of_a_registered_address_answers_alike_and_in_the_same_time_as_a_new_one(world: World) -> None:
    client = world.admin_client
    client.app.state.runtime.attempt_limits.limits.clear()  # the timing is the subject here
    registered = world.mine.email
    new = client.post("/v1/accounts", json={**SIGN_UP, "email": f"fresh-{uuid4().hex[:8]}@example.jp"}, headers=NO_KEY)
    again = client.post("/v1/accounts", json={**SIGN_UP, "email": registered}, headers=NO_KEY)
    assert new.status_code == again.status_code == 201
    assert set(new.json()) == set(again.json())
    assert {k: v for k, v in new.json().items() if k not in ("account_id", "email")} == \
           {k: v for k, v in again.json().items() if k not in ("account_id", "email")}
    assert set(new.headers) == set(again.headers)
    others = iter(f"timed-{uuid4().hex[:8]}-{n}@example.jp" for n in range(200))
    no_systematic_difference(
        timed(lambda: client.post("/v1/accounts", json={**SIGN_UP, "email": registered}, headers=NO_KEY)),
        timed(lambda: client.post("/v1/accounts", json={**SIGN_UP, "email": next(others)}, headers=NO_KEY)),
        relative=0.25, absolute_ms=2.0,
    )


def test_A4_the_anonymous_token_routes_answer_alike_for_a_real_account_and_an_unknown_one(world: World) -> None:
    """A token naming an existing account with a wrong signature, and one naming no account:
    the same status and body on verify, the e-mail confirm and the reset confirm."""
    client = world.admin_client
    real, nobody = UUID(world.mine.account_id).hex, uuid4().hex
    for path, extra in (("/v1/accounts/verify", {}), ("/v1/accounts/email/confirm", {}),
                        ("/v1/accounts/password-reset/confirm", {"password": "Another123"})):
        one = client.post(path, json={"token": f"{real}.{'0' * 32}", **extra}, headers=NO_KEY)
        two = client.post(path, json={"token": f"{nobody}.{'0' * 32}", **extra}, headers=NO_KEY)
        assert (one.status_code, one.json()) == (two.status_code, two.json()), path
        assert one.status_code == 404


def test_sign_up_and_reset_are_limited_per_address_and_per_client_address(tmp_path: Any, clock: Any) -> None:
    from api.app import create_app
    from tests.conftest import settings_for

    settings = settings_for("sqlite", tmp_path, sign_up_limit_per_client="4/minute",
                            password_reset_limit_per_client="3/minute")
    with TestClient(create_app(settings, clock=clock)) as client:
        statuses = [client.post("/v1/accounts", json={**SIGN_UP, "email": f"burst-{n}@example.jp"}).status_code
                    for n in range(5)]
        assert statuses == [201] * 4 + [429], statuses
        statuses = [client.post("/v1/accounts/password-reset", json={"email": f"r{n}@example.jp"}).status_code
                    for n in range(4)]
        assert statuses == [202] * 3 + [429], statuses
        # another client address is counted apart
        other = TestClient(client.app, client=("198.51.100.20", 50000))
        assert other.post("/v1/accounts", json={**SIGN_UP, "email": "burst-9@example.jp"}).status_code == 201
        # the same address from anywhere: 3 a minute (default), registered or not alike
        statuses = [TestClient(client.app, client=(f"198.51.100.{30 + n}", 50000)).post(
            "/v1/accounts", json={**SIGN_UP, "email": "burst-0@example.jp"}).status_code for n in range(3)]
        assert statuses == [201, 201, 429], statuses


def test_every_open_route_is_limited_per_client_address(tmp_path: Any, clock: Any) -> None:
    from api.app import create_app
    from tests.conftest import settings_for

    settings = settings_for("sqlite", tmp_path, open_route_limit_per_client="5/minute")
    with TestClient(create_app(settings, clock=clock)) as client:
        answers = [client.get("/v1/postal-codes/1000001").status_code for _ in range(6)]
        assert answers == [200] * 5 + [429]
        limited = client.get("/v1/health")
        assert_problem(limited, 429, "RATE_LIMITED")
        assert int(limited.headers["Retry-After"]) >= 1
        # an internal service with a key is not counted as an anonymous client
        assert client.get("/v1/postal-codes/1000001", headers=bearer(api_key(client, "dashboards"))).status_code == 200


# --- what an anonymous caller is told ----------------------------------------------------------


def test_anonymous_health_says_only_whether_the_service_is_up(world: World) -> None:
    client = world.admin_client
    for path in ("/v1/health", "/v1/health/ready"):
        anonymous = client.get(path, headers=NO_KEY)
        assert anonymous.status_code == 200
        assert anonymous.json() == {"status": "up", "ready": True}
        for role in ("registrations", "audit", "callcenter"):
            assert client.get(path, headers=bearer(api_key(client, role))).json() == {"status": "up", "ready": True}
        assert client.get(path, headers=bearer(world.mine.token)).json() == {"status": "up", "ready": True}
        for role in ("admin", "dashboards"):
            detailed = client.get(path, headers=bearer(api_key(client, role))).json()
            assert {"dependencies", "process_id", "projections"} <= set(detailed), role


def test_a_customer_sees_who_acted_on_its_contract_by_kind_and_role_only_without_internal_notes(world: World) -> None:
    client = world.admin_client
    sales = api_key(client, "registrations", name="sales-desk-7")
    upgraded = client.post(f"/v1/registrations/{world.mine.serial}/service-upgrades", headers=bearer(sales),
                           json={"service": "オンサイト", "reason": "値引き交渉中・社内限り"})
    assert upgraded.status_code == 201, upgraded.text
    history = client.get(f"/v1/contracts/{world.mine.contract_number}/history",
                         headers=bearer(world.mine.token)).json()["events"]
    text = str(history)
    key_ids = [k["key_id"] for k in client.get("/v1/admin/api-keys").json()["keys"]]
    assert "sales-desk-7" not in text and "tests-all-roles" not in text and not any(str(k) in text for k in key_ids)
    assert "値引き交渉中" not in text
    actors = {(e["type"], e["actor"]["kind"], e["actor"].get("role")) for e in history if e["actor"]}
    assert ("ServiceLevelUpgraded", "service", "registrations") in actors
    assert {kind for _, kind, _ in actors} <= {"customer", "staff", "service"}
    # the auditors still see everything
    audit = client.get(f"/v1/contracts/{world.mine.contract_number}/history",
                       headers=bearer(api_key(client, "audit"))).json()["events"]
    [note] = [e for e in audit if e["type"] == "ServiceLevelUpgraded"]
    assert note["data"]["reason"] == "値引き交渉中・社内限り" and note["actor"]["name"] == "sales-desk-7"
    as_of = client.get(f"/v1/contracts/{world.mine.contract_number}", headers=bearer(world.mine.token)).json()
    assert as_of["last_change"]["actor"]["kind"] == "service" and "sales-desk-7" not in str(as_of)


# --- downloads ---------------------------------------------------------------------------------


def _file_name(response: Any) -> tuple[str, str]:
    header = response.headers["content-disposition"]
    assert header.isascii(), header
    ascii_name = header.split('filename="', 1)[1].split('"', 1)[0]
    full = unquote(header.split("filename*=UTF-8''", 1)[1])
    return ascii_name, full


def test_every_download_names_its_file_in_rfc_6266_with_an_ascii_fallback(world: World) -> None:
    client = world.admin_client
    template = client.get("/v1/bulk/template.xlsx")
    assert template.status_code == 200
    ascii_name, full = _file_name(template)
    assert full == "一括登録シート.xlsx" and ascii_name.endswith(".xlsx")
    sheet = filled([("新規", world.mine.site_name, "99999999", "ZZ99ZZ", next_serial(), None)])
    uploaded = client.post(f"/v1/companies/{world.mine.company_id}/bulk",
                           files=upload(sheet, name="一括登録シート.xlsx"))
    assert uploaded.status_code == 201, uploaded.text
    result = client.get(f"/v1/bulk/{uploaded.json()['job_id']}/result.xlsx")
    assert result.status_code == 200, result.text
    ascii_name, full = _file_name(result)
    assert full == "一括登録シート.result.xlsx" and ascii_name.endswith(".xlsx") and ascii_name.isascii()
    for path in ("/v1/dashboards/expiry?format=csv", "/v1/dashboards/expiry?format=xlsx"):
        exported = client.get(path)
        assert exported.status_code == 200, exported.text
        ascii_name, full = _file_name(exported)
        assert full.endswith((".csv", ".xlsx")) and ascii_name.isascii()


@pytest.mark.parametrize("name", ['a"b.xlsx', "..\\..\\evil.xlsx", "a\r\nSet-Cookie: x=1.xlsx", "名前.xlsx"])
def test_a_hostile_uploaded_file_name_is_named_safely_in_the_result_download(world: World, name: str) -> None:
    client = world.admin_client
    sheet = filled([("新規", world.mine.site_name, "99999999", "ZZ99ZZ", next_serial(), None)])
    uploaded = client.post(f"/v1/companies/{world.mine.company_id}/bulk", files=upload(sheet, name=name))
    assert uploaded.status_code == 201, uploaded.text
    result = client.get(f"/v1/bulk/{uploaded.json()['job_id']}/result.xlsx")
    assert result.status_code == 200
    header = result.headers["content-disposition"]
    assert "\r" not in header and "\n" not in header and "set-cookie" not in {k.lower() for k in result.headers}
    assert "\\" not in _file_name(result)[1] and "/" not in _file_name(result)[1]
