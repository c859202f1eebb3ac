"""A bounded schemathesis run over the service's OpenAPI document (issue 11, deliverable 7).

Every operation of the document is called with generated input, valid and invalid, against
the real app on the embedded SQLite store, through its ASGI interface, with every one of
schemathesis's checks: no 5xx, every answer's status and content type documented for its
operation, every body conforming to its documented schema, invalid input refused, valid
input not refused by the door's schema check, credentials enforced where declared, 405 with
`Allow` for undeclared methods. Three runs: with an API key holding every role; the same
with the path naming resources that exist; without credentials.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import hypothesis
import pytest
import schemathesis
from fastapi.testclient import TestClient
from schemathesis.core.parameters import ParameterLocation
from schemathesis.python import asgi

from api.app import create_app
from tests.bulk_sheets import filled, upload
from tests.conftest import settings_for
from tests.e2e.conftest import ALL_ROLES, bearer
from tests.scenario import Flow

# The service under test, made here (nothing is started or written until the fixture below
# runs) so that the schema knows the app it calls; the clock-override aid is on, so its
# route is in the run too.
STORE = Path(tempfile.gettempdir()) / f"lifecycle-schemathesis-{uuid4().hex}"
# The event feed's long poll is cut to a moment: a bounded run cannot wait 30 s per example.
APP = create_app(settings_for("sqlite", STORE, allow_clock_override=True, events_wait_max_seconds=0.1))

# 422 is also this API's answer to schema-valid input that breaks a rule of the domain, which
# no schema can state: an unknown serial (E4), a weak password, a term the settings do not
# sell. Valid input may get it; `passes_the_door` then checks that it was the domain that
# refused, never the door's own schema check (which would mean the document promises more
# than the service accepts).
CHECKS = {
    "positive_data_acceptance": {"expected-statuses": ["2xx", "3xx", "401", "403", "404", "409", "422", "429"]},
}


def _schema(**generation: Any) -> Any:
    loaded = schemathesis.openapi.from_dict(
        APP.openapi(), config=schemathesis.Config.from_dict({"checks": CHECKS, "generation": generation})
    )
    loaded.app = APP  # as schemathesis.openapi.from_asgi does, without starting the app at import
    return loaded


# With an API key the test sends itself: schemathesis leaves the Authorization header alone
# (its `ignored_auth` check still calls without it, and with a wrong one).
schema = _schema(**{"with-security-parameters": False})
# Without one: schemathesis sends none, or credentials of its own making, which must be refused.
anonymous = _schema()

# The codes the door answers for input its schema refuses (api/problems.py).
DOOR_CODES = {
    "VALIDATION_ERROR", "INVALID_TEXT", "DATE_OUT_OF_RANGE", "MALFORMED_JSON", "MALFORMED_FORM", "RESOURCE_NOT_FOUND",
}


def passes_the_door(ctx: Any, response: schemathesis.Response, case: schemathesis.Case) -> None:
    """Input the document calls valid is never refused by the schema check at the door."""
    if case.meta is None or not case.meta.generation.mode.is_positive or response.status_code not in (404, 422):
        return
    code = response.json().get("code")
    assert code not in DOOR_CODES, f"schema-valid input refused at the door with {code}: {response.text}"


# Bounded so that the whole file runs in a few minutes on two shared cores: a few examples per
# operation and phase, no deadline (the machine is shared), derandomized so that a run is
# repeatable; the health checks about slow or filtered generation do not apply to a bounded run.
BOUNDED = hypothesis.settings(
    max_examples=10,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(hypothesis.HealthCheck),
)


@pytest.fixture(scope="module")
def token() -> Iterator[str]:
    """An API key with every role, on a SQLite store of the run's own. The service is started
    by schemathesis's ASGI client at a test's first call and stopped by its pytest plugin after
    each test: every operation meets a freshly started service on the same store."""
    STORE.mkdir()
    try:
        with asgi.get_client(APP):
            _, key = APP.state.runtime.access.create_key("schemathesis-all-roles", ALL_ROLES)
        yield key
    finally:
        asgi.shutdown_lifespans()
        shutil.rmtree(STORE, ignore_errors=True)


@pytest.fixture(scope="module")
def world(token: str) -> dict[str, str]:
    """One of everything a path names, made over HTTP, by path parameter name."""
    with asgi.get_client(APP):  # the service runs
        client = TestClient(APP, headers=bearer(token))  # without its own lifespan: the one above
        flow = Flow(client, APP.state.application)
        account_id = flow.active_account()
        company = flow.company(account_id)
        site_id = flow.site(company["company_id"])["site_id"]
        contact_id = flow.fault_contact(site_id)["contact_id"]
        ticket = flow.sell_ticket()
        registration = flow.register(site_id, ticket, flow.ship())
        second = flow.sell_ticket()
        sheet = filled([("新規", "東京本社", second["ticket_id"], second["verification_code"], flow.ship(), None)])
        job = client.post(f"/v1/companies/{company['company_id']}/bulk", files=upload(sheet))
        assert job.status_code == 201, job.text
        fired = flow.post("/v1/admin/timers/run", {"as_of": "2027-06-01T00:00:00+09:00"}, expect=200)["fired"]
        APP.state.runtime.access.create_key("schemathesis-to-revoke", ["dashboards"])
        runtime = APP.state.runtime
        runtime.read_models.wait_for(runtime.application.recorder.max_notification_id(), "audit_tree")
        checkpoint = runtime.audit.checkpoint()
    return {
        "account_id": account_id,
        "company_id": company["company_id"],
        "contract_number": company["contract_number"],
        "site_id": site_id,
        "contact_id": contact_id,
        "serial": registration["serial"],
        "ticket_id": ticket["ticket_id"],
        "job_id": job.json()["job_id"],
        "notification_id": fired[0]["notification_id"],
        "key": "schemathesis-to-revoke",
        "code": "1000001",
        "tree_size": str(checkpoint.tree_size),
        "kind": "fault-contact",  # GET /v1/admin/personal-data/{kind}/{subject_id}: the contact above
        "subject_id": contact_id,
    }


def test_the_run_covers_the_document_the_service_serves(token: str) -> None:
    with asgi.get_client(APP) as client:
        served = client.get("/openapi.json")
    assert served.status_code == 200
    assert served.json() == schema.raw_schema
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == sum(len(methods) for methods in served.json()["paths"].values()) > 40


@schema.parametrize()
@BOUNDED
def test_every_operation_with_an_api_key_of_every_role(case: schemathesis.Case, token: str) -> None:
    case.call_and_validate(headers=bearer(token), additional_checks=[passes_the_door])


@schema.include(path_regex=r"\{").parametrize()
@BOUNDED
def test_every_operation_on_resources_that_exist(case: schemathesis.Case, token: str, world: dict[str, str]) -> None:
    """The same, with the path naming a real company, site, registration…: the bodies reach the
    service's rules, and its 200s and 201s meet their response schemas."""
    if case.meta is None or not case.meta.is_negative_at(ParameterLocation.PATH):
        # A valid id for another valid one; a case made to break the path is left as it is.
        case.path_parameters = {**(case.path_parameters or {}), **{n: world[n] for n in case.path_parameters or {}}}
    case.call_and_validate(headers=bearer(token), additional_checks=[passes_the_door])


@anonymous.parametrize()
@hypothesis.settings(BOUNDED, max_examples=3)
def test_every_operation_without_credentials(case: schemathesis.Case, token: str) -> None:
    case.call_and_validate(additional_checks=[passes_the_door])
