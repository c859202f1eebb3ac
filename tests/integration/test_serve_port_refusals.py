"""Issue 17, deliverable 4: a port that anything else holds stops `lifecycle serve` at its
start with one clear line and exit status 2, in every mode (the embedded default, one process
on PostgreSQL, `--workers N`). The processes of one `--workers` server share the port; a
second, separate server cannot join them and take half of their connections."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.mail_sink import free_port

MODES = {
    "embedded": [],
    "postgres": [],
    "postgres --workers 2": ["--workers", "2"],
}


def environment(tmp_path: Path, store: str, postgres_url: str | None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("LIFECYCLE_")}
    env.update({"LIFECYCLE_VAR_DIR": str(tmp_path / "var"), "LIFECYCLE_SECRET_KEY": "test-secret",
                "LIFECYCLE_DATABASE_POOL_SIZE": "3"})
    if store == "postgres":
        assert postgres_url is not None
        env.update({"LIFECYCLE_DATABASE_URL": postgres_url, "LIFECYCLE_DATABASE_SCHEMA": f"t_{uuid.uuid4().hex[:12]}"})
    else:
        env["LIFECYCLE_DATABASE_URL"] = f"sqlite:///{tmp_path / f'{uuid.uuid4().hex[:8]}.sqlite3'}"
    return env


def serve_command(port: int, *options: str) -> list[str]:
    return [sys.executable, "-m", "lifecycle.cli", "serve", "--host", "127.0.0.1", "--port", str(port), *options]


def refused_start(tmp_path: Path, mode: str, port: int, postgres_url: str | None) -> str:
    """Starts `lifecycle serve` in `mode` on `port`; asserts it stops at once with exit 2 and
    one line, no traceback; answers that line."""
    store = "embedded" if mode == "embedded" else "postgres"
    env = environment(tmp_path, "sqlite" if store == "embedded" else "postgres", postgres_url)
    done = subprocess.run(serve_command(port, *MODES[mode]), env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 2, (done.returncode, done.stderr[-3000:])
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ") and f"port {port}" in lines[0] and "in use" in lines[0], lines[0]
    return lines[0]


@contextmanager
def served(tmp_path: Path, store: str, postgres_url: str | None, port: int, *options: str) -> Iterator[subprocess.Popen]:
    env = environment(tmp_path, store, postgres_url)
    log = tmp_path / f"serve-{port}-{uuid.uuid4().hex[:6]}.log"
    process = subprocess.Popen(serve_command(port, *options), env=env, cwd=tmp_path,
                               stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text(errors="replace")[-3000:]
            try:
                httpx.get(f"http://127.0.0.1:{port}/v1/health/ready", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.3)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def server_processes(pid: int) -> set[int]:
    """The process itself and the server processes a `--workers` parent started."""
    found = {pid}
    for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
        found.add(int(child))
    return found


def answering_processes(port: int, connections: int = 24) -> set[int]:
    """The process ids behind `connections` new connections."""
    seen = set()
    for _ in range(connections):
        with httpx.Client(timeout=10, limits=httpx.Limits(max_keepalive_connections=0)) as client:
            seen.add(json.loads(client.get(f"http://127.0.0.1:{port}/v1/health").text)["process_id"])
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
    with served(tmp_path, "postgres", postgres_url, port, "--workers", "2") as first:
        line = refused_start(tmp_path, "postgres --workers 2", port, postgres_url)
        assert "lifecycle serve" in line or "in use by another process" in line
        refused_start(tmp_path, "postgres", port, postgres_url)
        refused_start(tmp_path, "embedded", port, postgres_url)
        # Every connection still reaches the first server's own processes.
        assert answering_processes(port) <= server_processes(first.pid)


@pytest.mark.postgres
def test_a_workers_serve_on_the_port_of_an_embedded_serve_is_one_line_and_exit_2(tmp_path: Path, postgres_url: str) -> None:
    port = free_port()
    with served(tmp_path, "sqlite", None, port) as first:
        refused_start(tmp_path, "postgres --workers 2", port, postgres_url)
        refused_start(tmp_path, "embedded", port, postgres_url)
        assert answering_processes(port, connections=4) == {first.pid}
