"""New-ticket registrations over HTTP on PostgreSQL, beside pgbench doing the event store's
own append protocol (one-row INSERT under LOCK TABLE ... IN EXCLUSIVE MODE).

The script creates a database of its own (and drops it afterwards), starts
`lifecycle serve --workers N` on it as a subprocess, sets up reference data, warms up, then
for each concurrency level runs registrations for a fixed time with a small keep-alive
HTTP/1.1 client on asyncio (cheap enough that the client is not the bottleneck on a small
machine; its CPU use is reported), and runs pgbench for the same time at the same
concurrency. Every non-201 answer counts as an error.

    .venv/bin/python benchmarks/registrations_http.py            # defaults: 1, 4, 16 clients, 20 s each
    .venv/bin/python benchmarks/registrations_http.py --workers 3 --duration 15 --concurrency 16
    .venv/bin/python benchmarks/registrations_http.py --server-env LIFECYCLE_RUN_PROJECTIONS=false
    .venv/bin/python benchmarks/registrations_http.py --with-worker     # as docker-compose deploys it

Each level's line also shows the CPU used by the server processes (and how it spread over
them), their PostgreSQL backends, the client and everything else on the machine (a busy
machine makes the numbers worse), and the CPU milliseconds per registration. Clients keep
their connections open (as internal services do); `--reconnect` opens one per request.

Reference data: one verified account (signed up over HTTP, token computed by an in-process
application on the same database), `--sites` companies each with one site and one fault
contact (over HTTP), and the shipped units and sold tickets (one unique pair per request),
saved in bulk through the application object: the same aggregates and events that
POST /v1/shipments and POST /v1/tickets record, without a round trip for each.
Request j goes to site j mod --sites, so concurrent requests never hit the same contract
(the realistic case: different customers); `--sites 1` measures one hot contract instead.

Exit status 0 when every target passes: service TPS >= 0.25 x pgbench TPS at each level,
p99 < 50 ms at 16 clients, no errors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from smoke import parse_args  # benchmarks/smoke.py: scripts run from this folder

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

TARGET_RATIO = 0.25
TARGET_P99_MS = 50.0
TARGET_P99_AT = 16

CODE_NO = "12345-01"
TICKET_CODE_NO = "12345-99"
VERIFICATION_CODE = "AB12CD"
SERVICE = "デリバリースタンダード"

PGBENCH_TABLE = "pgbench_append"
PGBENCH_SCRIPT = f"""\
BEGIN;
LOCK TABLE {PGBENCH_TABLE} IN EXCLUSIVE MODE;
INSERT INTO {PGBENCH_TABLE} (originator_id, originator_version, topic, state)
  VALUES (gen_random_uuid(), 1, :topic, CAST(:state AS bytea))
  RETURNING notification_id;
COMMIT;
"""
# Same columns, keys and indexes as the eventsourcing PostgreSQL application recorder's table.
PGBENCH_DDL = f"""
CREATE TABLE {PGBENCH_TABLE} (
  originator_id uuid NOT NULL, originator_version bigint NOT NULL, topic text, state bytea,
  notification_id bigserial, PRIMARY KEY (originator_id, originator_version));
CREATE UNIQUE INDEX {PGBENCH_TABLE}_notification_id ON {PGBENCH_TABLE} (notification_id ASC);
"""


# --- database --------------------------------------------------------------------------


def with_dbname(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + dbname, "", ""))


def admin_execute(admin_url: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(statement)


# --- the service -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Service:
    def __init__(self, db_url: str, workers: int, pool_size: int, secret_key: str, workdir: Path,
                 extra_env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.workers = workers
        self.log_path = workdir / "server.log"
        self.env = {
            **os.environ,
            "LIFECYCLE_DATABASE_URL": db_url,
            "LIFECYCLE_DATABASE_POOL_SIZE": str(pool_size),
            "LIFECYCLE_SECRET_KEY": secret_key,
            "LIFECYCLE_VAR_DIR": str(workdir / "var"),
            "PYTHONUNBUFFERED": "1",
            **(extra_env or {}),
        }
        self.process: subprocess.Popen | None = None
        self.worker: subprocess.Popen | None = None

    def start_worker(self) -> None:
        """`lifecycle worker` beside the API, as docker-compose runs it (scheduler included)."""
        self.worker_log = open(self.log_path.with_name("worker.log"), "wb")  # noqa: SIM115
        self.worker = subprocess.Popen([sys.executable, "-m", "lifecycle", "worker"], cwd=REPO, env=self.env,
                                       stdout=self.worker_log, stderr=subprocess.STDOUT)

    def start(self) -> None:
        command = [sys.executable, "-m", "lifecycle", "serve", "--host", "127.0.0.1",
                   "--port", str(self.port), "--workers", str(self.workers)]
        self.log = open(self.log_path, "wb")  # noqa: SIM115
        self.process = subprocess.Popen(command, cwd=REPO, env=self.env, stdout=self.log, stderr=subprocess.STDOUT)
        if not wait_until_answering(self.port, self.process):
            raise SystemExit(f"the service exited at start:\n{self.log_path.read_text()[-3000:]}")
        # With several workers, wait until every worker process has started its application.
        deadline = time.monotonic() + 60
        while (time.monotonic() < deadline
               and self.log_path.read_text(errors="replace").count("Application startup complete") < self.workers):
            time.sleep(0.2)

    def pids(self) -> list[int]:
        """The server's process and its worker processes (and `lifecycle worker`, if any)."""
        if self.process is None:
            return []
        pids = [self.process.pid] + ([self.worker.pid] if self.worker is not None else [])
        for pid in list(pids):
            try:
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            except OSError:
                continue
            pids.extend(int(c) for c in children)
        return pids

    def stop(self) -> None:
        for process in (self.worker, self.process):
            if process is not None:
                terminate(process)
        if self.process is not None:
            self.log.close()


def wait_until_answering(port: int, process: subprocess.Popen, timeout: float = 60) -> bool:
    """True once the server on `port` answers GET /openapi.json; False if `process` exited first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            if http_request("127.0.0.1", port, "GET", "/openapi.json")[0] == 200:
                return True
        except OSError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"the server did not answer within {timeout:.0f} s")


def terminate(process: subprocess.Popen, timeout: float = 60) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# The API key every request carries (made in main() with the registrations and
# reference-data roles, as the internal service that registers would have).
AUTHORIZATION: dict[str, str] = {}


def http_request(host: str, port: int, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    import http.client

    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        payload = json.dumps(body).encode() if body is not None else None
        conn.request(method, path, body=payload, headers={"Content-Type": "application/json", **AUTHORIZATION})
        response = conn.getresponse()
        data = response.read()
        return response.status, (json.loads(data) if data else {})
    finally:
        conn.close()


# --- reference data --------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    site_id: str
    ticket_id: str
    serial: str

    def request(self) -> bytes:
        body = json.dumps(
            {"ticket_id": self.ticket_id, "verification_code": VERIFICATION_CODE, "serial": self.serial}
        ).encode()
        head = (
            f"POST /v1/sites/{self.site_id}/registrations HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            + "".join(f"{k}: {v}\r\n" for k, v in AUTHORIZATION.items()) + "\r\n"
        )
        return head.encode() + body


def setup_reference_data(app, port: int, sites: int, units: int, log) -> list[Job]:  # noqa: ANN001
    from uuid import UUID

    def post(path: str, body: dict, expect: int = 201) -> dict:
        status, answer = http_request("127.0.0.1", port, "POST", path, body)
        if status != expect:
            raise SystemExit(f"setup: POST {path} answered {status}: {answer}")
        return answer

    t0 = time.perf_counter()
    account = post("/v1/accounts", {
        "email": "bench@example.co.jp", "password": "secret123", "name": "山田 太郎",
        "company_name": "株式会社サンプル", "phone": "03-1234-5678", "agree_terms": True,
    })
    post("/v1/accounts/verify", {"token": app.accounts.confirmation_token(UUID(account["account_id"]))}, expect=200)
    site_ids = []
    for n in range(sites):
        company = post("/v1/companies", {"account_id": account["account_id"], "name": f"株式会社ベンチ{n}"})
        site = post(f"/v1/companies/{company['company_id']}/sites", {
            "name": "東京本社", "postal_code": "100-0001", "prefecture": "東京都", "city": "千代田区",
            "street": "千代田1-1", "building": "サンプルビル3F", "person": "佐藤 花子",
            "phone": "03-1234-5678", "email": "hanako@example.co.jp",
        })
        post(f"/v1/sites/{site['site_id']}/fault-contacts", {
            "company": "株式会社サンプル", "postal_code": "1000001", "street": "千代田1-1",
            "person": "鈴木 一郎", "phone": "03-2345-6789", "mail1": "noc@example.co.jp",
            "mail2": "ichiro@example.co.jp",
        })
        site_ids.append(site["site_id"])
    log(f"  account, {sites} companies with a site and a fault contact over HTTP: {time.perf_counter() - t0:.1f} s")

    return save_units_and_tickets(app, site_ids, units, log)


def save_units_and_tickets(app, site_ids: list[str], units: int, log) -> list[Job]:  # noqa: ANN001
    """Shipped units and sold tickets, a pair per job spread over the sites: what POST
    /v1/shipments and POST /v1/tickets record (normalised values), saved in bulk through the
    application object."""
    from lifecycle.aggregates.shipments import Ticket, Unit

    t0 = time.perf_counter()
    jobs = []
    batch = []
    for n in range(units):
        ticket_id = f"{10_000_000 + n:08d}"
        serial = f"BN{n:014d}"
        batch.append(Unit(serial, CODE_NO.replace("-", ""), "AT-x510-28GTX", date(2026, 11, 2), None, None))
        batch.append(Ticket(ticket_id, VERIFICATION_CODE, TICKET_CODE_NO.replace("-", ""), SERVICE, 1, "new",
                            date(2026, 11, 10)))
        jobs.append(Job(site_ids[n % len(site_ids)], ticket_id, serial))
        if len(batch) >= 2000:
            app.save(*batch)
            batch.clear()
    if batch:
        app.save(*batch)
    log(f"  {units:,} shipped units and {units:,} sold tickets in bulk: {time.perf_counter() - t0:.1f} s")
    return jobs


# --- the load client -------------------------------------------------------------------


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)  # seconds, of 201 answers
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)
    elapsed: float = 0.0
    pool_exhausted: bool = False
    client_cpu: float = 0.0  # seconds of this process's CPU during the run

    @property
    def ok(self) -> int:
        return len(self.latencies)

    @property
    def tps(self) -> float:
        return self.ok / self.elapsed if self.elapsed else 0.0

    def percentile(self, p: float) -> float:
        return percentile(self.latencies, p) * 1000


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))
    return ordered[k]


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("connection closed by the server")
    status = int(status_line.split(b" ", 2)[1])
    length = 0
    keep_alive = True
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"connection" and value.strip().lower() == b"close":
            keep_alive = False
        elif name == b"transfer-encoding":
            raise ConnectionError("chunked answers are not expected")
    body = await reader.readexactly(length) if length else b""
    return status, body, keep_alive


async def run_clients(port: int, jobs: list[Job], concurrency: int, duration: float,
                      reconnect: bool = False) -> Result:
    result = Result()
    pending = iter(jobs)
    cpu0 = time.process_time()
    start = time.perf_counter()
    deadline = start + duration

    async def client() -> None:
        reader = writer = None
        while time.perf_counter() < deadline:
            job = next(pending, None)
            if job is None:
                result.pool_exhausted = True
                break
            request = job.request()
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                t0 = time.perf_counter()
                writer.write(request)
                status, body, keep_alive = await read_response(reader)
                t1 = time.perf_counter()
            except (OSError, ConnectionError, asyncio.IncompleteReadError, ValueError) as exc:
                result.errors += 1
                if len(result.error_samples) < 5:
                    result.error_samples.append(f"{type(exc).__name__}: {exc}")
                if writer is not None:
                    writer.close()
                reader = writer = None
                continue
            if status == 201:
                result.latencies.append(t1 - t0)
            else:
                result.errors += 1
                if len(result.error_samples) < 5:
                    result.error_samples.append(f"{status}: {body[:300].decode(errors='replace')}")
            if reconnect or not keep_alive:
                writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    await asyncio.gather(*(client() for _ in range(concurrency)))
    result.elapsed = time.perf_counter() - start
    result.client_cpu = time.process_time() - cpu0
    return result


# --- CPU accounting (from /proc; Linux only, best effort) ------------------------------


def _proc_cpu(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def postgres_pids(db_url: str) -> list[int]:
    """The server processes of the connections to the benchmark's database (on this machine)."""
    import psycopg

    with psycopg.connect(db_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return [row[0] for row in rows]


def _machine_busy() -> float:
    """CPU seconds the whole machine has been busy (all but idle and iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def cpu_snapshot(server_pids: list[int], pg_pids: list[int]) -> dict[str, float]:
    # The pool's connections live through a run; ones opened during it are not counted.
    return {
        "server": sum(_proc_cpu(p) for p in server_pids),
        **{f"server:{p}": _proc_cpu(p) for p in server_pids},
        "postgres": sum(_proc_cpu(p) for p in pg_pids),
        "machine": _machine_busy(),
    }


def wait_until_idle(service: Service, busy_below: float = 0.10, timeout: float = 300.0) -> float:
    """Waits until the server processes use less than `busy_below` of a core over a second,
    e.g. once projection runners in the API process have caught up with the reference data."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        before = cpu_snapshot(service.pids(), [])["server"]
        time.sleep(1.0)
        if cpu_snapshot(service.pids(), [])["server"] - before < busy_below:
            break
    return time.monotonic() - start


# --- pgbench ---------------------------------------------------------------------------


@dataclass
class PgbenchResult:
    tps: float
    latencies: list[float]  # seconds, per transaction from pgbench's log
    failed: int

    def percentile(self, p: float) -> float:
        return percentile(self.latencies, p) * 1000


def run_pgbench(db_url: str, concurrency: int, duration: float, workdir: Path) -> PgbenchResult:
    parts = urlsplit(db_url)
    script = workdir / "append.sql"
    script.write_text(PGBENCH_SCRIPT)
    logdir = workdir / f"pgbench-{concurrency}"
    logdir.mkdir(exist_ok=True)
    env = {**os.environ}
    if parts.password:
        env["PGPASSWORD"] = parts.password
    threads = min(concurrency, os.cpu_count() or 1)
    command = [
        "pgbench", "-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 5432),
        "-U", parts.username or "postgres", "-n", "-M", "prepared", "-f", str(script),
        # Variables, because pgbench would read the colon in a literal topic as a variable.
        "-D", "topic=lifecycle.aggregates.shipments:Ticket.Used", "-D", "state=\\x" + "7b" * 48 + "7d",
        "-c", str(concurrency), "-j", str(threads), "-T", str(int(duration)), "-l",
        parts.path.lstrip("/"),
    ]
    completed = subprocess.run(command, cwd=logdir, env=env, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise SystemExit(f"pgbench failed:\n{completed.stdout}\n{completed.stderr}")
    match = re.search(r"tps = ([\d.]+) \(without initial connection time\)", completed.stdout)
    failed = re.search(r"number of failed transactions: (\d+)", completed.stdout)
    latencies = []
    for log_file in logdir.glob("pgbench_log.*"):
        for line in log_file.read_text().splitlines():
            cols = line.split()
            if len(cols) >= 3 and cols[2].isdigit():
                latencies.append(int(cols[2]) / 1e6)
        log_file.unlink()
    return PgbenchResult(float(match.group(1)) if match else float("nan"), latencies,
                         int(failed.group(1)) if failed else 0)


# --- the run ---------------------------------------------------------------------------


def code_version() -> str:
    """The commit measured, and whether the working tree differs from it."""
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO,
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"
    return commit + (" with uncommitted changes" if dirty else "")


def machine() -> str:
    model = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
        mem_kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text()).group(1))
    except OSError:
        mem_kb = 0
    return f"{os.cpu_count()} CPUs ({model}), {mem_kb / 1024 / 1024:.1f} GiB"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="a PostgreSQL database to connect to for CREATE/DROP DATABASE")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per level (service and pgbench)")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of warm-up at the highest concurrency")
    parser.add_argument("--workers", type=int, default=2, help="server processes (lifecycle serve --workers)")
    parser.add_argument("--pool-size", type=int, default=10, help="LIFECYCLE_DATABASE_POOL_SIZE per process")
    parser.add_argument("--sites", type=int, default=400, help="companies (one site each) the requests spread over")
    parser.add_argument("--max-rate", type=float, default=800.0,
                        help="registrations/s the reference data is sized for (unique tickets per level)")
    parser.add_argument("--server-env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra environment for the service, e.g. LIFECYCLE_RUN_PROJECTIONS=false (repeatable)")
    parser.add_argument("--with-worker", action="store_true",
                        help="the docker-compose deployment: a Redis broker (db 15 of 127.0.0.1:6379) and one "
                             "`lifecycle worker` (scheduler, timers, mails) beside the API; its CPU counts as server")
    parser.add_argument("--reconnect", action="store_true",
                        help="a new connection for every request (default: keep-alive connections)")
    parser.add_argument("--skip-pgbench", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the results to this file")
    args = parse_args(parser, concurrency=[1, 2], duration=1.0, warmup=0.5, workers=1, sites=4, max_rate=100.0)

    def log(message: str) -> None:
        print(message, flush=True)

    from lifecycle.bootstrap import build_access, build_application
    from lifecycle.settings import Settings

    dbname = f"lifecycle_bench_{os.getpid()}"
    db_url = with_dbname(args.admin_url, dbname)
    workdir = Path(tempfile.mkdtemp(prefix="lifecycle-bench-"))
    secret_key = os.urandom(16).hex()
    server_version = "?"
    rows = []
    mismatch = False
    service = None
    app = None
    try:
        import psycopg

        with psycopg.connect(args.admin_url, autocommit=True) as conn:
            server_version = conn.execute("SHOW server_version").fetchone()[0]
            conn.execute(f'CREATE DATABASE "{dbname}"')
        log(f"machine: {machine()}; PostgreSQL {server_version}; code {code_version()}; database {dbname}")
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(PGBENCH_DDL)

        # The in-process application creates the store's tables before the workers start,
        # and computes the account's confirmation token.
        settings = Settings(database_url=db_url, secret_key=secret_key, var_dir=workdir / "var", _env_file=None)
        app = build_application(settings)
        _, token = build_access(settings, app).create_key("benchmark", ["registrations", "reference-data"])
        AUTHORIZATION["Authorization"] = f"Bearer {token}"
        extra_env = dict(item.split("=", 1) for item in args.server_env)
        if args.with_worker:
            extra_env.setdefault("LIFECYCLE_REDIS_URL", "redis://127.0.0.1:6379/15")
            extra_env.setdefault("LIFECYCLE_REDIS_NAMESPACE", f"lifecycle-bench-{os.getpid()}")
        service = Service(db_url, args.workers, args.pool_size, secret_key, workdir, extra_env)
        service.start()
        if args.with_worker:
            service.start_worker()
        log(f"service: lifecycle serve --workers {args.workers} on 127.0.0.1:{service.port}, "
            f"pool size {args.pool_size} per process" + (", with one lifecycle worker" if args.with_worker else "")
            + "".join(f", {k}={v}" for k, v in extra_env.items()))

        levels = [("warm-up", max(args.concurrency), args.warmup)] + [
            (str(c), c, args.duration) for c in args.concurrency
        ]
        per_level = [math.ceil(d * args.max_rate) for _, _, d in levels]
        log("setting up reference data:")
        jobs = setup_reference_data(app, service.port, args.sites, sum(per_level), log)
        app.close()
        app = None
        settled = wait_until_idle(service)
        log(f"  the service settled (background work on the new events done) after {settled:.1f} s")

        offset = 0
        total_ok = 0
        for (name, concurrency, duration), size in zip(levels, per_level, strict=True):
            level_jobs = jobs[offset:offset + size]
            offset += size
            pg_pids = postgres_pids(db_url)
            before = cpu_snapshot(service.pids(), pg_pids)
            result = asyncio.run(run_clients(service.port, level_jobs, concurrency, duration, args.reconnect))
            after = cpu_snapshot(service.pids(), pg_pids)
            total_ok += result.ok
            cpu = {k: 100 * (after[k] - before.get(k, 0.0)) / result.elapsed for k in after}
            # How the work spread over the server's processes (the supervisor's share is ~0).
            split = "+".join(f"{v:.0f}" for k, v in sorted(cpu.items()) if k.startswith("server:") and v >= 1)
            cpu = {k: v for k, v in cpu.items() if not k.startswith("server:")}
            cpu["client"] = 100 * result.client_cpu / result.elapsed
            # Whatever else ran on the machine meanwhile (other processes, pgbench excluded).
            cpu["other"] = max(0.0, cpu["machine"] - cpu["server"] - cpu["postgres"] - cpu["client"])
            per_request = {k: 10 * cpu[k] / result.tps if result.tps else float("nan") for k in ("server", "postgres")}
            cpu["server_ms_per_registration"] = per_request["server"]
            cpu["postgres_ms_per_registration"] = per_request["postgres"]
            log(f"{name:>8} c={concurrency:<3} {result.ok:6d} ok {result.errors:4d} errors in {result.elapsed:5.1f} s: "
                f"{result.tps:7.1f}/s  p50 {result.percentile(50):6.1f} p95 {result.percentile(95):6.1f} "
                f"p99 {result.percentile(99):6.1f} ms  CPU% server {cpu['server']:.0f} ({split}) postgres {cpu['postgres']:.0f} "
                f"client {cpu['client']:.0f} other {cpu['other']:.0f}; CPU ms per registration: server "
                f"{per_request['server']:.2f} postgres {per_request['postgres']:.2f}" + ("  (ticket pool exhausted)" if result.pool_exhausted else ""))
            for sample in result.error_samples:
                log(f"         error: {sample}")
            if name == "warm-up":
                continue
            pg = None if args.skip_pgbench else run_pgbench(db_url, concurrency, duration, workdir)
            if pg:
                log(f"{'pgbench':>8} c={concurrency:<3} {pg.tps:7.1f} tps  p50 {pg.percentile(50):6.2f} "
                    f"p95 {pg.percentile(95):6.2f} p99 {pg.percentile(99):6.2f} ms  failed {pg.failed}")
            rows.append((concurrency, result, pg, cpu))

        with psycopg.connect(db_url, autocommit=True) as conn:
            recorded = conn.execute(
                "SELECT count(*) FROM lifecycle_events WHERE topic LIKE %s", ("%Contract.TicketRegistered",)
            ).fetchone()[0]
        log(f"check: {total_ok} answers 201 (warm-up included), {recorded} TicketRegistered events in the store"
            + ("" if recorded == total_ok else "  MISMATCH"))
        if recorded != total_ok:
            mismatch = True
    except BaseException:
        if service is not None and service.log_path.exists():
            print("--- the service's log, last lines ---", file=sys.stderr)
            print("\n".join(service.log_path.read_text(errors="replace").splitlines()[-40:]), file=sys.stderr)
        raise
    finally:
        if service is not None:
            service.stop()
        if app is not None:
            app.close()
        try:
            admin_execute(args.admin_url, f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
        except Exception as exc:  # noqa: BLE001
            print(f"could not drop database {dbname}: {exc}", file=sys.stderr)
        shutil.rmtree(workdir, ignore_errors=True)

    # --- the table --------------------------------------------------------------------
    all_pass = not mismatch
    print()
    print(f"workers={args.workers} pool={args.pool_size} sites={args.sites} duration={args.duration:g}s"
          + (" with-worker" if args.with_worker else ""))
    header = (f"{'clients':>7} {'svc TPS':>8} {'pgbench':>8} {'ratio':>6} {'p50 ms':>7} {'p95 ms':>7} "
              f"{'p99 ms':>7} {'errors':>6} {'other%':>6}  result")
    print(header)
    print("-" * len(header))
    out = []
    for concurrency, result, pg, cpu in rows:
        ratio = result.tps / pg.tps if pg else float("nan")
        checks = [result.errors == 0 and (pg is None or pg.failed == 0)]
        if pg:
            checks.append(ratio >= TARGET_RATIO)
        if concurrency == TARGET_P99_AT:
            checks.append(result.percentile(99) < TARGET_P99_MS)
        passed = all(checks)
        all_pass &= passed
        print(f"{concurrency:>7} {result.tps:8.1f} {pg.tps if pg else float('nan'):8.1f} {ratio:6.2f} "
              f"{result.percentile(50):7.1f} {result.percentile(95):7.1f} {result.percentile(99):7.1f} "
              f"{result.errors:>6} {cpu['other']:6.0f}  {'PASS' if passed else 'FAIL'}")
        out.append({
            "concurrency": concurrency, "service_tps": result.tps, "pgbench_tps": pg.tps if pg else None,
            "ratio": ratio, "p50_ms": result.percentile(50), "p95_ms": result.percentile(95),
            "p99_ms": result.percentile(99), "errors": result.errors, "requests_ok": result.ok,
            "pgbench_p99_ms": pg.percentile(99) if pg else None, "cpu_percent": cpu, "pass": passed,
        })
    print(f"targets: TPS >= {TARGET_RATIO} x pgbench at each level; p99 < {TARGET_P99_MS:g} ms at "
          f"{TARGET_P99_AT} clients; no errors -> {'ALL PASS' if all_pass else 'FAIL'}"
          + (" (--skip-pgbench: the TPS ratio was not checked)" if args.skip_pgbench else ""))
    print("other% = CPU used meanwhile by processes other than the service, its PostgreSQL backends and the client")
    if args.json:
        args.json.write_text(json.dumps({
            "machine": machine(), "postgresql": server_version, "date": time.strftime("%Y-%m-%d %H:%M %z"),
            "code": code_version(), "workers": args.workers, "pool_size": args.pool_size, "sites": args.sites,
            "server_env": args.server_env, "with_worker": args.with_worker,
            "duration_s": args.duration, "levels": out, "all_pass": all_pass,
        }, indent=2))
    if args.smoke:  # sizes too small for the targets: only a refused registration fails the run
        return 0 if all(level["errors"] == 0 for level in out) else 1
    return 0 if all_pass else 1


if __name__ == "__main__":
    sys.exit(main())
