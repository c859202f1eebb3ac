"""The production shape of the mails for the fault tests: real `lifecycle worker` processes on
a PostgreSQL cluster and a Redis of the suite's own, sending to a real SMTP server
(tests/mail_sink.py). The API runs in this process only to make mails due (registrations
through HTTP, as a client would); the worker processes do everything else: catch the timer
table up to the log, enqueue due ids on Redis, take them, send, record.

Every mail made due here is a service-in mail due at once (LIFECYCLE_SERVICE_IN_BUSINESS_DAYS=0),
so the workers, which run on the real clock, send them without a clock override."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.rows import dict_row

from api.app import create_app
from lifecycle.settings import Settings
from tests.e2e.conftest import api_key, bearer
from tests.faults.pg_cluster import PgCluster
from tests.faults.redis_server import RedisServer
from tests.mail_sink import SmtpSink
from tests.scenario import Flow
from tests.support import stop


@dataclass
class Worker:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.kill(self.pid, signal.SIGCONT)  # a stopped process cannot act on SIGTERM
        stop(self.process, timeout=30)


@dataclass
class MailStack:
    settings: Settings
    sink: SmtpSink
    redis: RedisServer
    directory: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    workers: list[Worker] = field(default_factory=list)
    _client: TestClient | None = None

    # --- the worker processes -----------------------------------------------------------

    def env(self) -> dict[str, str]:
        s = self.settings
        return {
            **os.environ,
            "LIFECYCLE_DATABASE_URL": s.database_url,
            "LIFECYCLE_DATABASE_SCHEMA": s.database_schema,
            "LIFECYCLE_DATABASE_POOL_SIZE": "4",
            "LIFECYCLE_SECRET_KEY": s.secret_key,
            "LIFECYCLE_VAR_DIR": str(s.var_dir),
            "LIFECYCLE_REDIS_URL": s.redis_url,
            "LIFECYCLE_SMTP_HOST": s.smtp_host,
            "LIFECYCLE_SMTP_PORT": str(s.smtp_port),
            "LIFECYCLE_SMTP_TIMEOUT_SECONDS": str(s.smtp_timeout_seconds),
            "LIFECYCLE_SERVICE_IN_BUSINESS_DAYS": str(s.service_in_business_days),
            "LIFECYCLE_SCHEDULER_INTERVAL_SECONDS": str(s.scheduler_interval_seconds),
            "LIFECYCLE_NOTIFICATION_CLAIM_SECONDS": str(s.notification_claim_seconds),
            "LIFECYCLE_NOTIFICATION_REQUEUE_SECONDS": str(s.notification_requeue_seconds),
            "LIFECYCLE_LEADER_TIMEOUT_SECONDS": str(s.leader_timeout_seconds),
            "LIFECYCLE_WORKER_PREFETCH": str(s.worker_prefetch),
            **self.extra_env,
        }

    def start_worker(self, name: str, *, threads: int = 2, scheduler: bool = True) -> Worker:
        log = self.directory / f"worker-{name}.log"
        command = [sys.executable, "-m", "lifecycle", "worker", "--threads", str(threads)]
        if not scheduler:
            command.append("--no-scheduler")
        process = subprocess.Popen(command, env=self.env(), stdout=subprocess.DEVNULL, stderr=log.open("wb"))
        worker = Worker(name, process, log)
        self.workers.append(worker)
        deadline = time.monotonic() + 30
        while "worker: " not in worker.text():
            assert process.poll() is None, worker.text()[-3000:]
            assert time.monotonic() < deadline, f"worker {name} did not start"
            time.sleep(0.05)
        return worker

    def commands(self, *commands: tuple[str, ...]) -> list[tuple[int, str, str]]:
        """`lifecycle` commands on this stack's store, as an operator runs them, side by side;
        answers each one's (exit status, stdout, stderr)."""
        running = [subprocess.Popen([sys.executable, "-m", "lifecycle", *args], env=self.env(),
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for args in commands]
        outputs = [process.communicate(timeout=120) for process in running]
        return [(process.returncode, out, err) for process, (out, err) in zip(running, outputs)]

    def on_schema(self, schema: str) -> MailStack:
        """The same stack on another schema of the database; its workers are stopped with these."""
        settings = self.settings.model_copy(update={"database_schema": schema})
        return MailStack(settings, self.sink, self.redis, self.directory, self.extra_env, self.workers)

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        if self._client is not None:
            self._client.__exit__(None, None, None)
            self._client = None

    # --- the store, read directly ---------------------------------------------------------

    def sql(self, statement: str, params: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        with psycopg.connect(self.settings.database_url, row_factory=dict_row, autocommit=True) as conn:
            conn.execute(f'SET search_path TO "{self.settings.database_schema}"')
            cursor = conn.execute(statement, params)
            return cursor.fetchall() if cursor.description else []

    def timers(self) -> dict[str, dict[str, Any]]:
        """The service-in timers by their mail's Message-ID: state, attempts, interrupted."""
        rows = self.sql("SELECT notification_id, state, attempts, interrupted FROM notification_timers "
                        "WHERE kind = 'service_in'")
        return {message_id(row["notification_id"]): row for row in rows}

    def recorded(self) -> Counter[str]:
        """ServiceInNotified events in the log, by the Message-ID they record."""
        rows = self.sql("SELECT state FROM lifecycle_events WHERE topic LIKE %s", ("%ServiceInNotified",))
        return Counter(json.loads(bytes(row["state"]))["message_id"] for row in rows)

    # --- making mails due -----------------------------------------------------------------

    def register(self, mails: int, per_company: int = 20) -> set[str]:
        """`mails` registrations through the API, `per_company` per company: as many service-in
        mails due now. Answers their Message-IDs (read from the timer table once it has them)."""
        before = set(self.timers_in_log())
        client = self._api()
        flow = Flow(client, client.app.state.application)
        made = 0
        while made < mails:
            site_id = flow.ready_site()
            for _ in range(min(per_company, mails - made)):
                flow.register(site_id, flow.sell_ticket(), flow.ship())
                made += 1
        client.app.state.runtime.notifications.projection.catch_up()  # the timer table up to the log
        due = set(self.timers_in_log()) - before
        assert len(due) == mails, (len(due), mails)
        return due

    def _api(self) -> TestClient:
        """The API in this process, started once per stack (and stopped with it)."""
        if self._client is None:
            client = TestClient(create_app(self.settings))
            client.__enter__()
            self._client = client
            client.headers.update(bearer(api_key(client)))
        return self._client

    def timers_in_log(self) -> set[str]:
        if not self.sql("SELECT to_regclass('notification_timers') AS t")[0]["t"]:
            return set()
        return set(self.timers())


def message_id(notification_id: str) -> str:
    return f"<{notification_id}@example.com>"


def wait_until(condition: Callable[[], object], timeout: float, what: str) -> float:
    """Polls `condition`; answers the seconds it took."""
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"timed out after {timeout}s waiting for {what}"
        time.sleep(0.05)
    return time.monotonic() - started


def mail_settings(cluster: PgCluster, redis: RedisServer, sink: SmtpSink, tmp_path: Path, **overrides: Any) -> Settings:
    database_url = cluster.create_database(f"mails_{uuid.uuid4().hex[:8]}")
    values: dict[str, Any] = {
        "database_url": database_url,
        "database_schema": f"t_{uuid.uuid4().hex[:12]}",
        "database_pool_size": 4,
        "var_dir": tmp_path / "var",
        "secret_key": "test-secret",
        "redis_url": redis.url,
        "smtp_host": "127.0.0.1",
        "smtp_port": sink.port,
        "smtp_timeout_seconds": 1,
        "service_in_business_days": 0,  # due at once: the workers run on the real clock
        "scheduler_interval_seconds": 0.2,
        **overrides,
    }
    return Settings(**values)


@pytest.fixture
def make_stack(running_pg_cluster: PgCluster, redis_server: RedisServer, smtp_sink: SmtpSink,
               tmp_path: Path) -> Iterator[Callable[..., MailStack]]:
    stacks: list[MailStack] = []

    def make(**overrides: Any) -> MailStack:
        settings = mail_settings(running_pg_cluster, redis_server, smtp_sink, tmp_path, **overrides)
        stack = MailStack(settings, smtp_sink, redis_server, tmp_path)
        stacks.append(stack)
        return stack

    try:
        yield make
    finally:
        for stack in stacks:
            stack.stop()
