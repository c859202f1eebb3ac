"""Issue 11, deliverable 6: LIFECYCLE_LOG_FORMAT=json makes every line a command writes on
stderr one JSON object (time in ISO 8601 UTC, level, logger, message, and the line's fields
as keys of their own): uvicorn's and dramatiq's lines too, in every server process. The
request line carries its request id, method, route template, status, duration and actor;
the line of a mail sent its notification id and kind, never an address. A bad value stops
a command at its start with one line and exit status 2."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx2 as httpx
import pytest

from lifecycle.logs import TEXT_FORMAT, json_formatter
from tests.conftest import settings_for
from tests.integration.test_mails import Service, service  # noqa: F401 - the fixture
from tests.integration.test_postgres_several_servers import free_port, wait_until_up
from tests.integration.test_startup_checks import assert_one_clear_line, lifecycle
from tests.mail_sink import smtp_sink  # noqa: F401 - the fixture

ADDRESS = re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+")


def environment(tmp_path: Path, **settings: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("LIFECYCLE_")}
    env.update({"LIFECYCLE_VAR_DIR": str(tmp_path / "var"), "LIFECYCLE_SECRET_KEY": "test-secret",
                "LIFECYCLE_LOG_FORMAT": "json", **settings})
    return env


def json_lines(text: str) -> list[dict[str, Any]]:
    """Every line as a JSON object with the four keys every line has (fails on any other line)."""
    objects = []
    for line in text.splitlines():
        record = json.loads(line)
        assert {"time", "level", "logger", "message"} <= set(record), line
        stamp = datetime.fromisoformat(record["time"])
        assert stamp.utcoffset() == timedelta(0), record["time"]  # UTC, with its offset written
        objects.append(record)
    return objects


def started(process: subprocess.Popen, log: Path, text: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text(errors="replace"):
        assert process.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")[-3000:]
        time.sleep(0.2)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def json_server(tmp_path: Path) -> Iterator[tuple[str, Path, str]]:
    """`lifecycle serve` on the embedded default with JSON logs: (URL, its stderr, the admin key)."""
    port = free_port()
    err = tmp_path / "stderr.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "lifecycle", "serve", "--port", str(port)], env=environment(tmp_path),
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=err.open("wb"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, process, log=err)
        # The first start's admin key, announced as a log line of its own.
        [announced] = [r for r in json_lines(err.read_text()) if r["logger"] == "lifecycle.access"]
        assert announced["level"] == "WARNING" and announced["api_key_name"] == "admin"
        key = re.search(r"lk_\S+", announced["message"]).group(0)  # type: ignore[union-attr]
        yield url, err, key
    finally:
        stop(process)


def test_serve_logs_json_lines_and_the_request_line_carries_its_fields(json_server: tuple[str, Path, str]) -> None:
    url, err, key = json_server
    assert httpx.get(f"{url}/v1/health", headers={"X-Request-ID": "probe-1"}, timeout=10).status_code == 200
    refused = httpx.get(f"{url}/v1/contracts/SU99999999?token=s3cret-query", timeout=10,
                        headers={"Authorization": f"Bearer {key}", "X-Request-ID": "probe-2"})
    assert refused.status_code == 403, refused.text  # the admin role does not read contracts
    time.sleep(0.5)  # the line is written as the answer is sent

    records = json_lines(err.read_text())
    requests = {r["request_id"]: r for r in records if r["logger"] == "lifecycle.requests"}
    health = requests["probe-1"]
    assert (health["method"], health["route"], health["status"], health["actor"]) == ("GET", "/v1/health", 200, "-")
    assert isinstance(health["duration_ms"], (int, float)) and health["duration_ms"] >= 0
    looked_up = requests["probe-2"]
    # The route's template, never the number asked for; the API key's id as the actor.
    assert (looked_up["route"], looked_up["status"]) == ("/v1/contracts/{contract_number}", 403)
    assert looked_up["actor"] == str(UUID(key.split("_")[1]))
    assert "s3cret-query" not in err.read_text()  # no query string in any line (uvicorn's access line is off)
    assert looked_up["level"] == "INFO" and "request probe-2 GET" in looked_up["message"]

    [start] = [r for r in records if "store" in r]
    assert start["logger"] == "lifecycle" and start["store"].startswith("sqlite ")
    assert start["broker"].startswith("none") and start["mail_transport"].startswith("maildir")
    assert any(r["logger"].startswith("uvicorn") and "Application startup complete" in r["message"] for r in records)


@pytest.mark.postgres
def test_every_server_process_and_the_supervisor_log_json(tmp_path: Path, postgres_url: str) -> None:
    settings = settings_for("postgres", tmp_path, postgres_url)
    port = free_port()
    err = tmp_path / "stderr.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "lifecycle", "serve", "--port", str(port), "--workers", "2"],
        env=environment(tmp_path, LIFECYCLE_DATABASE_URL=settings.database_url,
                        LIFECYCLE_DATABASE_SCHEMA=settings.database_schema, LIFECYCLE_DATABASE_POOL_SIZE="3"),
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=err.open("wb"),
    )
    try:
        deadline = time.monotonic() + 60
        while err.read_text(errors="replace").count("Application startup complete") < 2:
            assert process.poll() is None and time.monotonic() < deadline, err.read_text(errors="replace")[-3000:]
            time.sleep(0.2)
        for n in range(4):
            with httpx.Client(timeout=10) as fresh:  # a connection each: either process may answer
                fresh.get(f"http://127.0.0.1:{port}/v1/health", headers={"X-Request-ID": f"multi-{n}"})
        time.sleep(0.5)
    finally:
        stop(process)
    records = json_lines(err.read_text())
    assert any("Starting 2 server processes" in r["message"] for r in records)  # the supervisor's
    starts = [r for r in records if "store" in r]
    assert len({r["command"] for r in starts}) == 2, starts  # "serve (process N)" of each process
    assert all(r["store"].startswith("postgresql ") for r in starts)
    assert {r["request_id"] for r in records if r["logger"] == "lifecycle.requests"} >= {f"multi-{n}" for n in range(4)}


def test_the_worker_logs_json_with_dramatiq_lines_too(tmp_path: Path) -> None:
    err = tmp_path / "stderr.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "lifecycle", "worker", "--threads", "1"],
        env=environment(tmp_path, LIFECYCLE_DATABASE_URL=f"sqlite:///{tmp_path / 'events.sqlite3'}",
                        LIFECYCLE_REDIS_URL="redis://127.0.0.1:6379/0",
                        LIFECYCLE_REDIS_NAMESPACE=f"logs-{uuid.uuid4().hex[:8]}"),
        cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=err.open("wb"),
    )
    try:
        started(process, err, "threads on")
    finally:
        stop(process)
    assert process.returncode == 0, err.read_text()[-3000:]
    records = json_lines(err.read_text())
    [start] = [r for r in records if "store" in r]
    assert start["command"] == "worker" and start["broker"].startswith("redis")
    assert any(r["logger"].startswith("dramatiq") for r in records), [r["logger"] for r in records]


@pytest.mark.parametrize("command", [["serve"], ["worker"], ["audit", "export"]])
def test_a_bad_log_format_stops_a_command_with_one_line(tmp_path: Path, command: list[str]) -> None:
    completed = lifecycle(tmp_path, *command, LIFECYCLE_LOG_FORMAT="xml",
                          LIFECYCLE_REDIS_URL="redis://127.0.0.1:6379/0")
    assert_one_clear_line(completed, "error:", "LIFECYCLE_LOG_FORMAT", "'json'", "'xml'")


@pytest.fixture
def store() -> str:
    return "sqlite"  # test_mails' fixture runs on both stores; the log line is the same


def test_the_mail_line_names_the_notification_and_its_kind_never_an_address(
    service: Service, caplog: pytest.LogCaptureFixture  # noqa: F811
) -> None:
    account_id = service.flow.active_account()
    email = service.client.get(f"/v1/accounts/{account_id}").json()["email"]
    assert service.client.post("/v1/accounts/password-reset", json={"email": email}).status_code == 202
    with caplog.at_level(logging.INFO, logger="lifecycle.mail"):
        [fired] = service.run_timers("2026-11-20T10:00:00+09:00")
        assert len(service.sink.wait_for(1)) == 1
    [sent] = [r for r in caplog.records if r.name == "lifecycle.mail.sender" and "sent" in r.getMessage()]

    line = json.loads(json_formatter().format(sent))  # as the handler writes it with LIFECYCLE_LOG_FORMAT=json
    fields = (line["notification_id"], line["kind"], line["recipients"])
    assert fields == (fired["notification_id"], "password_reset", 1)
    assert line["level"] == "INFO" and line["logger"] == "lifecycle.mail.sender"
    text = logging.Formatter(TEXT_FORMAT).format(sent)
    assert fired["notification_id"] in text and "password_reset" in text
    for written in (json.dumps(line, ensure_ascii=False), text):
        assert email not in written and not ADDRESS.search(written), written
