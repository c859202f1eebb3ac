"""Issue 11, deliverable 6: a bad setting or a dependency that does not answer stops a
`lifecycle` command at its start with one clear line on stderr and exit status 2, never a
traceback; `lifecycle check` tries every configured dependency and says which answer; the
start line in the logs names the store, broker and mail transport, never a password."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx2 as httpx
import pytest

from tests.conftest import ADMIN_URL
from tests.integration.test_postgres_several_servers import free_port
from tests.mail_sink import SmtpSink, smtp_sink  # noqa: F401 - the fixture

PG = ADMIN_URL.rsplit("/", 1)[0]  # postgresql://postgres@127.0.0.1:5432


def lifecycle(tmp_path: Path, *args: str, timeout: float = 60, **settings: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("LIFECYCLE_")}
    env.update({"LIFECYCLE_VAR_DIR": str(tmp_path / "var"), "LIFECYCLE_SECRET_KEY": "test-secret", **settings})
    return subprocess.run(
        [sys.executable, "-m", "lifecycle", *args], env=env, cwd=tmp_path,
        capture_output=True, text=True, timeout=timeout, check=False,
    )


def assert_one_clear_line(completed: subprocess.CompletedProcess[str], *expected: str) -> str:
    assert completed.returncode == 2, (completed.returncode, completed.stderr[-3000:])
    assert "Traceback" not in completed.stderr
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1, completed.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


BAD_SETTINGS = {
    "malformed database URL": ({"LIFECYCLE_DATABASE_URL": "mysql://app:pw@db/lifecycle"}, ["LIFECYCLE_DATABASE_URL"]),
    "database port not a number": ({"LIFECYCLE_DATABASE_URL": "postgresql://postgres@127.0.0.1:port/x"},
                                   ["LIFECYCLE_DATABASE_URL", "port"]),
    "PostgreSQL down": ({"LIFECYCLE_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/lifecycle"},
                        ["event store", "does not answer", "refused"]),
    "unknown database": ({"LIFECYCLE_DATABASE_URL": f"{PG}/no_such_database_{uuid.uuid4().hex[:6]}"},
                         ["does not exist", "createdb"]),
    "unknown role": ({"LIFECYCLE_DATABASE_URL": "postgresql://no_such_role@127.0.0.1:5432/test"},
                     ['role "no_such_role" does not exist']),
    "bad SMTP security": ({"LIFECYCLE_SMTP_SECURITY": "tls"}, ["LIFECYCLE_SMTP_SECURITY", "starttls"]),
    "malformed JSON setting": ({"LIFECYCLE_FIRST_PERIOD_MONTHS": "{1: 13"}, ["LIFECYCLE_FIRST_PERIOD_MONTHS", "JSON"]),
    "SMTP port out of range": ({"LIFECYCLE_SMTP_PORT": "99999"}, ["LIFECYCLE_SMTP_PORT", "65535"]),
    "a term of 0 years": ({"LIFECYCLE_NEW_TICKET_TERMS": "[0]"}, ["LIFECYCLE_NEW_TICKET_TERMS", "1-20 years"]),
    "renewal lead beyond a year": ({"LIFECYCLE_RENEWAL_LEAD_MONTHS": "1000"}, ["LIFECYCLE_RENEWAL_LEAD_MONTHS"]),
    "no waiting readers": ({"LIFECYCLE_READ_WAITERS_MAX": "0"}, ["LIFECYCLE_READ_WAITERS_MAX"]),
    "Redis unreachable": ({"LIFECYCLE_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"}, ["broker", "does not answer"]),
}


@pytest.mark.postgres
@pytest.mark.parametrize("case", list(BAD_SETTINGS), ids=list(BAD_SETTINGS))
def test_serve_with_a_bad_setting_or_a_dependency_away_exits_2_with_one_line(tmp_path: Path, case: str) -> None:
    settings, expected = BAD_SETTINGS[case]
    completed = lifecycle(tmp_path, "serve", "--port", str(free_port()), **settings)
    line = assert_one_clear_line(completed, "error:", *expected)
    assert ":pw@" not in line  # a URL is shown without its password


def test_worker_with_redis_unreachable_exits_2_with_one_line(tmp_path: Path) -> None:
    completed = lifecycle(tmp_path, "worker", LIFECYCLE_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    assert_one_clear_line(completed, "broker", "does not answer")


def test_other_commands_with_the_database_away_exit_2_with_one_line(tmp_path: Path) -> None:
    down = {"LIFECYCLE_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{free_port()}/lifecycle"}
    for command in (["projections", "status"], ["audit", "export"], ["timers", "rebuild"]):
        assert_one_clear_line(lifecycle(tmp_path, *command, **down), "event store", "does not answer")
    bad = lifecycle(tmp_path, "accounts", "confirmation-token", str(uuid.uuid4()), LIFECYCLE_SMTP_SECURITY="tls")
    assert_one_clear_line(bad, "LIFECYCLE_SMTP_SECURITY")


def test_a_confirmation_token_for_something_that_is_not_an_account_id_is_one_line(tmp_path: Path) -> None:
    completed = lifecycle(tmp_path, "accounts", "confirmation-token", "not-a-uuid")
    assert completed.returncode == 1 and completed.stdout == "" and "Traceback" not in completed.stderr
    assert completed.stderr.splitlines() == [
        "error: 'not-a-uuid' is not an account id (a UUID such as the sign-up answered)"
    ]


@pytest.mark.postgres
def test_check_says_every_configured_dependency_answers(tmp_path: Path, smtp_sink: SmtpSink) -> None:
    completed = lifecycle(
        tmp_path, "check",
        LIFECYCLE_DATABASE_URL=ADMIN_URL, LIFECYCLE_REDIS_URL="redis://127.0.0.1:6379/0",
        LIFECYCLE_SMTP_HOST="127.0.0.1", LIFECYCLE_SMTP_PORT=str(smtp_sink.port),
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    lines = dict(line.split(": ", 1) for line in completed.stdout.strip().splitlines())
    assert set(lines) == {"settings", "store", "broker", "smtp"}
    assert all(value.startswith("ok") for value in lines.values()), lines
    assert smtp_sink.received == []  # it connects, it sends nothing


def test_check_names_what_does_not_answer_and_exits_2(tmp_path: Path) -> None:
    completed = lifecycle(
        tmp_path, "check",
        LIFECYCLE_REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
        LIFECYCLE_SMTP_HOST="127.0.0.1", LIFECYCLE_SMTP_PORT=str(free_port()),
    )
    assert completed.returncode == 2
    lines = dict(line.split(": ", 1) for line in completed.stdout.strip().splitlines())
    assert lines["store"].startswith("ok")  # the embedded SQLite store
    assert lines["broker"].startswith("FAILED") and lines["smtp"].startswith("FAILED"), lines
    assert "Traceback" not in completed.stderr

    bad = lifecycle(tmp_path, "check", LIFECYCLE_SMTP_SECURITY="tls")
    assert bad.returncode == 2 and bad.stdout.startswith("settings: LIFECYCLE_SMTP_SECURITY"), bad.stdout


@pytest.mark.postgres
def test_the_start_line_names_store_broker_and_mail_without_the_password_and_warns_of_the_clock_aid(
    tmp_path: Path,
) -> None:
    port = free_port()
    database = ADMIN_URL.replace("postgresql://postgres@", "postgresql://postgres:s3cret-pw@")  # trust: ignored
    env = {key: value for key, value in os.environ.items() if not key.startswith("LIFECYCLE_")}
    env.update({
        "LIFECYCLE_VAR_DIR": str(tmp_path / "var"), "LIFECYCLE_SECRET_KEY": "test-secret",
        "LIFECYCLE_DATABASE_URL": database, "LIFECYCLE_DATABASE_SCHEMA": f"t_{uuid.uuid4().hex[:12]}",
        "LIFECYCLE_SMTP_HOST": "mail.example.com", "LIFECYCLE_SMTP_PORT": "587", "LIFECYCLE_SMTP_SECURITY": "starttls",
        "LIFECYCLE_ALLOW_CLOCK_OVERRIDE": "true",
    })
    log = tmp_path / "server.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "lifecycle", "serve", "--port", str(port)], env=env, cwd=tmp_path,
        stdout=subprocess.DEVNULL, stderr=log.open("wb"),
    )
    try:
        deadline = time.monotonic() + 30
        while "Application startup complete" not in log.read_text(errors="replace"):
            assert process.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.2)
        assert httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=10).status_code == 200
    finally:
        process.terminate()
        process.wait(timeout=40)
    text = log.read_text(errors="replace")
    start = next(line for line in text.splitlines() if "store postgresql" in line)
    assert "postgres@127.0.0.1:5432/test" in start
    assert "broker none" in start and "mail smtp mail.example.com:587 (starttls)" in start
    assert "s3cret-pw" not in text
    assert any("LIFECYCLE_ALLOW_CLOCK_OVERRIDE is on" in line and "WARNING" in line for line in text.splitlines())
