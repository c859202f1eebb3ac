"""A bulk job's own cost, in process on PostgreSQL: the CPU one thread spends registering a
sheet's rows for one company (reading it, deciding each row, saving each batch), and the
statements it sends per batch. No HTTP, no broker, no other thread of the job's: on a shared
machine this moves far less than wall time does.

    .venv/bin/python benchmarks/bulk_in_process.py                    # 10,000 rows, batches of 250
    .venv/bin/python benchmarks/bulk_in_process.py --rows 5000 --batch-rows 1000

Prints, for a first sheet of new tickets and the same sheet again: the job thread's CPU per
row (split into reading the sheet and the batches), the PostgreSQL backends' CPU per row, and
the statements sent per batch (counted at psycopg's cursor, from the job's thread only).
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from api.app import create_app  # noqa: E402
from benchmarks.registrations_http import _proc_cpu, code_version, machine, postgres_pids, with_dbname  # noqa: E402
from lifecycle.bulk.sheets import read_sheet  # noqa: E402
from lifecycle.domain.dates import TOKYO  # noqa: E402
from lifecycle.settings import Settings  # noqa: E402
from tests.bulk_sheets import filled  # noqa: E402
from tests.fakes import FixedClock  # noqa: E402
from tests.scenario import Flow, service_key, shipped  # noqa: E402

from smoke import parse_args  # benchmarks/smoke.py: scripts run from this folder


class StatementCounter:
    """Counts the statements one thread sends through psycopg (first words, e.g. 'SELECT')."""

    def __init__(self) -> None:
        self.thread = threading.get_ident()
        self.counts: collections.Counter[str] = collections.Counter()
        self._execute = psycopg.Cursor.execute
        counter = self

        def execute(cursor, query, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
            if threading.get_ident() == counter.thread:
                # A statement is text, bytes (composed once, as the save's are) or composed SQL.
                text = query if isinstance(query, str) else (
                    query.decode() if isinstance(query, bytes) else query.as_string(cursor))
                counter.counts[" ".join(text.split()[:1]).upper()] += 1
            return counter._execute(cursor, query, *args, **kwargs)

        psycopg.Cursor.execute = execute  # type: ignore[method-assign]

    def take(self) -> collections.Counter[str]:
        counts, self.counts = self.counts, collections.Counter()
        return counts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--admin-url", default=os.environ.get("LIFECYCLE_TEST_POSTGRES_URL",
                                                              "postgresql://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--batch-rows", type=int, default=Settings.model_fields["bulk_batch_rows"].default)
    args = parse_args(parser, rows=60, batch_rows=25)

    dbname = f"lifecycle_bulk_inproc_{os.getpid()}"
    db_url = with_dbname(args.admin_url, dbname)
    with psycopg.connect(args.admin_url, autocommit=True) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
        conn.execute(f'CREATE DATABASE "{dbname}"')
    print(f"machine: {machine()}; PostgreSQL {version}; code {code_version()}; {args.rows} rows, "
          f"batches of {args.batch_rows}", flush=True)
    workdir = Path(tempfile.mkdtemp(prefix="lifecycle-bulk-inproc-"))
    settings = Settings(
        _env_file=None, database_url=db_url, secret_key="bench", var_dir=workdir / "var",
        redis_namespace=f"lifecycle-bulk-inproc-{uuid.uuid4().hex[:8]}", bulk_sync_rows=0,
        bulk_batch_rows=args.batch_rows, bulk_max_rows=max(50_000, args.rows), run_projections=False,
    )
    try:
        clock = FixedClock(datetime(2026, 11, 20, 10, tzinfo=TOKYO))
        with TestClient(create_app(settings, clock=clock)) as client:
            app = client.app.state.application
            bulk = client.app.state.runtime.bulk
            client.headers["Authorization"] = f"Bearer {service_key(settings, app, 'registrations', 'reference-data')}"
            company_id, _ = Flow(client, app).company_with_site()
            pairs = shipped(app, args.rows, prefix="BI")
            sheet = filled([("新規", "東京本社", ticket_id, "AB12CD", serial, None) for serial, ticket_id in pairs])
            counter = StatementCounter()
            batches = -(-args.rows // args.batch_rows)
            for attempt in ("first", "again"):
                pg_pids = postgres_pids(db_url)
                pg_before = sum(_proc_cpu(p) for p in pg_pids)
                cpu = time.thread_time()
                read_sheet(sheet, max_rows=settings.bulk_max_rows)  # what the upload's reading alone costs
                reading = time.thread_time() - cpu
                counter.take()
                started, cpu = time.perf_counter(), time.thread_time()
                answer, finished = bulk.submit(uuid.UUID(company_id), sheet, "bench.xlsx", run_here=True)
                cpu = time.thread_time() - cpu
                seconds = time.perf_counter() - started
                pg_cpu = sum(_proc_cpu(p) for p in pg_pids) - pg_before
                statements = counter.take()
                assert finished and answer["rows_done"] == args.rows, answer
                per_batch = ", ".join(f"{word} {n / batches:.1f}" for word, n in statements.most_common())
                print(f"  {attempt}: {answer['registered']} registered, {answer['already_registered']} already; "
                      f"{seconds:.1f} s wall; upload and job, one thread's CPU: "
                      f"{1000 * cpu / args.rows:.3f} ms per row "
                      f"(of which reading the sheet {1000 * reading / args.rows:.3f}); "
                      f"PostgreSQL {1000 * pg_cpu / args.rows:.3f} ms per row; "
                      f"statements per batch: {per_batch} (load average {os.getloadavg()[0]:.1f})", flush=True)
        return 0
    finally:
        with psycopg.connect(args.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


if __name__ == "__main__":
    raise SystemExit(main())
