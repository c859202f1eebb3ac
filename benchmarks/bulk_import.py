"""Bulk registration (K-1) end to end on PostgreSQL: one company, a sheet of --rows new tickets
uploaded over HTTP, registered by a `lifecycle worker` process taking the job from Redis, until
the result sheet is downloaded; then the same sheet again (every row already registered), then
a second sheet of as many new rows for the same company (its cost must not grow with the company);
beside pgbench's locked one-row insert (the event store's own append) in the same run.

    .venv/bin/python benchmarks/bulk_import.py                 # 10,000 rows
    .venv/bin/python benchmarks/bulk_import.py --rows 2000 --batch-rows 500

The API runs in this process (FastAPI's test client over ASGI, as the upload's cost is the
server's, not the network's); the database, the worker process and Redis are real. Prints
seconds, rows per second, the ratio of rows per second to pgbench's TPS, and how much the
database grew per row.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from api.app import create_app  # noqa: E402
from benchmarks.registrations_http import (  # noqa: E402
    PGBENCH_DDL,
    _proc_cpu,
    code_version,
    machine,
    postgres_pids,
    run_pgbench,
    with_dbname,
)
from lifecycle.domain.dates import TOKYO  # noqa: E402
from lifecycle.settings import Settings  # noqa: E402
from tests.bulk_sheets import filled, upload  # noqa: E402
from tests.fakes import FixedClock  # noqa: E402
from tests.scenario import Flow, service_key, shipped  # noqa: E402

from smoke import parse_args  # benchmarks/smoke.py: scripts run from this folder


def wait_done(client: TestClient, location: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        progress = client.get(location, params={"rows": "false"}).json()
        if progress["status"] == "done":
            return progress
        if time.monotonic() > deadline:
            raise SystemExit(f"the job did not finish in {timeout} s: {progress}")
        # A progress bar's pace: every answer costs the API a request, which on two shared cores
        # is taken from the worker (polled every 50 ms, they were seconds of a 10,000-row run).
        time.sleep(0.25)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--admin-url", default=os.environ.get("LIFECYCLE_TEST_POSTGRES_URL",
                                                              "postgresql://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--batch-rows", type=int, default=Settings.model_fields["bulk_batch_rows"].default)
    parser.add_argument("--pgbench-seconds", type=float, default=15)
    args = parse_args(parser, rows=60, batch_rows=25, pgbench_seconds=1)

    dbname = f"lifecycle_bulk_bench_{os.getpid()}"
    db_url = with_dbname(args.admin_url, dbname)
    workdir = Path(tempfile.mkdtemp(prefix="lifecycle-bulk-bench-"))
    with psycopg.connect(args.admin_url, autocommit=True) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
        conn.execute(f'CREATE DATABASE "{dbname}"')
    print(f"machine: {machine()}; PostgreSQL {version}; code {code_version()}; {args.rows} rows", flush=True)
    settings = Settings(
        _env_file=None, database_url=db_url, secret_key="bench", var_dir=workdir / "var", redis_url=args.redis_url,
        redis_namespace=f"lifecycle-bulk-bench-{uuid.uuid4().hex[:8]}", bulk_sync_rows=0,
        bulk_batch_rows=args.batch_rows, bulk_max_rows=max(50_000, args.rows),
    )
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("LIFECYCLE_")},
        "LIFECYCLE_DATABASE_URL": db_url, "LIFECYCLE_SECRET_KEY": "bench", "LIFECYCLE_VAR_DIR": str(workdir / "var"),
        "LIFECYCLE_REDIS_URL": settings.redis_url, "LIFECYCLE_REDIS_NAMESPACE": settings.redis_namespace,
        "LIFECYCLE_BULK_BATCH_ROWS": str(args.batch_rows),
    }
    worker = None
    try:
        clock = FixedClock(datetime(2026, 11, 20, 10, tzinfo=TOKYO))
        with TestClient(create_app(settings, clock=clock)) as client:
            app = client.app.state.application
            client.headers["Authorization"] = f"Bearer {service_key(settings, app, 'registrations', 'reference-data')}"
            company_id, _ = Flow(client, app).company_with_site()
            def sheet_of(prefix: str) -> bytes:
                pairs = shipped(app, args.rows, prefix=prefix)
                return filled([("新規", "東京本社", ticket_id, "AB12CD", serial, None) for serial, ticket_id in pairs])

            sheets = {"first": sheet_of("BA"), "again": None, "second": sheet_of("BC")}
            sheets["again"] = sheets["first"]
            worker = subprocess.Popen([sys.executable, "-m", "lifecycle", "worker", "--no-scheduler"],
                                      env=env, stdout=subprocess.DEVNULL, stderr=(workdir / "worker.log").open("wb"))
            time.sleep(3)  # the worker connects to Redis
            with psycopg.connect(db_url) as conn:
                size_before = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
            timings = []
            for attempt, sheet in sheets.items():  # the same sheet again; then new rows: a bigger company
                # CPU as well as wall time: the host is shared, and CPU per row is what a change moves.
                pg_pids = postgres_pids(db_url)
                cpu_before = (time.process_time(), _proc_cpu(worker.pid), sum(_proc_cpu(p) for p in pg_pids))
                started = time.perf_counter()
                answer = client.post(f"/v1/companies/{company_id}/bulk", files=upload(sheet))
                if answer.status_code != 202:
                    raise SystemExit(f"upload answered {answer.status_code}: {answer.text[:500]}")
                done = wait_done(client, answer.headers["Location"], 1800)
                result = client.get(f"{answer.headers['Location']}/result.xlsx")
                seconds = time.perf_counter() - started
                api_cpu, worker_cpu, pg_cpu = (
                    after - before for after, before in zip(
                        (time.process_time(), _proc_cpu(worker.pid), sum(_proc_cpu(p) for p in pg_pids)), cpu_before)
                )
                timings.append(seconds)
                counts = {k: done.get(k) for k in ("registered", "already_registered", "refused")}
                print(f"  {attempt}: {seconds:.1f} s, {args.rows / seconds:.0f} rows/s, {counts}, "
                      f"result sheet {len(result.content) / 1024:.0f} KiB; CPU ms per row: API process "
                      f"{1000 * api_cpu / args.rows:.2f} (upload, progress, result sheet, read models, this client), "
                      f"worker {1000 * worker_cpu / args.rows:.2f}, PostgreSQL {1000 * pg_cpu / args.rows:.2f} "
                      f"(load average {os.getloadavg()[0]:.1f})", flush=True)
                if attempt == "first":
                    with psycopg.connect(db_url) as conn:
                        grown = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0] - size_before
                    print(f"  database grew {grown / 2**20:.1f} MiB ({grown / args.rows:.0f} bytes per row)",
                          flush=True)
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(PGBENCH_DDL)
        pgbench = run_pgbench(db_url, 1, args.pgbench_seconds, workdir)
        rate = args.rows / timings[0]
        print(f"  pgbench c=1: {pgbench.tps:.0f} TPS; rows/s over pgbench TPS: {rate / pgbench.tps:.2f} "
              f"(target: first sheet under 15 s, about 0.3 x); the same sheet again {timings[1] / timings[0]:.2f} x, "
              f"a second sheet of new rows {timings[2] / timings[0]:.2f} x the first (target <= 1.3 x)")
        return 0
    finally:
        if worker is not None:
            worker.terminate()
            worker.wait(timeout=30)
        with psycopg.connect(args.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


if __name__ == "__main__":
    raise SystemExit(main())
