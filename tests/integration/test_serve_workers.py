"""`lifecycle serve --workers N`: N processes share the port, keep-alive clients that connect
together are spread over them, a process that dies is replaced, SIGTERM stops them all."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from lifecycle.settings import Settings
from tests.conftest import settings_for
from tests.support import free_port, run_lifecycle, served, settings_env


def children(pid: int) -> set[int]:
    """The server processes the supervisor started (not multiprocessing's resource tracker)."""
    found = set()
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        try:
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.add(int(child))
        except OSError:
            continue
    return found


def answering_processes(url: str, connections: int = 16) -> set[int]:
    """The process ids behind `connections` keep-alive connections opened together (all
    connected before the first request, as a client's pool does at start)."""
    host, port = httpx.URL(url).host, httpx.URL(url).port
    sockets = [socket.create_connection((host, port), timeout=10) for _ in range(connections)]
    try:
        for sock in sockets:
            sock.sendall(f"GET /v1/health HTTP/1.1\r\nHost: {host}\r\n"
                         f"Authorization: Bearer {DETAILS[url]}\r\n\r\n".encode())
        return {json.loads(read_answer(sock))["process_id"] for sock in sockets}
    finally:
        for sock in sockets:
            sock.close()


# The detailed health (which process answered) is for a key with the dashboards role: one per server.
DETAILS: dict[str, str] = {}


def _dashboards_key(settings: Settings) -> str:
    from lifecycle.bootstrap import build_application
    from tests.scenario import service_key

    application = build_application(settings)
    try:
        return service_key(settings, application, "dashboards")
    finally:
        application.close()


def read_answer(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
    while len(body) < length:
        body += sock.recv(65536)
    return body


@pytest.fixture
def server_settings(tmp_path: Path, postgres_url: str) -> Settings:
    return settings_for("postgres", tmp_path, postgres_url)


@pytest.fixture
def server(tmp_path: Path, server_settings: Settings) -> Iterator[tuple[subprocess.Popen, str]]:
    # Small (with as many again in overflow), yet more than the background jobs' leader locks
    # and listener hold in one process (four projections, the timer scheduler, the LISTEN:
    # six), so requests still find connections.
    env = settings_env(server_settings, LIFECYCLE_DATABASE_POOL_SIZE="4")
    with served("--workers", "2", env=env, log=tmp_path / "server.log", timeout=90) as (process, url):
        DETAILS[url] = _dashboards_key(server_settings)
        yield process, url


@pytest.mark.postgres
def test_a_registration_is_read_at_once_from_any_process(
    server: tuple[subprocess.Popen, str], server_settings: Settings
) -> None:
    """Read-your-writes without min_position: each request on a new connection (so the
    kernel hands them to either process), the read right after the registration shows it."""
    from lifecycle.bootstrap import build_application
    from tests.scenario import Flow, authorized, next_serial, service_key

    process, url = server
    wait_until_all_answer(url, children(process.pid))
    application = build_application(server_settings)  # only to derive the confirmation token
    fresh = httpx.Client(base_url=url, timeout=10, limits=httpx.Limits(max_keepalive_connections=0))
    authorized(fresh, service_key(server_settings, application))
    try:
        flow = Flow(fresh, application)  # type: ignore[arg-type]
        site_id = flow.ready_site()
        fresh.event_hooks = {"request": [], "response": []}  # a plain client: no min_position
        answered_by = set()
        for _ in range(12):
            serial = flow.ship(next_serial())
            ticket = flow.sell_ticket()
            assert fresh.post(f"/v1/sites/{site_id}/registrations", json={**ticket, "serial": serial}).status_code == 201
            looked_up = fresh.get(f"/v1/registrations/{serial}")
            assert looked_up.status_code == 200, looked_up.text
            assert looked_up.json()["ticket_id"] == ticket["ticket_id"]
            answered_by.add(fresh.get("/v1/health").json()["process_id"])
        listed = fresh.get(f"/v1/sites/{site_id}/registrations").json()["registrations"]
        assert len(listed) == 12
        assert len(answered_by) == 2, "the reads did not reach both processes"
    finally:
        fresh.close()
        application.close()


@pytest.mark.postgres
def test_the_processes_stop_when_the_supervisor_is_killed(server: tuple[subprocess.Popen, str]) -> None:
    process, url = server
    workers = children(process.pid)
    wait_until_all_answer(url, workers)
    process.kill()  # SIGKILL: the supervisor cannot pass anything on
    process.wait()
    deadline = time.monotonic() + 40
    while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(alive(pid) for pid in workers), {pid: status_of(pid) for pid in workers}


def alive(pid: int) -> bool:
    state = status_of(pid)
    return state != "gone" and "zombie" not in state


@pytest.mark.postgres
def test_connections_opened_together_are_spread_over_the_processes(server: tuple[subprocess.Popen, str]) -> None:
    process, url = server
    workers = children(process.pid)
    assert len(workers) >= 2
    wait_until_all_answer(url, workers)
    assert answering_processes(url) == workers


def wait_until_all_answer(url: str, workers: set[int], timeout: float = 30) -> None:
    """Until every process has started its app (one at a time: the kernel sends each new
    connection to one of them)."""
    deadline = time.monotonic() + timeout
    answered: set[int] = set()
    while answered != workers and time.monotonic() < deadline:
        try:
            with httpx.Client(base_url=url, timeout=10) as client:
                answered.add(client.get("/v1/health", headers={"Authorization": f"Bearer {DETAILS[url]}"})
                             .json()["process_id"])
        except httpx.TransportError:  # a process going or coming: ask again
            time.sleep(0.1)
    assert answered == workers


@pytest.mark.postgres
def test_a_dead_process_is_replaced_and_sigterm_stops_them_all(server: tuple[subprocess.Popen, str]) -> None:
    process, url = server
    first = children(process.pid)
    victim = min(first)
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        now = children(process.pid)
        if victim not in now and len(now) == len(first):
            break
        time.sleep(0.2)
    replaced = children(process.pid)
    assert victim not in replaced and len(replaced) == len(first)
    wait_until_all_answer(url, replaced)

    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 0
    assert not any(alive(pid) for pid in replaced)


def test_several_processes_on_the_embedded_sqlite_store_are_refused(tmp_path: Path) -> None:
    completed = serve_two_processes(f"sqlite:///{tmp_path / 'events.sqlite3'}", tmp_path)
    assert completed.returncode == 2
    assert "needs PostgreSQL" in completed.stderr


def status_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().splitlines()[2]  # State: ...
    except OSError:
        return "gone"


def test_processes_that_cannot_start_stop_the_supervisor_instead_of_restarting(tmp_path: Path, postgres_url: str) -> None:
    # The store answers (an unreachable one is refused before any process starts, exit 2:
    # tests/integration/test_startup_checks.py), but the application cannot be built.
    completed = serve_two_processes(postgres_url, tmp_path, LIFECYCLE_NOTIFICATION_CLAIM_SECONDS="1")
    assert completed.returncode == 3, completed.stderr[-2000:]
    assert "A server process failed to start; stopping" in completed.stderr


def serve_two_processes(database_url: str, tmp_path: Path, **settings: str) -> subprocess.CompletedProcess:
    """`lifecycle serve --workers 2` that is expected to exit by itself."""
    env = settings_env(LIFECYCLE_DATABASE_URL=database_url, LIFECYCLE_VAR_DIR=str(tmp_path / "var"), **settings)
    return run_lifecycle("serve", "--port", str(free_port()), "--workers", "2", env=env, timeout=120)
