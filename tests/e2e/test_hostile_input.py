"""Issue 11: hostile input is refused at the door, on SQLite and PostgreSQL, with 4xx
problem+json and nothing stored; no input gives a 5xx or stops a read model.

Most tests share one service per store (a refusal changes nothing, and the log head is
checked to prove it); the ones that break or need a read model of their own get a fresh one.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.fields import NOT_BLANK_PATTERN, ONE_LINE_PATTERN
from lifecycle.aggregates.index import email_key
from lifecycle.domain.dates import TOKYO
from lifecycle.projections.parties import Parties
from lifecycle.settings import Settings
from tests.conftest import settings_for
from tests.e2e.conftest import api_key, assert_problem, bearer
from tests.fakes import FixedClock
from tests.scenario import Flow, next_serial, next_ticket_id

# --- the shared service, with one of everything a path can name ---------------------------


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp(f"hostile-{request.param}")
    url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    settings = settings_for(request.param, tmp, url, allow_clock_override=True)
    with TestClient(create_app(settings, clock=FixedClock(datetime(2026, 11, 20, 10, tzinfo=TOKYO)))) as client:
        client.headers.update(bearer(api_key(client)))
        flow = Flow(client, client.app.state.application)
        account_id = flow.active_account()
        company = flow.company(account_id)
        site_id = flow.site(company["company_id"])["site_id"]
        contact_id = flow.fault_contact(site_id)["contact_id"]
        serial = flow.ship()
        registration = flow.register(site_id, flow.sell_ticket(), serial)
        yield {
            "client": client,
            "app": client.app.state.application,
            "store": request.param,
            "account_id": account_id,
            "company_id": company["company_id"],
            "contract_number": company["contract_number"],
            "site_id": site_id,
            "contact_id": contact_id,
            "serial": registration["serial"],
        }


def head(world: dict[str, Any]) -> int:
    return world["app"].recorder.max_notification_id() or 0


def send(client: TestClient, method: str, path: str, body: Any) -> Any:
    # ensure_ascii: a lone surrogate travels as the JSON escape \ud800, as a client would send it.
    return client.request(method, path, content=json.dumps(body).encode(), headers={"content-type": "application/json"})


# --- every text field of every route -----------------------------------------------------

SHIPMENT = {
    "serial": "S/N:HOSTILE000000001 A", "code_no": "No.:12345-01", "model": "AT-x510", "shipped_on": "2026-11-02",
    "bundle": {
        "service": "デリバリースタンダード", "term_years": 1, "sold_on": "2026-11-10", "ticket_model": "TK-1",
        "options": [{"serial": "OPT0000000000001", "code_no": "12345-02", "model": "PWR"}],
    },
}
TICKET = {
    "ticket_id": "87654321", "verification_code": "AB12CD", "code_no": "12345-99",
    "service": "デリバリースタンダード", "term_years": 1, "kind": "new", "sold_on": "2026-11-10",
}
ACCOUNT = {
    "email": "hostile@example.co.jp", "password": "secret123", "name": "山田 太郎",
    "company_name": "株式会社サンプル", "phone": "03-1234-5678", "agree_terms": True,
}
SITE = {
    "name": "東京本社", "postal_code": "100-0001", "prefecture": "東京都", "city": "千代田区", "street": "千代田1-1",
    "building": "ビル", "person": "佐藤 花子", "phone": "03-1234-5678", "email": "hanako@example.co.jp",
}
CONTACT = {
    "company": "株式会社サンプル", "postal_code": "1000001", "prefecture": "東京都", "city": "千代田区",
    "street": "千代田1-1", "building": "ビル", "person": "鈴木 一郎", "phone": "03-2345-6789",
    "mail1": "noc@example.co.jp", "mail2": "ichiro@example.co.jp",
}
# Valid bodies of the operations whose fields need more than the smallest valid value (a site
# with a real postal code, a shipment with a bundle and one option); PATCH bodies start empty
# and hold only the field tried. Every other operation gets a body made from its schema.
BASES: dict[tuple[str, str], dict[str, Any]] = {
    ("POST", "/v1/shipments"): SHIPMENT,
    ("POST", "/v1/tickets"): TICKET,
    ("POST", "/v1/accounts"): ACCOUNT,
    ("POST", "/v1/accounts/password-reset/confirm"): {"token": "x.y", "password": "secret123"},
    ("POST", "/v1/companies"): {"account_id": "{account_id}", "name": "株式会社サンプル"},
    ("POST", "/v1/companies/{company_id}/sites"): SITE,
    ("POST", "/v1/sites/{site_id}/fault-contacts"): CONTACT,
    ("POST", "/v1/sites/{site_id}/registrations"): {
        "ticket_id": "87654321", "verification_code": "AB12CD", "serial": "SN1",
    },
    ("POST", "/v1/sites/{site_id}/bundles"): {"serial": "SN1", "option_serials": ["OPT1"]},
    ("POST", "/v1/registrations/{serial}/service-upgrades"): {"service": "オンサイト", "reason": "営業対応"},
    ("POST", "/v1/inquiries/check"): {
        "contract_number": "SU00000001", "serial": "SN1", "email": "a@example.co.jp", "phone": "03-1234-5678",
        "company": "株式会社サンプル",
    },
    ("POST", "/v1/admin/api-keys"): {"name": "hostile-key", "roles": ["dashboards"]},
}
# POST and PATCH operations without a JSON body, and why the sweep leaves them out.
NOT_JSON = {
    ("POST", "/v1/companies/{company_id}/bulk"): "a multipart sheet: its cells are tried by tests/e2e/test_bulk_api.py",
    ("POST", "/v1/admin/notifications/{notification_id}/resend"): "no body",
}

# The document as the service serves it (with the clock-override aid's route), read once.
DOCUMENT = create_app(Settings(_env_file=None, allow_clock_override=True)).openapi()


def _resolved(schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = DOCUMENT["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    if "anyOf" in schema:  # `X | None`, or an e-mail address or "": the first non-null kind
        schema = _resolved(next(s for s in schema["anyOf"] if _resolved(s).get("type") != "null"))
    return schema


def fields_of(schema: dict[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every field of a body, nested ones as `bundle.options.0.serial`, objects and lists too."""
    schema = _resolved(schema)
    if prefix:
        yield ".".join(prefix), schema
    if schema.get("type") == "object":
        for name, inner in schema.get("properties", {}).items():
            yield from fields_of(inner, (*prefix, name))
    elif schema.get("type") == "array":
        yield from fields_of(schema["items"], (*prefix, "0"))


def smallest_valid(schema: dict[str, Any]) -> Any:
    """A value the schema accepts: required members only, one item per list."""
    schema = _resolved(schema)
    kind = schema.get("type")
    if "enum" in schema or "const" in schema:
        return schema.get("enum", [schema.get("const")])[0]
    if kind == "object":
        return {name: smallest_valid(inner) for name, inner in schema.get("properties", {}).items()
                if name in schema.get("required", [])}
    if kind == "array":
        return [smallest_valid(schema["items"])]
    if kind == "boolean":
        return True  # a consent must be given
    if kind in ("integer", "number"):
        return int(schema.get("minimum", 1))
    by_format = {"email": "hostile@example.co.jp", "date": "2026-11-10", "date-time": "2026-11-20T10:00:00+09:00",
                 "uuid": "00000000-0000-0000-0000-000000000000"}
    return by_format.get(schema.get("format"), "a" * max(1, schema.get("minLength", 1)))


def _json_operations() -> Iterator[tuple[str, str, dict[str, Any], dict[str, dict[str, Any]]]]:
    for path, methods in DOCUMENT["paths"].items():
        for method, operation in methods.items():
            content = operation.get("requestBody", {}).get("content", {})
            if method in ("post", "patch") and "application/json" in content:
                schema = content["application/json"]["schema"]
                base = BASES.get((method.upper(), path), {} if method == "patch" else smallest_valid(schema))
                yield method.upper(), path, base, dict(fields_of(schema))


# (method, path, a valid body, its fields by name), for every POST and PATCH with a JSON body.
OPERATIONS = list(_json_operations())
ONE_LINE = {ONE_LINE_PATTERN, NOT_BLANK_PATTERN}


def is_text(field: dict[str, Any]) -> bool:
    """One line of text (api.fields.SingleLine) or an e-mail address: refused as INVALID_TEXT."""
    return field.get("type") == "string" and (field.get("pattern") in ONE_LINE or field.get("format") == "email")


FIELD_CASES = [
    pytest.param(method, path, base, name, field, id=f"{method} {path} {name}")
    for method, path, base, fields in OPERATIONS
    for name, field in fields.items()
    if is_text(field)
]
OPERATION_CASES = [pytest.param(*operation, id=f"{operation[0]} {operation[1]}") for operation in OPERATIONS]

HOSTILE_TEXT = {
    "NUL": "a\x00b",
    "CR/LF": "a\r\nb",
    "LF": "a\nb",
    "TAB": "a\tb",
    "BEL": "a\x07b",
    "ESC": "a\x1b[31mb",
    "DEL": "a\x7fb",
    "C1 NEL": "a\x85b",
    "lone surrogate": "a\ud800b",
    "line separator": "a\u2028b",
    "right-to-left override": "a\u202eb",
}


def with_field(base: dict[str, Any], field: str, value: Any) -> dict[str, Any]:
    body = copy.deepcopy(base)
    *parents, last = field.split(".")
    target: Any = body
    for part in parents:
        target = target[int(part)] if part.isdigit() else target.setdefault(part, {})
    if last.isdigit():
        target[int(last)] = value
    else:
        target[last] = value
    return body


def resolve(world: dict[str, Any], path: str, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    ids = {k: v for k, v in world.items() if isinstance(v, str)}
    text = json.dumps(body).replace('"{account_id}"', json.dumps(ids["account_id"]))
    return path.format(**ids), json.loads(text)


@pytest.mark.parametrize(("method", "path", "base", "name", "field"), FIELD_CASES)
def test_every_text_field_refuses_control_characters_nul_lone_surrogates_and_10k_strings(
    world: dict[str, Any], method: str, path: str, base: dict[str, Any], name: str, field: dict[str, Any]
) -> None:
    """No field is multi-line; PostgreSQL cannot store NUL; a CR/LF in a name would become a
    new line in a mail. Each is refused with INVALID_TEXT, a 10,000-character string by the
    field's length cap, and nothing is stored."""
    client, before = world["client"], head(world)
    for label, value in HOSTILE_TEXT.items():
        hostile = f"x{value}@example.co.jp" if field.get("format") == "email" else value
        url, body = resolve(world, path, with_field(base, name, hostile))
        problem = assert_problem(send(client, method, url, body), 422, "INVALID_TEXT",
                                 "使用できない文字（改行・タブ・制御文字など）が含まれています。")
        assert any(e["type"] in ("invalid_text", "string_unicode") for e in problem["errors"]), (label, problem)
        assert_only_at(problem, name)
    url, body = resolve(world, path, with_field(base, name, "x" * 10_000))
    problem = assert_problem(send(client, method, url, body), 422, "VALIDATION_ERROR")
    assert "string_too_long" in {e["type"] for e in problem["errors"]}
    assert_only_at(problem, name)
    assert head(world) == before


def assert_only_at(problem: dict[str, Any], name: str) -> None:
    """The refusal names the field tried and nothing else: the rest of the body is valid."""
    at = ["body", *(int(p) if p.isdigit() else p for p in name.split("."))]
    assert all(e["loc"][: len(at)] == at for e in problem["errors"]), (name, problem["errors"])


def wrong_types(field: dict[str, Any]) -> list[Any]:
    """JSON values of every other type than the field's own."""
    others = {"string": "1", "integer": 1, "boolean": True, "object": {"a": "b"}, "array": ["a"]}
    own = field.get("type")
    values = [v for kind, v in others.items() if kind != own and not (own == "number" and kind == "integer")]
    if own == "integer":
        values.append(1.5)  # 1.0 is an integer in JSON; 1.5 is not
    return values


@pytest.mark.parametrize(("method", "path", "base", "fields"), OPERATION_CASES)
def test_every_field_of_every_post_and_patch_refuses_the_wrong_json_type(
    world: dict[str, Any], method: str, path: str, base: dict[str, Any], fields: dict[str, dict[str, Any]]
) -> None:
    """A number for a name, a string for a term, a list for a bundle, an object for a date:
    422 naming that field; the fields that are no free text (a kind, a date, an id, a key's
    name) refuse hostile text too; and nothing is stored."""
    client, before = world["client"], head(world)
    for name, field in fields.items():
        for value in wrong_types(field):
            url, body = resolve(world, path, with_field(base, name, value))
            problem = assert_problem(send(client, method, url, body), 422, "VALIDATION_ERROR")
            assert_only_at(problem, name)
        if field.get("type") == "string" and not is_text(field):
            for value in ("a\x00b", "a\r\nb", "a\x07b", "a\x1b[31mb", "a\ud800b", "x" * 10_000):
                url, body = resolve(world, path, with_field(base, name, value))
                response = send(client, method, url, body)
                assert response.status_code == 422, (name, value[:20], response.text)
                problem = response.json()
                assert problem["code"] in ("VALIDATION_ERROR", "INVALID_TEXT"), problem
                assert_only_at(problem, name)
    assert head(world) == before


DATES_OUT_OF_RANGE = {"date": ("9999-12-31", "1000-01-01"),
                      "date-time": ("9999-12-31T23:00:00-10:00", "1000-01-01T00:00:00+09:00")}


@pytest.mark.parametrize(("method", "path", "base", "fields"), [
    case for case in OPERATION_CASES if any(f.get("format") in DATES_OUT_OF_RANGE for f in case.values[3].values())
])
def test_every_date_of_every_post_and_patch_refuses_the_years_1000_and_9999(
    world: dict[str, Any], method: str, path: str, base: dict[str, Any], fields: dict[str, dict[str, Any]]
) -> None:
    client, before = world["client"], head(world)
    for name, field in fields.items():
        for value in DATES_OUT_OF_RANGE.get(field.get("format"), ()):
            url, body = resolve(world, path, with_field(base, name, value))
            assert_only_at(assert_problem(send(client, method, url, body), 422, "DATE_OUT_OF_RANGE"), name)
    assert head(world) == before


def test_the_sweep_covers_every_post_and_patch_of_the_document() -> None:
    """A new POST or PATCH is swept as soon as it is in the document, or listed in NOT_JSON."""
    documented = {(m.upper(), p) for p, ms in DOCUMENT["paths"].items() for m in ms if m in ("post", "patch")}
    swept = {(method, path) for method, path, _, fields in OPERATIONS if fields}
    assert documented == swept | set(NOT_JSON)
    assert not swept & set(NOT_JSON)
    assert set(BASES) <= swept
    assert len(FIELD_CASES) > 80


# --- strict types and dates ---------------------------------------------------------------

DATE_FIELDS = [("/v1/tickets", TICKET, "sold_on"), ("/v1/shipments", SHIPMENT, "shipped_on"),
               ("/v1/shipments", SHIPMENT, "bundle.sold_on")]
TERM_FIELDS = [("/v1/tickets", TICKET, "term_years"), ("/v1/shipments", SHIPMENT, "bundle.term_years")]


def test_A1_consent_is_json_true_only(world: dict[str, Any]) -> None:
    before = head(world)
    for value in ("yes", "true", 1, "on", None):
        response = send(world["client"], "POST", "/v1/accounts", {**ACCOUNT, "agree_terms": value})
        problem = assert_problem(response, 422, "VALIDATION_ERROR")
        assert ["body", "agree_terms"] in [e["loc"] for e in problem["errors"]], value
    assert head(world) == before


@pytest.mark.parametrize(("path", "base", "field"), TERM_FIELDS)
def test_term_years_is_a_small_json_integer(world: dict[str, Any], path: str, base: dict, field: str) -> None:
    before = head(world)
    for value in (True, "1", 1.5, 0, 100):
        response = send(world["client"], "POST", path, with_field(base, field, value))
        problem = assert_problem(response, 422, "VALIDATION_ERROR")
        assert ["body", *field.split(".")] in [e["loc"] for e in problem["errors"]], value
    assert head(world) == before


def test_a_term_written_1_point_0_is_the_integer_1(flow: Flow) -> None:
    """JSON does not tell 1.0 from 1, nor does the document's JSON Schema (schemathesis sent it)."""
    ticket = flow.post("/v1/tickets", {**TICKET, "ticket_id": next_ticket_id(), "term_years": 1.0})
    assert ticket["term_years"] == 1
    shipment = with_field({**SHIPMENT, "serial": next_serial()}, "bundle.term_years", 5.0)
    assert flow.post("/v1/shipments", shipment)["bundle"]["term_years"] == 5


@pytest.mark.parametrize(("path", "base", "field"), DATE_FIELDS)
def test_a_date_is_an_iso_date_string_not_a_number(world: dict[str, Any], path: str, base: dict, field: str) -> None:
    before = head(world)
    for value in (42, 0, 86_400, 20_402 * 86_400, "2026-11-10T00:00:00", "20261110", "2026-02-30", True):
        response = send(world["client"], "POST", path, with_field(base, field, value))
        problem = assert_problem(response, 422, "VALIDATION_ERROR")
        assert ["body", *field.split(".")] in [e["loc"] for e in problem["errors"]], value
    assert head(world) == before


@pytest.mark.parametrize(("path", "base", "field"), DATE_FIELDS)
@pytest.mark.parametrize("value", ["9999-12-31", "9998-10-10", "2101-01-01", "1999-12-31", "0001-01-01"])
def test_dates_outside_2000_to_2100_are_refused(world: dict[str, Any], path: str, base: dict, field: str, value: str) -> None:
    """A sale in 9998 was accepted and then made the registration answer 500 (OverflowError)."""
    before = head(world)
    response = send(world["client"], "POST", path, with_field(base, field, value))
    assert_problem(response, 422, "DATE_OUT_OF_RANGE", "日付は2000年1月1日から2100年12月31日までの範囲で入力してください。")
    assert head(world) == before


def test_the_accepted_date_range_is_2000_01_01_to_2100_12_31_inclusive(world: dict[str, Any]) -> None:
    flow = Flow(world["client"], world["app"])
    for outside in ("1999-12-31", "2101-01-01"):
        assert_problem(send(world["client"], "POST", "/v1/tickets", {**TICKET, "sold_on": outside}),
                       422, "DATE_OUT_OF_RANGE")
    for sold_on in ("2000-01-01", "2100-12-31"):
        ticket = flow.sell_ticket(sold_on=sold_on)
        serial = flow.ship(shipped_on=sold_on)
        registration = flow.register(world["site_id"], ticket, serial)
        assert registration["period"]["start"] > sold_on


def test_the_timer_aid_takes_an_iso_instant_in_range(world: dict[str, Any]) -> None:
    for value, code in (("9999-12-31T23:00:00-10:00", "DATE_OUT_OF_RANGE"), ("0001-01-01T00:00:00+14:00",
                        "DATE_OUT_OF_RANGE"), (42, "VALIDATION_ERROR"), ("yesterday", "VALIDATION_ERROR")):
        response = send(world["client"], "POST", "/v1/admin/timers/run", {"as_of": value})
        assert_problem(response, 422, code)


# --- lists ---------------------------------------------------------------------------------


def test_lists_in_bodies_are_capped(world: dict[str, Any]) -> None:
    """Option serials, serial lists and a bundle's options: at most 100 each."""
    before = head(world)
    options = [{"serial": f"OPT{n:013d}", "code_no": "12345-02", "model": "M"} for n in range(101)]
    for method, path, body in (
        ("POST", "/v1/shipments", with_field(SHIPMENT, "bundle.options", options)),
        ("POST", "/v1/sites/{site_id}/bundles", {"serial": "SN1", "option_serials": [f"OPT{n}" for n in range(101)]}),
        ("POST", "/v1/entitlements/check", {"serials": [f"SN{n}" for n in range(101)]}),
    ):
        url, body = resolve(world, path, body)
        problem = assert_problem(send(world["client"], method, url, body), 422, "VALIDATION_ERROR")
        assert "too_long" in {e["type"] for e in problem["errors"]}, path
    assert head(world) == before


# --- query and path parameters ---------------------------------------------------------------

QUERY_TEXT = [
    ("/v1/dashboards/expiry", "contract_number"), ("/v1/dashboards/expiry", "service"),
    ("/v1/dashboards/expiry", "model"), ("/v1/dashboards/expiry", "company"),
    ("/v1/dashboards/service-in", "contract_number"), ("/v1/contracts/{contract_number}/history", "type"),
]


@pytest.mark.parametrize(("path", "param"), QUERY_TEXT)
def test_query_parameters_refuse_control_characters_and_long_text(world: dict[str, Any], path: str, param: str) -> None:
    """On PostgreSQL a NUL in a query parameter used to reach the database: 500."""
    url = path.format(contract_number=world["contract_number"])
    for name, value in HOSTILE_TEXT.items():
        if name == "lone surrogate":
            continue  # cannot be percent-encoded; invalid UTF-8 is tried below
        assert_problem(world["client"].get(url, params={param: value}), 422, "INVALID_TEXT")
    assert_problem(world["client"].get(url, params={param: "x" * 10_000}), 422, "VALIDATION_ERROR")
    response = world["client"].get(f"{url}?{param}=%FF%FE")  # not UTF-8: read with replacement characters
    assert response.status_code < 500, response.text


@pytest.mark.parametrize("path", [
    "/v1/registrations/{}", "/v1/tickets/{}/registration", "/v1/contracts/{}", "/v1/contracts/{}/history",
    "/v1/postal-codes/{}",
])
def test_path_parameters_refuse_control_characters_and_long_text(world: dict[str, Any], path: str) -> None:
    for value in ("a%00b", "a%0D%0Ab", "a%1Bb"):
        assert_problem(world["client"].get(path.format(value)), 422, "INVALID_TEXT")
    assert world["client"].get(path.format("x" * 5_000)).status_code in (404, 422)


QUERY_BOUNDS = [
    ("/v1/dashboards/expiry", "offset", str(2**63)),
    ("/v1/dashboards/expiry", "offset", str(10**7)),
    ("/v1/dashboards/service-in", "offset", str(2**63)),
    ("/v1/contracts/{contract_number}/history", "offset", str(2**63)),
    ("/v1/dashboards/expiry", "limit", str(2**63)),
    ("/v1/dashboards/expiry", "min_position", str(2**64)),
    ("/v1/registrations/{serial}", "min_position", str(2**63)),
    ("/v1/contracts/{contract_number}", "as_of", "9999-12-31T23:00:00-10:00"),
    ("/v1/contracts/{contract_number}", "as_of", "0001-01-01T00:00:00+14:00"),
    ("/v1/contracts/{contract_number}", "as_of", "42"),
    ("/v1/contracts/{contract_number}/history", "since", "9999-12-31T23:00:00-10:00"),
    ("/v1/contracts/{contract_number}/history", "until", "0001-01-01T00:00:00+14:00"),
]


def test_every_query_parameter_has_bounds(world: dict[str, Any]) -> None:
    """`?offset=2**63` on the dashboards was a 500 (too large for the store's integers)."""
    for path, param, value in QUERY_BOUNDS:
        url = path.format(contract_number=world["contract_number"], serial=world["serial"])
        response = world["client"].get(url, params={param: value})
        assert response.status_code == 422, (path, param, value, response.text)
        assert response.json()["code"] in ("VALIDATION_ERROR", "DATE_OUT_OF_RANGE")


def test_as_of_far_in_the_future_is_date_out_of_range_not_500(world: dict[str, Any]) -> None:
    response = world["client"].get(f"/v1/contracts/{world['contract_number']}",
                                   params={"as_of": "9999-12-31T23:00:00-10:00"})
    assert_problem(response, 422, "DATE_OUT_OF_RANGE")
    response = world["client"].get(f"/v1/contracts/{world['contract_number']}",
                                   params={"as_of": "2100-12-31T23:00:00-10:00"})
    assert response.status_code == 200, response.text


def test_the_history_type_filter_is_a_capped_list(world: dict[str, Any]) -> None:
    url = f"/v1/contracts/{world['contract_number']}/history"
    assert_problem(world["client"].get(url, params=[("type", "SiteAdded")] * 101), 422, "VALIDATION_ERROR")


# --- malformed bodies, sizes, methods, 500s -------------------------------------------------


@pytest.mark.parametrize(("method", "path"), [("POST", "/v1/tickets"), ("POST", "/v1/accounts"),
                                              ("PATCH", "/v1/sites/{site_id}")])
@pytest.mark.parametrize("content", [
    pytest.param(b"[" * 10_000 + b"]" * 10_000, id="nested 10,000 deep"),
    pytest.param(b'{"name": ' + b'{"a": ' * 10_000 + b"1" + b"}" * 10_001, id="objects nested 10,000 deep"),
    pytest.param(b'{"name": "\xff\xfe\xfd"}', id="invalid UTF-8"),
    pytest.param(b'{"name": "\xc3\x28"}', id="a broken UTF-8 sequence"),
])
@pytest.mark.parametrize("idempotent", [False, True])
def test_deep_or_non_utf8_json_is_malformed_json(
    world: dict[str, Any], method: str, path: str, content: bytes, idempotent: bool
) -> None:
    headers = {"content-type": "application/json", **({"Idempotency-Key": "hostile-1"} if idempotent else {})}
    response = world["client"].request(method, path.format(site_id=world["site_id"]), content=content, headers=headers)
    assert_problem(response, 422, "MALFORMED_JSON", "リクエストの形式が正しくありません。")


def test_a_surrogate_encoded_in_the_bytes_is_invalid_text(world: dict[str, Any]) -> None:
    """Python's JSON parser decodes bytes with surrogatepass: the surrogate arrives as text."""
    body = json.dumps({**ACCOUNT, "name": "@@"}).encode().replace(b"@@", b"a\xed\xa0\x80b")
    response = world["client"].post("/v1/accounts", content=body, headers={"content-type": "application/json"})
    assert_problem(response, 422, "INVALID_TEXT")


def test_a_body_over_the_limit_is_413(world: dict[str, Any]) -> None:
    client = world["client"]
    before = head(world)
    big = json.dumps({**ACCOUNT, "name": "x" * (2 * 1024 * 1024)}).encode()
    response = client.post("/v1/accounts", content=big, headers={"content-type": "application/json"})
    problem = assert_problem(response, 413, "BODY_TOO_LARGE", "送信されたデータのサイズが上限を超えています。")
    assert problem["limit_bytes"] == 1024 * 1024
    assert response.headers["connection"] == "close"

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it streams
        for _ in range(40):
            yield b"x" * 65536

    response = client.post("/v1/accounts", content=chunks(), headers={"content-type": "application/json"})
    assert_problem(response, 413, "BODY_TOO_LARGE")
    assert head(world) == before


class Receive:
    """An ASGI receive that counts how much of the body the service asked for."""

    def __init__(self, chunk: bytes, chunks: int) -> None:
        self.chunk, self.left, self.read = chunk, chunks, 0

    async def __call__(self) -> dict[str, Any]:
        if self.left == 0:
            return {"type": "http.disconnect"}
        self.left -= 1
        self.read += len(self.chunk)
        return {"type": "http.request", "body": self.chunk, "more_body": self.left > 0}


def call(app: Any, path: str, headers: list[tuple[bytes, bytes]], receive: Receive) -> tuple[int, dict, bytes]:
    sent: list[dict[str, Any]] = []

    async def send_message(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"", "headers": headers,
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80), "state": {},
    }
    asyncio.run(app(scope, receive, send_message))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, body


def test_a_declared_length_over_the_limit_is_refused_before_any_byte_is_read(world: dict[str, Any]) -> None:
    app = world["client"].app
    headers = [(b"content-type", b"application/json"), (b"content-length", str(2 * 1024 * 1024).encode())]
    receive = Receive(b"x" * 65536, 32)
    status, response_headers, body = call(app, "/v1/accounts", headers, receive)
    assert status == 413 and json.loads(body)["code"] == "BODY_TOO_LARGE"
    assert receive.read == 0
    assert response_headers["content-type"] == "application/problem+json"


def test_a_streamed_body_is_read_no_further_than_the_limit(world: dict[str, Any]) -> None:
    app = world["client"].app
    receive = Receive(b"x" * 65536, 1000)  # 64 MB offered
    status, _, body = call(app, "/v1/accounts", [(b"content-type", b"application/json")], receive)
    assert status == 413 and json.loads(body)["code"] == "BODY_TOO_LARGE"
    assert receive.read <= 1024 * 1024 + 65536


def test_the_bulk_upload_path_has_its_own_limit(tmp_path: Path, clock: FixedClock) -> None:
    settings = settings_for("sqlite", tmp_path, max_body_bytes=1000, bulk_max_bytes=5000)
    with TestClient(create_app(settings, clock=clock)) as client:
        client.headers.update(bearer(api_key(client)))
        def post(path: str, size: int) -> Any:
            return client.post(path, content=b"x" * size, headers={"content-type": "multipart/form-data; boundary=b"})

        assert post("/v1/companies/00000000-0000-0000-0000-000000000000/sites", 3000).status_code == 413
        # Under the bulk limit the body reaches the route (an unknown company: 404, not 413).
        assert post("/v1/companies/00000000-0000-0000-0000-000000000000/bulk", 3000).status_code != 413
        # Over the sheet's limit and its multipart envelope: refused before it is read.
        too_large = post("/v1/companies/00000000-0000-0000-0000-000000000000/bulk", 5000 + 64 * 1024 + 1)
        assert_problem(too_large, 413, "BULK_FILE_TOO_LARGE")


@pytest.mark.parametrize(("method", "path", "allow"), [
    ("DELETE", "/v1/tickets", {"POST"}),
    ("PUT", "/v1/accounts/{account_id}", {"GET", "PATCH"}),
    ("POST", "/v1/health", {"GET"}),
    ("DELETE", "/v1/sites/{site_id}", {"GET", "PATCH"}),
])
def test_405_names_the_allowed_methods(world: dict[str, Any], method: str, path: str, allow: set[str]) -> None:
    response = world["client"].request(method, path.format(account_id=world["account_id"], site_id=world["site_id"]))
    assert_problem(response, 405, "METHOD_NOT_ALLOWED")
    assert set(response.headers["allow"].replace(" ", "").split(",")) == allow


def test_a_500_is_problem_json_and_closes_the_connection(tmp_path: Path, clock: FixedClock) -> None:
    """The server drops the connection after an unhandled error; without `Connection: close`
    a pooled client sends its next request into a closed socket."""
    app = create_app(settings_for("sqlite", tmp_path), clock=clock)

    def boom() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/v1/test-only/boom", boom, methods=["GET"])  # a route of this test only
    with TestClient(app, raise_server_exceptions=False) as client:
        client.headers.update(bearer(api_key(client)))
        response = client.get("/v1/test-only/boom")
    assert_problem(response, 500, "INTERNAL_ERROR", "システムエラーが発生しました。")
    assert response.headers["connection"] == "close"
    assert "a bug" not in response.text


# --- login IDs in one normal form -------------------------------------------------------------


def test_A3_a_full_width_or_case_variant_of_a_login_id_is_the_same_login_id(flow: Flow) -> None:
    flow.client.app.state.runtime.attempt_limits.limits.pop("sign_up")  # 5 sign-ups of one address here
    flow.post("/v1/accounts", {**ACCOUNT, "email": "taro@example.co.jp"})
    for variant in (
        "ｔａｒｏ@example.co.jp",  # full-width local part
        "taro@ｅｘａｍｐｌｅ.co.jp",  # full-width domain
        "ＴＡＲＯ＠ＥＸＡＭＰＬＥ．ＣＯ．ＪＰ",  # all full-width, upper case
        "Taro@Example.CO.JP",
    ):
        response = flow.client.post("/v1/accounts", json={**ACCOUNT, "email": variant})
        assert response.status_code == 201, response.text  # answered as new; the owner is told
    owner = flow.app.indexed(email_key("taro@example.co.jp"))
    events = [type(e).__name__ for e in flow.app.events.get(owner)]
    assert events.count("SignUpRepeated") == 4 and events.count("SignedUp") == 1


def test_A3_a_full_width_login_id_given_to_the_service_directly_is_the_same_login_id(flow: Flow) -> None:
    """The index key itself is in the normal form: not only the door folds it."""
    first = flow.app.accounts.sign_up("hanako@example.co.jp", "secret123", "佐藤", "株式会社", "03-1234-5678", True)
    flow.app.accounts.sign_up("ｈａｎａｋｏ@example.co.jp", "secret123", "佐藤", "株式会社", "03-1234-5678", True)
    events = [type(e).__name__ for e in flow.app.events.get(first["account_id"])]
    assert events == ["SignedUp", "SignUpRepeated"]


def test_A3_a_full_width_address_is_stored_in_its_normal_form(flow: Flow) -> None:
    account = flow.post("/v1/accounts", {**ACCOUNT, "email": "ｊｉｒｏ＠ｅｘａｍｐｌｅ．ｃｏ．ｊｐ"})
    assert account["email"] == "jiro@example.co.jp"


# --- read models keep running -----------------------------------------------------------------


@pytest.fixture
def postgres_client(tmp_path: Path, clock: FixedClock, postgres_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for("postgres", tmp_path, postgres_url), clock=clock)) as client:
        client.headers.update(bearer(api_key(client)))
        yield client


def test_a_NUL_in_a_name_on_postgresql_is_refused_and_the_parties_projection_keeps_running(
    postgres_client: TestClient,
) -> None:
    """Issue 11's first finding: a NUL signed up with 201, then stopped `parties` for good."""
    flow = Flow(postgres_client, postgres_client.app.state.application)
    response = postgres_client.post("/v1/accounts", json={**ACCOUNT, "name": "a\x00b"})
    assert_problem(response, 422, "INVALID_TEXT")
    flow.ready_site()  # later writes, read through parties
    assert postgres_client.get("/v1/dashboards/expiry").status_code == 200
    health = postgres_client.get("/v1/health").json()
    parties = next(p for p in health["projections"] if p["name"] == "parties")
    assert health["status"] == "ok"
    assert parties["state"] == "running" and parties["failed_event"] is None and parties["lag"] == 0


@pytest.fixture
def unappliable(monkeypatch: pytest.MonkeyPatch) -> str:
    """A sign-up the parties projection cannot apply: a handler that fails on it. (A NUL saved
    past the door, the first real cause, now reaches the read model as U+FFFD.)"""
    original = Parties.__dict__["process_event"]  # the dispatcher itself, to bind to each instance
    marker = "壊れた名前"

    def failing(self: Parties, domain_event: Any, tracking: Any) -> None:
        if getattr(domain_event, "name", None) == marker:
            raise KeyError(marker)
        original.__get__(self, Parties)(domain_event, tracking)

    monkeypatch.setattr(Parties, "process_event", failing)
    return marker


def test_a_projection_that_cannot_apply_an_event_stops_visibly_and_reads_answer_at_once(
    flow: Flow, unappliable: str, caplog: pytest.LogCaptureFixture
) -> None:
    site_id = flow.ready_site()
    caplog.set_level(logging.INFO, logger="lifecycle.projections")
    account = flow.app.accounts.sign_up(  # past the door, as an event stored before it existed
        "broken@example.co.jp", "secret123", unappliable, "株式会社", "03-1234-5678", True
    )
    failed_at = flow.app.recorder.max_notification_id() - 1  # the SignedUp, before its Index claim
    started = time.monotonic()
    while time.monotonic() - started < 10:
        parties = next(p for p in flow.client.get("/v1/health").json()["projections"] if p["name"] == "parties")
        if parties["state"] == "stopped":
            break
        time.sleep(0.05)
    health = flow.client.get("/v1/health").json()
    by_name = {p["name"]: p for p in health["projections"]}
    assert health["status"] == "degraded"
    failed = by_name["parties"]["failed_event"]
    assert failed["position"] == failed_at
    assert failed["topic"].endswith("Account.SignedUp")
    assert failed["originator_id"] == str(account["account_id"])
    assert failed["error_type"] == "KeyError"
    assert by_name["coverage"]["state"] == "running"

    # One clear line, naming projection, position, topic and error, with ids only.
    lines = [r for r in caplog.records if r.levelno >= logging.ERROR and "parties" in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in lines]
    line = lines[0].getMessage()
    assert f"position {failed_at}" in line and "Account.SignedUp" in line and failed["error_type"] in line
    assert "太郎" not in line and "壊れた" not in line and "broken@" not in line
    assert lines[0].exc_info is None  # no traceback quoting the event

    # A read that would wait for parties answers at once (the wait is 5 s).
    started = time.monotonic()
    response = flow.client.get(f"/v1/sites/{site_id}/registrations")
    assert time.monotonic() - started < 2
    problem = assert_problem(response, 503, "READ_MODEL_STOPPED")
    assert problem["projection"] == "parties" and problem["failed_position"] == failed_at
    # An eventual read shows what the read models hold now, without waiting.
    assert flow.client.get("/v1/dashboards/service-in", params={"consistency": "eventual"}).status_code == 200


def test_the_idempotency_fingerprint_survives_a_lone_surrogate(world: dict[str, Any]) -> None:
    response = world["client"].post(
        "/v1/tickets", content=json.dumps({**TICKET, "service": "a\ud800"}).encode(),
        headers={"content-type": "application/json", "Idempotency-Key": "surrogate-1"},
    )
    assert_problem(response, 422, "INVALID_TEXT")


def test_one_NUL_in_each_field_of_each_route_leaves_nothing_stored(world: dict[str, Any]) -> None:
    """A last sweep: every route's valid body with one hostile value each, in one go."""
    before = head(world)
    for method, path, base, name, field in (case.values for case in FIELD_CASES):
        url, body = resolve(world, path, with_field(base, name, "a\x00b"))
        assert send(world["client"], method, url, body).status_code == 422
    assert head(world) == before
    flow = Flow(world["client"], world["app"])  # and the service still takes ordinary writes
    flow.register(world["site_id"], flow.sell_ticket(), flow.ship())


def test_a_min_position_beyond_the_logs_head_is_refused_at_once(client) -> None:  # noqa: ANN001
    import time as _time

    head = int(client.get("/v1/health").json()["log_head"])
    started = _time.monotonic()
    for consistency in ("strong", "eventual"):
        answer = client.get(f"/v1/dashboards/expiry?min_position={head + 1000}&consistency={consistency}")
        assert_problem(answer, 422, "POSITION_BEYOND_LOG")
    assert _time.monotonic() - started < 2  # not the read wait's 5 s each
