"""Issue 11, deliverable 4: Redis stopped under a running `lifecycle serve` that hands mails
to workers through it. Commands that do not need the broker keep working (a mail's timer
is saved in the event store, with the command), what needs it (the admin timer aid)
answers 503 BROKER_UNAVAILABLE with Retry-After instead of 500, health says the broker is
down while readiness stays 200; once Redis is back the due timers are enqueued, none lost.
On a redis-server of the test's own (tests/faults/redis_server.py)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import pytest

from lifecycle.settings import Settings
from tests.conftest import settings_for
from tests.faults.redis_server import RedisServer
from tests.support import free_port, stop, wait_until_up
from tests.scenario import Flow, authorized, next_serial, service_key

pytestmark = pytest.mark.postgres

FAR_AHEAD = {"as_of": "2030-01-07T10:00:00+09:00"}  # every timer made today is due by then


@pytest.fixture
def settings(tmp_path: Path, postgres_url: str) -> Settings:
    return settings_for("postgres", tmp_path, postgres_url)


@pytest.fixture
def server(settings: Settings, redis_server: RedisServer, tmp_path: Path) -> Iterator[str]:
    env = {
        **os.environ,
        "LIFECYCLE_DATABASE_URL": settings.database_url,
        "LIFECYCLE_DATABASE_SCHEMA": settings.database_schema,
        "LIFECYCLE_SECRET_KEY": settings.secret_key,
        "LIFECYCLE_VAR_DIR": str(settings.var_dir),
        "LIFECYCLE_REDIS_URL": redis_server.url,
        "LIFECYCLE_ALLOW_CLOCK_OVERRIDE": "true",
        "LIFECYCLE_DATABASE_POOL_SIZE": "3",
    }
    port = free_port()
    log = tmp_path / "server.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "lifecycle", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=subprocess.DEVNULL, stderr=log.open("wb"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, process, log=log)
        yield url
    finally:
        stop(process)
    assert "Traceback" not in log.read_text(errors="replace")


def test_with_redis_away_registrations_succeed_and_the_timer_aid_answers_503(
    server: str, settings: Settings, redis_server: RedisServer
) -> None:
    from lifecycle.bootstrap import build_application

    client = httpx.Client(base_url=server, timeout=30)
    application = build_application(settings)  # only to derive confirmation tokens
    try:
        authorized(client, service_key(settings, application))
        flow = Flow(client, application)  # type: ignore[arg-type]
        site_id = flow.ready_site()
        assert client.get("/v1/health").json()["dependencies"]["broker"]["status"] == "up"

        redis_server.stop()

        # What does not need the broker works: a sign-up, a registration (their mails are timers in the store).
        flow.active_account()
        serial = flow.ship(next_serial())
        registration = flow.register(site_id, flow.sell_ticket(), serial)
        assert registration["serial"] == serial
        assert client.get(f"/v1/registrations/{serial}").status_code == 200
    finally:
        application.close()

    # What needs it answers 503 at once, and changes nothing.
    started = time.monotonic()
    refused = client.post("/v1/admin/timers/run", json=FAR_AHEAD)
    refused_in = time.monotonic() - started
    assert refused_in < 3.0
    assert refused.status_code == 503, refused.text
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert refused.json()["code"] == "BROKER_UNAVAILABLE" and refused.json()["message_ja"]
    assert int(refused.headers["Retry-After"]) >= 1

    health = client.get("/v1/health")
    assert health.status_code == 200
    assert health.json()["status"] == "degraded"
    assert health.json()["dependencies"]["broker"]["status"] == "down"
    assert health.json()["dependencies"]["store"]["status"] == "up"
    assert client.get("/v1/health/ready").status_code == 200  # it still serves

    redis_server.start()  # empty: a Redis without persistence after a crash
    fired = client.post("/v1/admin/timers/run", json=FAR_AHEAD)
    assert fired.status_code == 200, fired.text
    # The service-in mail of the registration made while it was away is due and enqueued now.
    assert ("service_in", serial) in {(row["kind"], row["serial"]) for row in fired.json()["fired"]}, fired.text
    assert client.get("/v1/health").json()["dependencies"]["broker"]["status"] == "up"
    print(f"\nRedis stopped under serve: a sign-up and a registration 201, the timer aid 503 in {refused_in:.2f}s, "
          f"health degraded, ready 200; once back, {len(fired.json()['fired'])} due timers enqueued")


def test_the_worker_scheduler_waits_out_a_redis_outage_and_sends_the_due_mail_once_it_is_back(
    settings: Settings, redis_server: RedisServer, tmp_path: Path
) -> None:
    """`lifecycle worker`'s scheduler loop survives Redis going away: one log line when it
    pauses and one when it resumes, no traceback per run, and the mail that fell due
    meanwhile (a sign-up's confirmation) is sent once Redis is back, without a restart."""
    from lifecycle.bootstrap import build_application

    env = {
        **os.environ,
        "LIFECYCLE_DATABASE_URL": settings.database_url,
        "LIFECYCLE_DATABASE_SCHEMA": settings.database_schema,
        "LIFECYCLE_SECRET_KEY": settings.secret_key,
        "LIFECYCLE_VAR_DIR": str(settings.var_dir),
        "LIFECYCLE_REDIS_URL": redis_server.url,
        "LIFECYCLE_SCHEDULER_INTERVAL_SECONDS": "0.2",
        "LIFECYCLE_DATABASE_POOL_SIZE": "3",
    }
    log = tmp_path / "worker.log"
    worker = subprocess.Popen([sys.executable, "-m", "lifecycle", "worker", "--threads", "2"],
                              env=env, stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    application = build_application(settings)
    maildir = settings.mail_directory() / "new"
    try:
        deadline = time.monotonic() + 30
        while "worker: 2 threads" not in log.read_text(errors="replace"):
            assert worker.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.1)
        redis_server.stop()
        stopped_at = time.monotonic()
        application.accounts.sign_up(f"u{next_serial()}@example.co.jp", "secret123", "山田 太郎", "株式会社サンプル",
                                     "03-1234-5678", True)  # its confirmation mail is due at once
        time.sleep(3.0)  # ~15 scheduler runs with Redis away
        assert not maildir.exists() or not list(maildir.iterdir())
        redis_server.start()
        back_at = time.monotonic()
        deadline = time.monotonic() + 20
        while not (maildir.exists() and list(maildir.iterdir())):
            assert worker.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")
            time.sleep(0.1)
        sent_after = time.monotonic() - back_at
        time.sleep(1.0)
        assert len(list(maildir.iterdir())) == 1
    finally:
        application.close()
        worker.terminate()
        worker.wait(timeout=60)
    text = log.read_text(errors="replace")
    assert text.count("scheduler: paused") == 1, text[-3000:]
    assert text.count("scheduler: resumed") == 1, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    print(f"\nRedis stopped for {back_at - stopped_at:.1f}s under `lifecycle worker`: no mail meanwhile, one pause "
          f"and one resume line; the due mail sent {sent_after:.1f}s after Redis was back, once")
