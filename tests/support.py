"""What many tests need, in one place: a free port, settings as a process's environment, the
`lifecycle` command run as a user runs it, a served process as a context manager, and the
one-clear-line check of start-up refusals. Test modules import from here (and from
tests/scenario.py, the one builder of customers, sites and tickets over HTTP), never from
another test module."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2 as httpx

from lifecycle.settings import Settings

LIFECYCLE = str(Path(sys.executable).parent / "lifecycle")  # the console script, as installed


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def settings_env(settings: Settings | None = None, **extra: str) -> dict[str, str]:
    """This process's environment without its LIFECYCLE_ variables, then the store, schema,
    secret key and var dir of `settings` (when given), then `extra` (LIFECYCLE_… names)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("LIFECYCLE_")}
    if settings is not None:
        env.update({
            "LIFECYCLE_DATABASE_URL": settings.database_url,
            "LIFECYCLE_DATABASE_SCHEMA": settings.database_schema,
            "LIFECYCLE_SECRET_KEY": settings.secret_key,
            "LIFECYCLE_VAR_DIR": str(settings.var_dir),
        })
    env.update(extra)
    return env


def run_lifecycle(*args: str, env: Mapping[str, str], cwd: Path | None = None,
                  timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LIFECYCLE, *args], env=dict(env), cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, check=False)


def lifecycle(tmp_path: Path, *args: str, timeout: float = 60, **settings: str) -> subprocess.CompletedProcess[str]:
    """`lifecycle ARGS` in tmp_path with a var dir and secret key there, and `settings`
    (LIFECYCLE_… names) as its only LIFECYCLE_ variables."""
    env = settings_env(LIFECYCLE_VAR_DIR=str(tmp_path / "var"), LIFECYCLE_SECRET_KEY="test-secret", **settings)
    return run_lifecycle(*args, env=env, cwd=tmp_path, timeout=timeout)


def wait_until_up(url: str, process: subprocess.Popen, timeout: float = 90, log: Path | None = None) -> None:
    """Until the server answers (a generous bound: spawned processes start slowly on a busy host)."""
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


@contextmanager
def served(*args: str, env: Mapping[str, str], log: Path, port: int | None = None, cwd: Path | None = None,
           timeout: float = 60) -> Iterator[tuple[subprocess.Popen, str]]:
    """`lifecycle serve ARGS --port PORT` (a free port unless given) until the block ends:
    yields the process and its URL once it answers; SIGTERM at the end, SIGKILL if it hangs."""
    port = port or free_port()
    with log.open("ab") as stderr:
        process = subprocess.Popen([LIFECYCLE, "serve", "--host", "127.0.0.1", "--port", str(port), *args],
                                   env=dict(env), cwd=cwd, stdout=subprocess.DEVNULL, stderr=stderr)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, process, timeout=timeout, log=log)
        yield process, url
    finally:
        stop(process)


def stop(process: subprocess.Popen, timeout: float = 40) -> None:
    """SIGTERM, then SIGKILL if the process has not ended within `timeout` seconds."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def assert_one_clear_line(completed: subprocess.CompletedProcess[str], *expected: str) -> str:
    """A start-up refusal: exit status 2, one line on stderr holding each of `expected`, no
    traceback. Answers the line."""
    assert completed.returncode == 2, (completed.returncode, completed.stderr[-3000:])
    assert "Traceback" not in completed.stderr
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1, completed.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


def call_asgi(app: Any, path: str, headers: list[tuple[bytes, bytes]], receive: Any) -> tuple[int, dict, bytes]:
    """POST straight to an ASGI app, `receive` handing over the body: (status, headers, body)."""
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
