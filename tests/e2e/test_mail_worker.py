"""The production shape, as a user runs it: the API and `lifecycle worker` processes on
PostgreSQL, the real Redis as broker, and a real SMTP server on 127.0.0.1. The test moves
time with POST /v1/admin/timers/run; the worker process sends."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from fastapi.testclient import TestClient

from api.app import create_app
from lifecycle.domain.dates import TOKYO
from lifecycle.settings import Settings
from tests.conftest import settings_for
from tests.e2e.conftest import api_key, bearer
from tests.fakes import FixedClock
from tests.mail_sink import Received, SmtpSink, smtp_sink  # noqa: F401 - the fixture
from tests.scenario import Flow

REDIS_URL = os.environ.get("LIFECYCLE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


class Stack:
    """The API (in this process), worker processes and the SMTP sink, on one store."""

    def __init__(self, settings: Settings, client: TestClient, sink: SmtpSink, log_dir: Path) -> None:
        self.settings = settings
        self.client = client
        self.sink = sink
        self.flow = Flow(client, client.app.state.application)
        self.notifications = client.app.state.runtime.notifications
        self.log_dir = log_dir
        self.workers: list[subprocess.Popen] = []

    def env(self) -> dict[str, str]:
        s = self.settings
        return {
            **os.environ,
            "LIFECYCLE_DATABASE_URL": s.database_url,
            "LIFECYCLE_DATABASE_SCHEMA": s.database_schema,
            "LIFECYCLE_SECRET_KEY": s.secret_key,
            "LIFECYCLE_VAR_DIR": str(s.var_dir),
            "LIFECYCLE_REDIS_URL": s.redis_url,
            "LIFECYCLE_REDIS_NAMESPACE": s.redis_namespace,
            "LIFECYCLE_SMTP_HOST": s.smtp_host,
            "LIFECYCLE_SMTP_PORT": str(s.smtp_port),
            "LIFECYCLE_SMTP_TIMEOUT_SECONDS": str(s.smtp_timeout_seconds),
            "LIFECYCLE_NOTIFICATION_CLAIM_SECONDS": str(s.notification_claim_seconds),
        }

    def start_worker(self, threads: int = 2) -> subprocess.Popen:
        log = self.log_dir / f"worker-{len(self.workers)}.log"
        process = subprocess.Popen(
            [sys.executable, "-m", "lifecycle", "worker", "--no-scheduler", "--threads", str(threads)],
            env=self.env(), stdout=subprocess.DEVNULL, stderr=log.open("wb"),
        )
        self.workers.append(process)
        deadline = time.monotonic() + 30
        while b"worker: " not in log.read_bytes():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the worker did not start"
            time.sleep(0.05)
        return process

    def run_timers(self, as_of: str) -> list[dict[str, Any]]:
        response = self.client.post("/v1/admin/timers/run", json={"as_of": as_of})
        assert response.status_code == 200, response.text
        return response.json()["fired"]

    def registered_site(self) -> tuple[str, str, str]:
        """(site_id, registrant e-mail, fault contact id) of a fresh account's ready site."""
        account_id = self.flow.active_account()
        email = self.client.get(f"/v1/accounts/{account_id}").json()["email"]
        company = self.flow.company(account_id)
        site_id = self.flow.site(company["company_id"])["site_id"]
        contact_id = self.flow.fault_contact(site_id)["contact_id"]
        return site_id, email, contact_id

    def stop(self) -> None:
        for process in self.workers:
            if process.poll() is None:
                process.terminate()
        for process in self.workers:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def stack_settings(tmp_path: Path, postgres_url: str, sink: SmtpSink, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "redis_url": REDIS_URL,
        "redis_namespace": f"lifecycle-test-{os.getpid()}-{uuid.uuid4().hex[:8]}",  # this test's own keys
        "smtp_host": "127.0.0.1", "smtp_port": sink.port, "smtp_timeout_seconds": 5,
        "allow_clock_override": True,
        **overrides,
    }
    return settings_for("postgres", tmp_path, postgres_url, **values)


@pytest.fixture
def stack(tmp_path: Path, postgres_url: str, smtp_sink: SmtpSink, clock: FixedClock,  # noqa: F811
          request: pytest.FixtureRequest) -> Iterator[Stack]:
    settings = stack_settings(tmp_path, postgres_url, smtp_sink, **getattr(request, "param", {}))
    with TestClient(create_app(settings, clock=clock)) as client:
        client.headers.update(bearer(api_key(client)))
        stack = Stack(settings, client, smtp_sink, tmp_path)
        try:
            yield stack
        finally:
            stack.stop()
            connection = redis.Redis.from_url(REDIS_URL)
            keys = list(connection.scan_iter(f"{settings.redis_namespace}*"))
            if keys:
                connection.delete(*keys)


def test_M1_worker_process_sends_one_service_in_mail_over_smtp_to_the_three_addresses(stack: Stack) -> None:
    stack.start_worker()
    site_id, email, _ = stack.registered_site()
    serial = stack.flow.ship()
    ticket = stack.flow.sell_ticket(sold_on="2026-11-10")
    stack.flow.register(site_id, ticket, serial)

    [fired] = stack.run_timers("2026-11-24T10:00:00+09:00")
    [mail] = stack.sink.wait_for(1)
    assert sorted(mail.recipients) == sorted([email, "noc@example.co.jp", "ichiro@example.co.jp"])
    assert mail.message_id == f"<{fired['notification_id']}@example.com>"
    assert f"（{serial}) / 2026/12/01 ～ 2027/12/31" in mail.body
    assert f"チケットID:{ticket['ticket_id']}/ AT-x510-28GTX デリバリースタンダード1年保守 /" in mail.body

    # Fired again (as a lost message would be): still one mail, recorded once.
    stack.notifications.dispatcher.dispatch([uuid.UUID(fired["notification_id"])])
    assert stack.run_timers("2026-11-25T10:00:00+09:00") == []
    assert len(stack.sink.quiet_for(1.0)) == 1
    _wait_until(lambda: stack.notifications.admin.notification(uuid.UUID(fired["notification_id"]))["state"] == "sent")


def test_S4_worker_process_mails_the_contact_as_changed_before_the_mail(stack: Stack) -> None:
    stack.start_worker()
    site_id, email, contact_id = stack.registered_site()
    stack.flow.register(site_id, stack.flow.sell_ticket(), stack.flow.ship())
    changed = stack.client.patch(f"/v1/fault-contacts/{contact_id}", json={"mail2": "night-shift@example.co.jp"})
    assert changed.status_code == 200, changed.text

    stack.run_timers("2026-11-24T10:00:00+09:00")
    [mail] = stack.sink.wait_for(1)
    assert sorted(mail.recipients) == sorted([email, "noc@example.co.jp", "night-shift@example.co.jp"])


def test_M3_worker_process_sends_no_reminder_after_a_renewal(stack: Stack, clock: FixedClock) -> None:
    stack.start_worker()
    site_id, _, _ = stack.registered_site()
    serial = stack.flow.ship()
    stack.flow.register(site_id, stack.flow.sell_ticket(sold_on="2026-11-10"), serial)  # ends 2027-12-31
    clock.set(datetime(2027, 10, 1, 9, 30, tzinfo=TOKYO))  # before the reminder's 10:00
    stack.flow.post(f"/v1/registrations/{serial}/renewals", stack.flow.sell_ticket(kind="renewal"))

    fired = stack.run_timers("2028-01-31T10:00:00+09:00")
    assert sorted(f["kind"] for f in fired) == ["service_in", "service_in"]
    mails = stack.sink.wait_for(2)
    assert len(stack.sink.quiet_for(1.0)) == 2
    assert all("サポートサービス登録完了のご連絡" in m.subject for m in mails)


REQUEUE_SECONDS = 2


@pytest.mark.parametrize("stack", [{"notification_requeue_seconds": REQUEUE_SECONDS}], indirect=True)
def test_M4_a_message_lost_with_redis_is_enqueued_again_and_sent_once(stack: Stack) -> None:
    site_id, _, _ = stack.registered_site()
    stack.flow.register(site_id, stack.flow.sell_ticket(), stack.flow.ship())
    [fired] = stack.run_timers("2026-11-24T10:00:00+09:00")  # enqueued while no worker runs
    enqueued_at = time.monotonic()
    connection = redis.Redis.from_url(REDIS_URL)
    lost = list(connection.scan_iter(f"{stack.settings.redis_namespace}*"))
    assert lost  # the message is in Redis ...
    connection.delete(*lost)  # ... and gone, as after a restart of a Redis that keeps nothing on disk
    # Checked before the worker starts: starting a process can take longer than the window.
    assert stack.run_timers("2026-11-24T10:00:00+09:00") == []  # enqueued a moment ago: not yet again
    assert time.monotonic() - enqueued_at < REQUEUE_SECONDS  # (or the check above proved nothing)

    stack.start_worker()
    time.sleep(max(0.0, enqueued_at + REQUEUE_SECONDS + 0.2 - time.monotonic()))
    [again] = stack.run_timers("2026-11-24T10:00:00+09:00")
    assert again["notification_id"] == fired["notification_id"]
    stack.sink.wait_for(1)
    _wait_until(lambda: stack.notifications.admin.notification(uuid.UUID(fired["notification_id"]))["state"] == "sent")
    time.sleep(REQUEUE_SECONDS + 0.2)
    assert stack.run_timers("2026-11-24T10:00:00+09:00") == []  # sent: never enqueued again
    assert len(stack.sink.quiet_for(0.5)) == 1


def _wait_until(condition: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


SIGKILLS = 20
MAILS = 240


@pytest.mark.parametrize(
    "stack",
    # A message per mail: each kill leaves one claim to run out, not a batch of them.
    [{"notification_claim_seconds": 3, "smtp_timeout_seconds": 1, "notification_requeue_seconds": 2,
      "notification_batch_size": 1}],
    indirect=True,
)
def test_M4_twenty_sigkills_of_the_worker_while_it_sends_and_every_mail_arrives_once(stack: Stack) -> None:
    # MAILS registrations, five per company: 240 service-in mails of 3 recipients each.
    expected: dict[str, tuple[str, ...]] = {}
    for _ in range(MAILS // 5):
        site_id, email, _ = stack.registered_site()
        for _ in range(5):
            stack.flow.register(site_id, stack.flow.sell_ticket(), stack.flow.ship())
    fired = stack.run_timers("2026-11-24T10:00:00+09:00")
    assert len(fired) == MAILS
    for f in fired:
        expected[f"<{f['notification_id']}@example.com>"] = ()

    # The scheduler runs beside the workers: it enqueues again what a killed worker held.
    stopping = threading.Event()

    def scheduler() -> None:
        while not stopping.wait(0.5):
            stack.run_timers("2026-11-24T10:00:00+09:00")

    scheduler_thread = threading.Thread(target=scheduler, daemon=True)
    scheduler_thread.start()
    stack.sink.delay = 0.03  # a relay taking its time, so that the kills find sends in flight
    try:
        for kill in range(SIGKILLS):
            worker = stack.start_worker(threads=4)
            sent_before = len(stack.sink.snapshot())
            if kill % 2:
                # The worst moment: the server has taken the message and not yet answered.
                killed = threading.Event()

                def kill_while_taking(_: Received, pid: int = worker.pid) -> None:
                    if not killed.is_set():
                        killed.set()
                        os.kill(pid, signal.SIGKILL)
                        time.sleep(0.1)  # answer only once the worker is gone

                stack.sink.on_data = kill_while_taking
                _wait_until(killed.is_set)
                stack.sink.on_data = None
            else:
                # Any moment while it sends.
                _wait_until(lambda n=sent_before: len(stack.sink.snapshot()) > n)
                time.sleep(random.uniform(0, 0.15))
                os.kill(worker.pid, signal.SIGKILL)
            worker.wait(timeout=10)
            assert worker.returncode == -signal.SIGKILL
        assert len(stack.sink.snapshot()) < MAILS, "the kills came after the sending was over"
        stack.start_worker(threads=4)
        _wait_until(lambda: stack.notifications.store.counts().get("pending", 0) == 3 * MAILS, timeout=180)
    finally:
        stopping.set()
        scheduler_thread.join()

    received = stack.sink.quiet_for(1.0)
    mailbox: dict[str, bytes] = {}
    for mail in received:
        assert mailbox.setdefault(mail.message_id, mail.data) == mail.data  # a copy is the very same message
        assert len(mail.recipients) == 3
    # No loss, nothing extra: each due mail's Message-ID arrived.
    assert set(mailbox) == set(expected)
    # Copies come only from sends that a kill interrupted after the server had taken the
    # message and before it was recorded: at most one per worker thread and kill.
    copies = len(received) - len(mailbox)
    assert copies <= SIGKILLS * 4
    interrupted = {
        f"<{row['notification_id']}@example.com>"
        for row in (stack.notifications.admin.notification(uuid.UUID(f["notification_id"])) for f in fired)
        if row["interrupted"]
    }
    assert {m for m, n in stack.sink.copies_by_message_id().items() if n > 1} <= interrupted
    # Each mail recorded once on its contract.
    numbers = {stack.client.get(f"/v1/companies/{c}").json()["contract_number"] for c in _companies(stack, fired)}
    recorded = [
        e["data"]["message_id"]
        for number in numbers
        for e in stack.client.get(f"/v1/contracts/{number}/history").json()["events"]
        if e["type"] == "ServiceInNotified"
    ]
    assert sorted(recorded) == sorted(expected)
    print(f"\n{SIGKILLS} SIGKILLs: {len(received)} deliveries of {len(mailbox)} mails, "
          f"{copies} identical re-deliveries after interrupted sends, {len(interrupted)} sends resumed")


def _companies(stack: Stack, fired: list[dict[str, Any]]) -> set[str]:
    return {f["aggregate_id"] for f in fired}
