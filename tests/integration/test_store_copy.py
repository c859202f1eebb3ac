"""Moving from the embedded SQLite store to PostgreSQL (issue 21): `lifecycle store copy`
copies the log with its positions and the tables of state into an empty PostgreSQL store,
rebuilds the read models there, and both stores give the same audit tree root at the same size;
the service then starts on PostgreSQL with its registrations, accounts (and their sessions) and
API keys working. A target that holds anything is refused."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from lifecycle.entrypoints.cli import cli
from lifecycle.settings import Settings
from tests.conftest import settings_for
from tests.e2e.conftest import api_key, bearer
from tests.scenario import Flow

NO_KEY = {"Authorization": ""}


def test_store_copy_moves_a_sqlite_store_to_postgres_with_everything_working(
    tmp_path: Path, postgres_url: str, clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    source: Settings = settings_for("sqlite", tmp_path)
    with TestClient(create_app(source, clock=clock)) as client:
        key = api_key(client, name="crm")
        client.headers.update(bearer(key))
        flow = Flow(client, client.app.state.application)
        email = f"mover{uuid.uuid4().hex[:6]}@example.co.jp"
        account_id = flow.active_account(email)
        company = flow.company(account_id)
        site_id = flow.site(company["company_id"])["site_id"]
        flow.fault_contact(site_id)
        serial = flow.ship()
        flow.register(site_id, flow.sell_ticket(), serial)
        session = client.post("/v1/sessions", json={"email": email, "password": "secret123"}, headers=NO_KEY)
        assert session.status_code == 201
        session_token = session.json()["token"]
        runtime = client.app.state.runtime
        runtime.read_models.wait_for(runtime.application.recorder.max_notification_id(), "audit_tree")
        checkpoint = runtime.audit.checkpoint()
        events_before = runtime.application.recorder.max_notification_id()

    schema = f"t_{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("LIFECYCLE_VAR_DIR", str(source.var_dir))  # the same signing keys
    monkeypatch.setenv("LIFECYCLE_SECRET_KEY", "test-secret")
    args = ["store", "copy", "--from", source.database_url, "--to", postgres_url, "--to-schema", schema]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    [source_tree] = [line for line in lines if line.startswith("from: tree size")]
    [target_tree] = [line for line in lines if line.startswith("to: tree size")]
    assert source_tree.removeprefix("from:") == target_tree.removeprefix("to:")
    assert f"tree size {events_before}," in source_tree

    # `lifecycle audit verify --store` on each gives the same root at the same size
    roots = []
    for url, schema_env in ((source.database_url, ""), (postgres_url, schema)):
        monkeypatch.setenv("LIFECYCLE_DATABASE_URL", url)
        monkeypatch.setenv("LIFECYCLE_DATABASE_SCHEMA", schema_env)
        verified = CliRunner().invoke(cli, ["audit", "verify", "--store"])
        assert verified.exit_code == 0, verified.output
        assert f"checkpoint {checkpoint.tree_size}: signed" in verified.output
        roots.append([line for line in verified.output.splitlines() if "the store's tree" in line])
    assert roots[0] == roots[1] and roots[0]

    # a second copy into the now non-empty target is refused
    again = CliRunner().invoke(cli, args)
    assert again.exit_code == 1 and "must be empty" in again.output

    target = settings_for("postgres", tmp_path, postgres_url).model_copy(update={"database_schema": schema})
    with TestClient(create_app(target, clock=clock)) as client:
        client.headers.update(bearer(key))  # the API key, made on SQLite
        registration = client.get(f"/v1/registrations/{serial}")
        assert registration.status_code == 200, registration.text
        assert client.get(f"/v1/companies/{company['company_id']}").json()["contract_number"] == company["contract_number"]
        me = client.get("/v1/accounts/me", headers=bearer(session_token))  # a session made on SQLite
        assert me.status_code == 200 and me.json()["account_id"] == account_id
        login = client.post("/v1/sessions", json={"email": email, "password": "secret123"}, headers=NO_KEY)
        assert login.status_code == 201
        assert client.get("/v1/audit/checkpoints/latest").text == checkpoint.note
        history = client.get(f"/v1/contracts/{company['contract_number']}/history").json()
        assert [e["type"] for e in history["events"]][:2] == ["CompanyRegistered", "SiteAdded"]
        assert client.post("/v1/shipments", json={"serial": "AFTERMOVE1", "code_no": "12345-01",
                                                  "model": "AT-x510", "shipped_on": "2026-11-02"}).status_code == 201
        assert client.app.state.application.recorder.max_notification_id() == events_before + 1
