"""Two `lifecycle serve` processes on one PostgreSQL store: the store, not the process,
decides which of two concurrent registrations wins."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2 as httpx
import pytest

from lifecycle.bootstrap import build_application
from lifecycle.settings import Settings
from tests.conftest import settings_for
from tests.scenario import Flow, authorized, service_key

REDIS_URL = os.environ.get("LIFECYCLE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen, timeout: float = 30, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:] if log is not None and log.exists() else ""
            raise AssertionError(f"the server exited with {process.returncode}: {process.args}\n{tail}")
        try:
            httpx.get(f"{url}/openapi.json", timeout=1)
            return
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not come up")


@pytest.fixture
def settings(tmp_path: Path, postgres_url: str) -> Settings:
    return settings_for("postgres", tmp_path, postgres_url)


@pytest.fixture
def servers(settings: Settings) -> Iterator[list[str]]:
    env = {
        **os.environ,
        "LIFECYCLE_DATABASE_URL": settings.database_url,
        "LIFECYCLE_DATABASE_SCHEMA": settings.database_schema,
        "LIFECYCLE_SECRET_KEY": settings.secret_key,
        "LIFECYCLE_VAR_DIR": str(settings.var_dir),
        "LIFECYCLE_DATABASE_POOL_SIZE": "4",
        # Attempt limits counted in Redis, shared by both processes (this run's own keys).
        "LIFECYCLE_REDIS_URL": REDIS_URL,
        "LIFECYCLE_REDIS_NAMESPACE": f"lifecycle-test-{uuid.uuid4().hex[:8]}",
    }
    ports = [free_port(), free_port()]
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "lifecycle", "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=subprocess.DEVNULL, stderr=(settings.var_dir.parent / f"server-{port}.log").open("wb"),
        )
        for port in ports
    ]
    urls = [f"http://127.0.0.1:{port}" for port in ports]
    try:
        for url, process, port in zip(urls, processes, ports):
            wait_until_up(url, process, log=settings.var_dir.parent / f"server-{port}.log")
        yield urls
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=10)


def test_T6_T7_concurrent_registrations_across_two_server_processes(settings: Settings, servers: list[str]) -> None:
    application = build_application(settings)  # only to derive confirmation tokens
    key = service_key(settings, application)
    clients = [authorized(httpx.Client(base_url=url, timeout=10), key) for url in servers]
    flow = Flow(clients[0], application)  # type: ignore[arg-type]
    site_id = flow.ready_site()
    other_site = flow.ready_site()

    def race(requests: list[tuple[httpx.Client, str, dict]]) -> list[httpx.Response]:
        with ThreadPoolExecutor(len(requests)) as pool:
            answers = list(pool.map(lambda r: r[0].post(r[1], json=r[2]), requests))
        flow.position = max([flow.position, *(int(a.headers.get("X-Log-Position", 0)) for a in answers)])
        return answers

    for _ in range(10):
        ticket = flow.sell_ticket()
        same_ticket = race([
            (clients[0], f"/v1/sites/{site_id}/registrations", {**ticket, "serial": flow.ship()}),
            (clients[1], f"/v1/sites/{site_id}/registrations", {**ticket, "serial": flow.ship()}),
        ])
        assert sorted(r.status_code for r in same_ticket) == [201, 409], [r.text for r in same_ticket]

        serial = flow.ship()
        same_unit = race([
            (clients[0], f"/v1/sites/{site_id}/registrations", {**flow.sell_ticket(), "serial": serial}),
            (clients[1], f"/v1/sites/{other_site}/registrations", {**flow.sell_ticket(), "serial": serial}),
        ])
        assert sorted(r.status_code for r in same_unit) == [201, 409], [r.text for r in same_unit]
        assert [r.json()["code"] for r in same_unit if r.status_code == 409] == ["UNIT_ALREADY_REGISTERED"]

    listed = [
        r for s in (site_id, other_site)
        for r in clients[1].get(
            f"/v1/sites/{s}/registrations", params={"min_position": flow.position}
        ).json()["registrations"]
    ]
    assert len(listed) == 20
    assert len({r["serial"] for r in listed}) == 20
    application.close()


def test_processes_starting_together_create_their_schema_once(settings: Settings) -> None:
    """Concurrent CREATE SCHEMA IF NOT EXISTS fails on pg_namespace's unique index unless
    serialized: a process creates its schema only while it holds the DDL lock, so while
    another session holds it, creating waits; then servers starting together all come up."""
    import threading
    import uuid

    import psycopg

    from lifecycle.adapters.database import DDL_LOCK, ensure_postgres_schema, event_store_env

    env = event_store_env(settings.model_copy(update={"database_schema": ""}))
    held = f"t_held_{uuid.uuid4().hex[:10]}"
    schemas = [f"t_race_{uuid.uuid4().hex[:10]}" for _ in range(10)]

    def exists(schema: str) -> bool:
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            return conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone() is not None

    try:
        with psycopg.connect(settings.database_url, autocommit=True) as holder:
            holder.execute(DDL_LOCK.format(""))
            creating = threading.Thread(target=ensure_postgres_schema, args=(env, held))
            creating.start()
            creating.join(1.0)
            assert creating.is_alive() and not exists(held), "the schema was created without the lock"
            holder.execute(DDL_LOCK.format("un"))
            creating.join(10)
        assert not creating.is_alive() and exists(held)
        for schema in schemas:
            with ThreadPoolExecutor(8) as pool:
                list(pool.map(lambda _: ensure_postgres_schema(env, schema), range(8)))
        assert all(exists(schema) for schema in schemas)
    finally:
        with psycopg.connect(settings.database_url, autocommit=True) as conn:
            for schema in [held, *schemas]:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_a_key_revoked_through_one_process_is_refused_by_the_other_at_once(
    settings: Settings, servers: list[str]
) -> None:
    application = build_application(settings)
    try:
        admin = service_key(settings, application, "admin")
        board = service_key(settings, application, "dashboards", name="board")
    finally:
        application.close()
    first, second = (httpx.Client(base_url=url, timeout=10) for url in servers)
    for client in (first, second):
        assert client.get("/v1/dashboards/expiry", headers={"Authorization": f"Bearer {board}"}).status_code == 200
    revoked = first.delete("/v1/admin/api-keys/board", headers={"Authorization": f"Bearer {admin}"})
    assert revoked.status_code == 200, revoked.text
    refused = second.get("/v1/dashboards/expiry", headers={"Authorization": f"Bearer {board}"})
    assert refused.status_code == 401 and refused.json()["code"] == "UNAUTHENTICATED"


def test_login_attempts_are_counted_across_processes(settings: Settings, servers: list[str]) -> None:
    first, second = (httpx.Client(base_url=url, timeout=10) for url in servers)
    body = {"email": "counted@example.co.jp", "password": "wrong-password"}
    per_address = Settings().login_free_failures  # then the (address, client) pair waits
    answers = [(first if i % 2 else second).post("/v1/sessions", json=body).status_code for i in range(per_address)]
    assert answers == [401] * per_address
    for client in (first, second):
        limited = client.post("/v1/sessions", json=body)
        assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
