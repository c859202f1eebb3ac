"""One company's contract growing: N tickets registered one after another at one site, in
process (no HTTP) on PostgreSQL, to see whether a registration costs more as the contract
grows (issue 12, item 7).

    .venv/bin/python benchmarks/contract_growth.py [--count 5000] [--block 1000]

Makes a database of its own on the server of --admin-url (and drops it afterwards), builds
the application as the service does (`build_application`, a fixed clock, a fake postal
directory), creates one verified account, one company with one site and one fault contact
through the application's commands, saves the shipped units and sold tickets in bulk (the
aggregates POST /v1/shipments and POST /v1/tickets save), then registers the tickets one by
one through `registrations.register_ticket` (what POST /v1/sites/{id}/registrations calls).

Printed per block of --block registrations: registrations/s (wall clock), CPU ms per
registration of this process (time.process_time) and of its PostgreSQL backends, and the
bytes written to the snapshots table and to the events table per registration (the sum of
length(state) of the rows the block added), with the tables' pg_total_relation_size. At the
end: the snapshots taken, the largest, and a cold load of the contract (cache emptied).

Then --interleaved registrations alternate between the grown contract and a new company's
empty one, and the CPU each costs is printed side by side: on a shared host whose speed
drifts from minute to minute, this compares the two sizes under the same conditions.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import date, datetime
from pathlib import Path

import psycopg
from psycopg import sql

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.registrations_http import code_version, machine  # noqa: E402
from lifecycle.aggregates.contract import Contract  # noqa: E402
from lifecycle.aggregates.shipments import Ticket, Unit  # noqa: E402
from lifecycle.bootstrap import build_application  # noqa: E402
from lifecycle.domain.dates import TOKYO  # noqa: E402
from lifecycle.settings import Settings  # noqa: E402
from tests.fakes import (
    FakePostalCodes,  # noqa: E402
    FixedClock,  # noqa: E402
)

from smoke import parse_args  # benchmarks/smoke.py: scripts run from this folder

NOW = datetime(2026, 11, 20, 10, tzinfo=TOKYO)
SITE = {
    "name": "東京本社", "postal_code": "1000001", "street": "千代田1-1", "building": "サンプルビル3F",
    "person": "佐藤 花子", "phone": "03-1234-5678", "email": "hanako@example.co.jp",
}
CONTACT = {
    "company": "株式会社サンプル", "postal_code": "1000001", "street": "千代田1-1", "person": "鈴木 一郎",
    "phone": "03-2345-6789", "mail1": "noc@example.co.jp", "mail2": "ichiro@example.co.jp",
}


def proc_cpu(pid: int) -> float:
    """CPU seconds of a process on this machine (0 when it is not visible)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Store:
    """What the benchmark reads from the database itself: bytes written, backend CPU."""

    def __init__(self, url: str, events_table: str, snapshots_table: str) -> None:
        self.conn = psycopg.connect(url, autocommit=True)
        self.events = events_table
        self.snapshots = snapshots_table

    def written(self) -> dict[str, int]:
        figures = {}
        for key, table in (("events", self.events), ("snapshots", self.snapshots)):
            ident = sql.Identifier(*table.split("."))
            figures[key], figures[f"{key}_rows"], figures[f"{key}_relation"] = self.conn.execute(
                sql.SQL("SELECT coalesce(sum(length(state)), 0), count(*), pg_total_relation_size(%s) FROM {}")
                .format(ident), (table,)
            ).fetchone()
        return figures

    def backend_cpu(self) -> float:
        """CPU seconds of the other connections to this database (the application's pool)."""
        pids = self.conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
        return sum(proc_cpu(pid) for (pid,) in pids)

    def snapshot_sizes(self) -> list[tuple[int, int]]:
        return self.conn.execute(
            sql.SQL("SELECT originator_version, length(state) FROM {} ORDER BY originator_version")
            .format(sql.Identifier(*self.snapshots.split(".")))
        ).fetchall()


def company_with_site(app, account_id, name: str):  # noqa: ANN001, ANN201 - the company's and site's ids
    company = app.companies.register_company(account_id, name)
    site = app.companies.add_site(company["company_id"], SITE)
    app.companies.add_fault_contact(site["site_id"], CONTACT)
    return company["company_id"], site["site_id"]


def setup(app, count: int):  # noqa: ANN001, ANN201 - the account's id
    account = app.accounts.sign_up("bench@example.co.jp", "secret123", "山田 太郎", "株式会社サンプル",
                                   "03-1234-5678", True)
    app.accounts.verify_account(app.accounts.confirmation_token(account["account_id"]))
    batch: list = []
    for n in range(count):
        batch.append(Unit(f"BN{n:014d}", "1234501", "AT-x510-28GTX", date(2026, 11, 2), None, None))
        batch.append(Ticket(f"{10_000_000 + n:08d}", "AB12CD", "1234599", "デリバリースタンダード", 1, "new",
                            date(2026, 11, 10)))
        if len(batch) >= 2000:
            app.save(*batch)
            batch.clear()
    if batch:
        app.save(*batch)
    return account["account_id"]


def register(app, site_id, n: int) -> None:  # noqa: ANN001
    app.registrations.register_ticket(site_id, f"{10_000_000 + n:08d}", "AB12CD", f"BN{n:014d}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/test",
                        help="a PostgreSQL database to connect to for CREATE/DROP DATABASE")
    parser.add_argument("--count", type=int, default=5000, help="registrations into the one contract")
    parser.add_argument("--block", type=int, default=1000, help="registrations per printed line")
    parser.add_argument("--interleaved", type=int, default=500,
                        help="then this many more into the grown contract and into an empty one, alternately")
    args = parse_args(parser, count=20, block=10, interleaved=6)

    name = f"lifecycle_growth_{os.getpid()}"
    with psycopg.connect(args.admin_url, autocommit=True) as conn:
        server_version = conn.execute("SHOW server_version").fetchone()[0]
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = f"{args.admin_url.rsplit('/', 1)[0]}/{name}"
    var_dir = Path(tempfile.mkdtemp(prefix=name))
    settings = Settings(database_url=url, secret_key="bench", var_dir=var_dir, _env_file=None)
    app = build_application(settings, clock=FixedClock(NOW), postal_codes=FakePostalCodes())
    store = None
    try:
        print(f"machine: {machine()}; PostgreSQL {server_version}; code {code_version()}; "
              f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
        started = time.perf_counter()
        units = args.count + 2 * args.interleaved
        account_id = setup(app, units)
        company_id, site_id = company_with_site(app, account_id, "株式会社サンプル")
        print(f"setup: one company, site and fault contact; {units:,} units and tickets in bulk: "
              f"{time.perf_counter() - started:.1f} s")
        assert app.snapshots is not None
        store = Store(url, app.recorder.events_table_name, app.snapshots.recorder.events_table_name)

        print(f"{'registrations':>15} {'per s':>7} {'CPU ms/reg':>10} {'PG ms/reg':>9} "
              f"{'snapshot B/reg':>14} {'events B/reg':>12} {'snapshots':>9} {'snapshots MB':>12} {'events MB':>9}")
        done = 0
        while done < args.count:
            size = min(args.block, args.count - done)
            before, wall, cpu, pg = store.written(), time.perf_counter(), time.process_time(), store.backend_cpu()
            for n in range(done, done + size):
                register(app, site_id, n)
            wall, cpu, pg = time.perf_counter() - wall, time.process_time() - cpu, store.backend_cpu() - pg
            after = store.written()
            print(f"{done + 1:>7,}–{done + size:<7,} {size / wall:7.1f} {1000 * cpu / size:10.2f} "
                  f"{1000 * pg / size:9.2f} {(after['snapshots'] - before['snapshots']) / size:14,.0f} "
                  f"{(after['events'] - before['events']) / size:12,.0f} "
                  f"{after['snapshots_rows'] - before['snapshots_rows']:9d} "
                  f"{after['snapshots_relation'] / 1e6:12.1f} {after['events_relation'] / 1e6:9.1f}")
            done += size

        sizes = store.snapshot_sizes()
        written = store.written()
        contract = app.companies.company(company_id)
        assert len(contract.registrations) == args.count, len(contract.registrations)
        print(f"contract: version {contract.version}, {len(contract.registrations):,} registrations; "
              f"snapshots at versions {[v for v, _ in sizes][:6]}{'…' if len(sizes) > 6 else ''}"
              f"{[v for v, _ in sizes][-3:] if len(sizes) > 6 else ''}; "
              f"{len(sizes)} snapshots, {written['snapshots'] / 1e6:.1f} MB of state in all, "
              f"largest {max((s for _, s in sizes), default=0) / 1e3:,.0f} kB")

        # A process that has not seen the contract yet: its latest snapshot and the events after it.
        cold = build_application(settings, clock=FixedClock(NOW), postal_codes=FakePostalCodes())
        try:
            wall, cpu = time.perf_counter(), time.process_time()
            loaded = cold.load(Contract.create_id(contract.contract_number), Contract)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            assert loaded is not None and loaded.version == contract.version
            print(f"cold load of the contract in a new process: {1000 * wall:.0f} ms ({1000 * cpu:.0f} ms CPU)")
        finally:
            cold.close()

        if args.interleaved:
            _, empty_site_id = company_with_site(app, account_id, "株式会社カラ")
            cpu_of = {"grown": 0.0, "empty": 0.0}
            for n in range(args.count, args.count + 2 * args.interleaved):
                which, site = ("grown", site_id) if n % 2 else ("empty", empty_site_id)
                cpu = time.process_time()
                register(app, site, n)
                cpu_of[which] += time.process_time() - cpu
            grown, empty = (1000 * cpu_of[k] / args.interleaved for k in ("grown", "empty"))
            print(f"interleaved, {args.interleaved} each: CPU ms per registration into the contract of "
                  f"{args.count:,} registrations {grown:.2f}, into an empty one {empty:.2f} ({grown / empty:.2f}×)")
    finally:
        if store is not None:
            store.conn.close()
        app.close()
        with psycopg.connect(args.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


if __name__ == "__main__":
    main()
