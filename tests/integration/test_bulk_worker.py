"""K-1 in the production shape: the API (in this process) and `lifecycle worker` processes on
PostgreSQL with the real Redis as broker. A worker killed (SIGKILL) in the middle of a job
leaves it to the next one, which finishes it with every row registered exactly once; a
10,000-row sheet goes through, and uploading it again registers nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from lifecycle.aggregates.contract import Contract
from tests.bulk_sheets import filled, upload
from tests.conftest import settings_for
from tests.e2e.conftest import api_key, bearer
from tests.e2e.test_bulk_api import _company, shipped
from tests.fakes import FixedClock
from tests.scenario import Flow

REDIS_URL = os.environ.get("LIFECYCLE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

pytestmark = pytest.mark.postgres


class Workers:
    def __init__(self, settings: Any, log_dir: Path) -> None:
        self.settings = settings
        self.log_dir = log_dir
        self.processes: list[subprocess.Popen] = []

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
            "LIFECYCLE_BULK_BATCH_ROWS": str(s.bulk_batch_rows),
            "LIFECYCLE_BULK_LEASE_SECONDS": str(s.bulk_lease_seconds),
            "LIFECYCLE_BULK_SWEEP_SECONDS": str(s.bulk_sweep_seconds),
        }

    def start(self) -> subprocess.Popen:
        log = self.log_dir / f"worker-{len(self.processes)}.log"
        process = subprocess.Popen(
            [sys.executable, "-m", "lifecycle", "worker", "--no-scheduler", "--threads", "2"],
            env=self.env(), stdout=subprocess.DEVNULL, stderr=log.open("wb"),
        )
        self.processes.append(process)
        deadline = time.monotonic() + 30
        while b"worker: " not in log.read_bytes():
            assert process.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "the worker did not start"
            time.sleep(0.05)
        return process

    def stop(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture
def stack(tmp_path: Path, postgres_url: str, clock: FixedClock) -> Iterator[tuple[TestClient, Workers]]:
    settings = settings_for(
        "postgres", tmp_path, postgres_url, redis_url=REDIS_URL,
        redis_namespace=f"lifecycle-test-{os.getpid()}-{uuid.uuid4().hex[:8]}",
        bulk_sync_rows=0, bulk_batch_rows=250, bulk_lease_seconds=2, bulk_sweep_seconds=0.5,
    )
    with TestClient(create_app(settings, clock=clock)) as client:
        client.headers.update(bearer(api_key(client)))
        workers = Workers(settings, tmp_path)
        try:
            yield client, workers
        finally:
            workers.stop()


def _wait(client: TestClient, location: str, until: Any, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while not until(progress := client.get(location, params={"rows": "false"}).json()):
        assert time.monotonic() < deadline, progress
        time.sleep(0.1)
    return progress


def _registered_serials(client: TestClient, company_id: str) -> list[str]:
    app = client.app.state.application
    return [e.serial for e in app.events.get(UUID(company_id)) if isinstance(e, Contract.TicketRegistered)]


def test_K1_a_worker_killed_in_the_middle_leaves_the_job_to_the_next_which_registers_each_row_once(
    stack: tuple[TestClient, Workers],
) -> None:
    client, workers = stack
    flow = Flow(client, client.app.state.application)
    company_id, _ = _company(flow)
    pairs = shipped(client.app.state.application, 3000, prefix="KL")
    answer = client.post(f"/v1/companies/{company_id}/bulk", files=upload(filled(
        [("新規", "東京本社", ticket_id, "AB12CD", serial, None) for serial, ticket_id in pairs])))
    assert answer.status_code == 202, answer.text
    location = answer.headers["Location"]
    first = workers.start()
    _wait(client, location, lambda p: p["rows_done"] >= 500, 60)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    stopped_at = client.get(location, params={"rows": "false"}).json()
    assert stopped_at["status"] == "running" and stopped_at["rows_done"] < 3000, stopped_at
    assert stopped_at["estimated_seconds_left"] is not None and 0 < stopped_at["percent"] < 100
    workers.start()  # its sweeper finds the job once the dead worker's lease has run out
    done = _wait(client, location, lambda p: p["status"] == "done", 120)
    assert done["registered"] == 3000 and done["refused"] == 0, done
    serials = _registered_serials(client, company_id)
    assert len(serials) == len(set(serials)) == 3000
    assert set(serials) == {serial for serial, _ in pairs}


def test_K1_ten_thousand_rows_with_a_worker_and_again_registers_nothing(stack: tuple[TestClient, Workers]) -> None:
    client, workers = stack
    flow = Flow(client, client.app.state.application)
    company_id, _ = _company(flow)
    pairs = shipped(client.app.state.application, 10_000, prefix="TK")
    sheet = filled([("新規", "東京本社", ticket_id, "AB12CD", serial, None) for serial, ticket_id in pairs])
    workers.start()
    started = time.monotonic()
    answer = client.post(f"/v1/companies/{company_id}/bulk", files=upload(sheet))
    assert answer.status_code == 202, answer.text
    done = _wait(client, answer.headers["Location"], lambda p: p["status"] == "done", 240)
    first_seconds = time.monotonic() - started
    assert done["registered"] == 10_000, done
    again = client.post(f"/v1/companies/{company_id}/bulk", files=upload(sheet))
    redone = _wait(client, again.headers["Location"], lambda p: p["status"] == "done", 240)
    assert redone["already_registered"] == 10_000 and redone["registered"] == 0, redone
    serials = _registered_serials(client, company_id)
    assert len(serials) == len(set(serials)) == 10_000
    print(f"10,000 rows: {first_seconds:.1f} s, again {time.monotonic() - started - first_seconds:.1f} s")


def test_K1_a_job_waiting_in_the_queue_is_not_handed_out_again_and_a_dead_workers_job_once(
    stack: tuple[TestClient, Workers],
) -> None:
    """Sweepers (here two processes' BulkImports on the same store) leave a job that waits in
    Redis alone, past the lease; a job whose worker's lease ran out is handed out by one of
    them, once."""
    from lifecycle.adapters.bulk_uploads import BulkUploadStore
    from lifecycle.application.bulk import BulkImports

    client, _ = stack
    runtime = client.app.state.runtime
    broker = runtime.notifications.broker
    queue = f"{runtime.settings.redis_namespace}:bulk"
    flow = Flow(client, client.app.state.application)
    company_id, _ = _company(flow)
    pairs = shipped(client.app.state.application, 3, prefix="SW")
    answer = client.post(f"/v1/companies/{company_id}/bulk", files=upload(filled(
        [("新規", "東京本社", ticket_id, "AB12CD", serial, None) for serial, ticket_id in pairs])))
    assert answer.status_code == 202, answer.text
    job_id = UUID(answer.json()["job_id"])
    assert broker.client.llen(queue) == 1  # no worker runs: the job waits in the queue
    uploads = BulkUploadStore(client.app.state.application.recorder.datastore)
    other = BulkImports(client.app.state.application, uploads, max_rows=100, max_bytes=10**6, batch_rows=250,
                        sync_rows=0, lease_seconds=2, queue_wait_seconds=300, dispatch=runtime.bulk.dispatch)
    time.sleep(2.5)  # past the lease: a job never taken used to count as stalled
    assert runtime.bulk.resume_stalled() == [] and other.resume_stalled() == []
    assert broker.client.llen(queue) == 1
    # A worker takes it and dies: once its lease runs out, one sweeper of the two hands it out.
    assert uploads.claim(job_id, "a worker that dies", datetime.now(timezone.utc), timedelta(seconds=1))
    time.sleep(1.5)
    handed = runtime.bulk.resume_stalled() + other.resume_stalled()
    assert handed == [job_id]
    assert broker.client.llen(queue) == 2
