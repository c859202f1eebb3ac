"""Issue 17, deliverable 4: a port that anything else holds stops `lifecycle serve` at its
start with one clear line and exit status 2, in every mode (the embedded default, one process
on PostgreSQL, `--workers N`). The processes of one `--workers` server share the port; a
second, separate server cannot join them and take half of their connections."""

from __future__ import annotations

import json
import socket
import uuid
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.support import assert_one_clear_line, free_port, run_lifecycle, served, settings_env

MODES = {
    "embedded": [],
    "postgres": [],
    "postgres --workers 2": ["--workers", "2"],
}


def environment(tmp_path: Path, store: str, postgres_url: str | None) -> dict[str, str]:
    """A store of its own: a SQLite file, or a fresh schema of the test run's database."""
    if store == "postgres":
        assert postgres_url is not None
        database = {"LIFECYCLE_DATABASE_URL": postgres_url, "LIFECYCLE_DATABASE_SCHEMA": f"t_{uuid.uuid4().hex[:12]}"}
    else:
        database = {"LIFECYCLE_DATABASE_URL": f"sqlite:///{tmp_path / f'{uuid.uuid4().hex[:8]}.sqlite3'}"}
    return settings_env(LIFECYCLE_VAR_DIR=str(tmp_path / "var"), LIFECYCLE_SECRET_KEY="test-secret",
                        LIFECYCLE_DATABASE_POOL_SIZE="3", **database)


def refused_start(tmp_path: Path, mode: str, port: int, postgres_url: str | None) -> str:
    """`lifecycle serve` in `mode` on `port` stops at once: exit 2, one line naming the port."""
    env = environment(tmp_path, "sqlite" if mode == "embedded" else "postgres", postgres_url)
    done = run_lifecycle("serve", "--host", "127.0.0.1", "--port", str(port), *MODES[mode], env=env, cwd=tmp_path)
    line = assert_one_clear_line(done, f"port {port}", "in use")
    assert line.startswith("error: "), line
    return line


def server_processes(pid: int) -> set[int]:
    """The process itself and the server processes a `--workers` parent started."""
    return {pid, *(int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split())}


def answering_processes(url: str, env: dict[str, str], connections: int = 24) -> set[int]:
    """The process ids behind `connections` new connections (health shows them to a dashboards key)."""
    key = run_lifecycle("keys", "create", f"probe-{uuid.uuid4().hex[:6]}", "--role", "dashboards", env=env)
    assert key.returncode == 0, key.stderr
    headers = {"Authorization": f"Bearer {key.stdout.strip().splitlines()[-1]}"}
    seen = set()
    for _ in range(connections):
        with httpx.Client(timeout=10, limits=httpx.Limits(max_keepalive_connections=0)) as client:
            answer = client.get(f"{url}/v1/health", headers=headers)
            assert "process_id" in answer.json(), (answer.status_code, answer.text)
            seen.add(answer.json()["process_id"])
    return seen


@pytest.mark.postgres
@pytest.mark.parametrize("mode", list(MODES))
def test_a_port_another_program_listens_on_is_one_line_and_exit_2(tmp_path: Path, postgres_url: str, mode: str) -> None:
    """The other program listens with SO_REUSEPORT, the one way a `--workers` server's
    sockets could have joined it."""
    port = free_port()
    with socket.socket() as holder:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind(("127.0.0.1", port))
        holder.listen()
        refused_start(tmp_path, mode, port, postgres_url)


@pytest.mark.postgres
def test_a_second_serve_cannot_join_the_processes_of_a_workers_serve(tmp_path: Path, postgres_url: str) -> None:
    port = free_port()
    env = environment(tmp_path, "postgres", postgres_url)
    with served("--workers", "2", env=env, log=tmp_path / "first.log", port=port, cwd=tmp_path) as (first, url):
        line = refused_start(tmp_path, "postgres --workers 2", port, postgres_url)
        assert "lifecycle serve" in line or "in use by another process" in line
        refused_start(tmp_path, "postgres", port, postgres_url)
        refused_start(tmp_path, "embedded", port, postgres_url)
        # Every connection still reaches the first server's own processes.
        assert answering_processes(url, env) <= server_processes(first.pid)


@pytest.mark.postgres
def test_a_workers_serve_on_the_port_of_an_embedded_serve_is_one_line_and_exit_2(tmp_path: Path, postgres_url: str) -> None:
    port = free_port()
    env = environment(tmp_path, "sqlite", None)
    with served(env=env, log=tmp_path / "first.log", port=port, cwd=tmp_path) as (first, url):
        refused_start(tmp_path, "postgres --workers 2", port, postgres_url)
        refused_start(tmp_path, "embedded", port, postgres_url)
        assert answering_processes(url, env, connections=4) == {first.pid}
