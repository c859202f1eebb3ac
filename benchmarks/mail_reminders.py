"""Mail throughput: 10,000 renewal reminders falling due at once, sent through a real SMTP
sink, end to end (timer projection, scheduler, workers, SMTP, recorded events).

    .venv/bin/python benchmarks/mail_reminders.py [--reminders 10000] [--mode redis|embedded]
        [--workers 2] [--threads 4]

- redis (default): PostgreSQL, the Redis broker and `lifecycle worker` processes, as in
  docker-compose; the scheduler runs in this process.
- embedded: SQLite and the in-process worker of `lifecycle serve`.

Makes a store of its own (a PostgreSQL database on LIFECYCLE_BENCH_POSTGRES_URL, default the
local test server; or a SQLite file), fills the log through the domain model with
registrations whose service-in mails are already recorded, so that only the reminders are
due on 2027-10-01, starts an SMTP sink (aiosmtpd, in a process of its own), fires the timers
as of that morning and times until every reminder is recorded as sent. Prints its figures.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import redis
from psycopg import sql

from lifecycle.aggregates.accounts import Account
from lifecycle.aggregates.contract import Contract, FaultContact, Site
from lifecycle.aggregates.shipments import Ticket, Unit
from lifecycle.bootstrap import build_application, build_notifications
from lifecycle.domain.dates import TOKYO
from lifecycle.domain.notifications import service_in_id
from lifecycle.domain.periods import RenewalPolicy, SupportPeriod
from lifecycle.settings import Settings
sys.path.append(str(Path(__file__).resolve().parent.parent))  # tests.fakes, run as documented (after PYTHONPATH)
from tests.fakes import FixedClock  # noqa: E402
from smoke import parse_args  # benchmarks/smoke.py: scripts run from this folder

ADMIN_URL = os.environ.get("LIFECYCLE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("LIFECYCLE_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
REGISTERED = datetime(2026, 11, 20, 10, tzinfo=TOKYO)
DUE = datetime(2027, 10, 1, 10, tzinfo=TOKYO)  # 3 months before the end of 2027-12-31
SITE = {
    "name": "本社", "postal_code": "1000001", "prefecture": "東京都", "city": "千代田区", "street": "千代田1-1",
    "building": "", "person": "佐藤", "phone": "03-1234-5678", "email": "site@example.co.jp",
}
CONTACT = {
    "company": "株式会社サンプル", "postal_code": "1000001", "prefecture": "東京都", "city": "千代田区",
    "street": "千代田1-1", "building": "", "person": "鈴木", "phone": "03-2345-6789",
    "mail1": "noc@example.co.jp", "mail2": "duty@example.co.jp",
}
SINK = """
import asyncio, signal, sys
from aiosmtpd.controller import Controller

class Count:
    messages = 0
    recipients = 0
    async def handle_DATA(self, server, session, envelope):
        Count.messages += 1
        Count.recipients += len(envelope.rcpt_tos)
        return "250 OK"
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
controller = Controller(Count(), hostname="127.0.0.1", port=int(sys.argv[1]))
controller.start()
print("ready", flush=True)
signal.sigwait({signal.SIGTERM})
controller.stop()
print(Count.messages, Count.recipients, flush=True)
"""


def fill_log(app: Any, reminders: int, per_company: int) -> None:
    """Companies of one site and one fault contact (mail1, mail2), each with `per_company`
    1-year tickets sold 2026-11-10 (ending 2027-12-31), registered 2026-11-20, their
    service-in mails recorded."""
    policy = RenewalPolicy()
    serial_no = 0
    for company_no in range(reminders // per_company):
        account = Account(f"u{company_no}@example.co.jp", "x", "山田", "会社", "03-1234-5678",
                          REGISTERED + timedelta(days=1))
        account.activate(REGISTERED)
        contract = Contract(contract_number=f"SU{company_no:08d}", account_id=account.id, name=f"株式会社{company_no:05d}")
        site_id = uuid.uuid4()
        contract.add_site(Site(site_id=site_id, **SITE))
        contract.add_fault_contact(FaultContact(uuid.uuid4(), site_id, **CONTACT))
        changed: list[Any] = [account, contract]
        for _ in range(per_company):
            serial_no += 1
            serial = f"BM{serial_no:010d}"
            sold_on = date(2026, 11, 10)
            period = SupportPeriod.from_sale(sold_on, 13)
            unit = Unit(serial, "1234501", "AT-x510", sold_on, None, None)
            ticket = Ticket(f"{10_000_000 + serial_no}", "C", "1234599", "デリバリースタンダード", 1, "new", sold_on)
            ticket.use(serial, contract.id)
            unit.cover(contract.id, serial, period.end, REGISTERED.date(), policy)
            contract.register_ticket(site_id, serial, ticket.ticket_id, unit.code_no, unit.model, ticket.service, 1,
                                     sold_on, period, REGISTERED.date())
            contract.record_service_in_notified(service_in_id(contract.id, serial, contract.version), serial,
                                                ["noc@example.co.jp"], "<m>", REGISTERED)
            changed += [unit, ticket]
        app.save(*changed)


def cpu_seconds(pid: int) -> float:
    """User and system CPU of a process on this host so far (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def database_backends(database: str) -> dict[int, float]:
    """The CPU so far of each PostgreSQL server process serving `database` (the same host)."""
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        pids = [row[0] for row in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (database,))]
    return {pid: cpu_seconds(pid) for pid in pids}


def wait_sent(notifications: Any, expected: int, started: float, timeout: float = 1800) -> float:
    while True:
        counts = notifications.store.counts()
        if counts.get("sent", 0) >= expected:
            return time.perf_counter() - started
        if time.perf_counter() - started > timeout:
            raise SystemExit(f"timed out: {counts}")
        time.sleep(0.2)


def main() -> None:  # noqa: PLR0915 - a script
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reminders", type=int, default=10_000)
    parser.add_argument("--per-company", type=int, default=10)
    parser.add_argument("--mode", choices=["redis", "embedded"], default="redis")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (redis mode)")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker")
    parser.add_argument("--prefetch", type=int, default=64)
    args = parse_args(parser, reminders=20, per_company=5, workers=1, threads=2)

    var_dir = Path(tempfile.mkdtemp(prefix="lifecycle_mail_bench"))
    sink_port = 20000 + os.getpid() % 20000
    namespace = f"lifecycle-bench-{uuid.uuid4().hex[:8]}"
    database = f"lifecycle_bench_mail_{os.getpid()}"
    common: dict[str, Any] = {
        "secret_key": "bench", "var_dir": var_dir, "run_projections": False,
        "smtp_host": "127.0.0.1", "smtp_port": sink_port, "worker_threads": args.threads,
        "worker_prefetch": args.prefetch, "scheduler_interval_seconds": 3600,
        # Only the 3-month reminders: the later stages are due after this morning anyway.
    }
    if args.mode == "redis":
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
        settings = Settings(database_url=f"{ADMIN_URL.rsplit('/', 1)[0]}/{database}", redis_url=REDIS_URL,
                            redis_namespace=namespace, **common)
    else:
        settings = Settings(database_url=f"sqlite:///{var_dir / 'events.sqlite3'}", **common)
    clock = FixedClock(REGISTERED)
    app = build_application(settings, clock=clock)
    sink = subprocess.Popen([sys.executable, "-c", SINK, str(sink_port)], stdout=subprocess.PIPE, text=True)
    workers: list[subprocess.Popen] = []
    notifications = None
    try:
        assert sink.stdout is not None and sink.stdout.readline().strip() == "ready"
        started = time.perf_counter()
        fill_log(app, args.reminders, args.per_company)
        print(f"{args.mode}: log filled with {args.reminders:,} registrations in {time.perf_counter() - started:.1f}s "
              f"({app.recorder.max_notification_id():,} events)")

        notifications = build_notifications(settings, app, clock=clock)
        started = time.perf_counter()
        applied = notifications.projection.catch_up()
        seconds = time.perf_counter() - started
        print(f"timer projection: {applied:,} events -> {sum(notifications.store.counts().values()):,} timers "
              f"in {seconds:.1f}s ({applied / seconds:,.0f} events/s)")

        if args.mode == "redis":
            env = {
                **os.environ, "LIFECYCLE_DATABASE_URL": settings.database_url, "LIFECYCLE_SECRET_KEY": "bench",
                "LIFECYCLE_VAR_DIR": str(var_dir), "LIFECYCLE_REDIS_URL": REDIS_URL,
                "LIFECYCLE_REDIS_NAMESPACE": namespace, "LIFECYCLE_SMTP_HOST": "127.0.0.1",
                "LIFECYCLE_SMTP_PORT": str(sink_port), "LIFECYCLE_WORKER_PREFETCH": str(args.prefetch),
            }
            for _ in range(args.workers):
                workers.append(subprocess.Popen(
                    [sys.executable, "-m", "lifecycle", "worker", "--no-scheduler", "--threads", str(args.threads)],
                    env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            time.sleep(3)  # let them connect
        else:
            assert notifications.in_process is not None
            notifications.in_process.start()

        already_sent = notifications.store.counts().get("sent", 0)  # the recorded service-in mails
        # CPU while sending: the workers (this process's in-process worker when embedded),
        # the SMTP sink and PostgreSQL's server processes for this database.
        cpu_before = {"workers": sum(cpu_seconds(w.pid) for w in workers) + time.process_time(),
                      "sink": cpu_seconds(sink.pid)}
        backends = database_backends(database) if args.mode == "redis" else {}
        load_before = os.getloadavg()[0]
        started = time.perf_counter()
        fired = notifications.scheduler.run_once(DUE)
        enqueue_seconds = time.perf_counter() - started
        assert len(fired) == args.reminders, (len(fired), notifications.store.counts())
        total = wait_sent(notifications, already_sent + args.reminders, started)
        cpu = {"workers": sum(cpu_seconds(w.pid) for w in workers) + time.process_time() - cpu_before["workers"],
               "sink": cpu_seconds(sink.pid) - cpu_before["sink"]}
        if args.mode == "redis":
            cpu["postgres"] = sum(seconds - backends.get(pid, 0.0)
                                  for pid, seconds in database_backends(database).items())
        where = (f"{args.workers} worker process(es) x {args.threads} threads, prefetch {args.prefetch}"
                 if args.mode == "redis" else f"in-process worker, {args.threads} threads")
        print(f"scheduler: {len(fired):,} due reminders enqueued in {enqueue_seconds:.2f}s "
              f"({len(fired) / enqueue_seconds:,.0f}/s)")
        print(f"sent and recorded: {args.reminders:,} mails in {total:.1f}s = {args.reminders / total:,.0f} mails/s "
              f"({where})")
        print("CPU per mail: " + ", ".join(f"{name} {seconds / args.reminders * 1000:.2f} ms" for name, seconds in cpu.items())
              + f"; load average {load_before:.1f} at the start, {os.getloadavg()[0]:.1f} at the end")
    finally:
        for worker in workers:
            worker.terminate()
        for worker in workers:
            worker.wait(timeout=60)
        if notifications is not None:
            if notifications.in_process is not None:
                notifications.in_process.stop()
            notifications.close()
        app.close()
        sink.send_signal(signal.SIGTERM)
        out, _ = sink.communicate(timeout=30)
        messages, recipients = out.split()
        print(f"SMTP sink: {int(messages):,} messages, {int(recipients):,} recipients")
        if args.mode == "redis":
            connection = redis.Redis.from_url(REDIS_URL)
            keys = list(connection.scan_iter(f"{namespace}*"))
            if keys:
                connection.delete(*keys)
            with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))


if __name__ == "__main__":
    main()
