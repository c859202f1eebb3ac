"""What sealing personal data costs (docs/privacy.md): the command path and a read model's
catch-up, in process on PostgreSQL, for the code of this tree or of another (`--code`), so
that before and after can be run alternately in one sitting on a shared machine:

    git archive COMMIT | tar -x -C /tmp/before            # the code before, exported
    .venv/bin/python benchmarks/privacy_cost.py --code /tmp/before
    .venv/bin/python benchmarks/privacy_cost.py           # this tree

What is timed, on a database of its own (dropped afterwards):
- sign-ups: `accounts.sign_up` + `verify_account` (an Account and its e-mail Index: 4 sealed
  fields a sign-up), then a company, a site and a fault contact per account (12 more);
- registrations: new-ticket registrations spread over those sites (the command the service
  runs most; its events hold no personal field, its contract's snapshots do);
- catch-up: the parties read model (every personal field decoded) and the timer table, each
  built from zero over the whole log, as after `lifecycle projections rebuild`.
Argon2 is replaced by a constant in both (it is ~230 ms of CPU a sign-up and hid the rest).
Prints one line per figure (per second, and CPU ms per item of this process)."""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

from smoke import parse_args  # benchmarks/smoke.py: scripts run from this folder

ADMIN_URL = os.environ.get("LIFECYCLE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(label: str, count: int, work) -> None:  # noqa: ANN001
    wall, used = time.perf_counter(), cpu()
    work()
    wall, used = time.perf_counter() - wall, cpu() - used
    print(f"{label}: {count} in {wall:.2f} s = {count / wall:,.0f}/s, {used * 1000 / count:.3f} ms CPU each "
          f"({used:.2f} s CPU)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--code", type=Path, default=Path(__file__).resolve().parent.parent,
                        help="The tree whose lifecycle package is measured (default: this one).")
    parser.add_argument("--accounts", type=int, default=300)
    parser.add_argument("--registrations", type=int, default=3000)
    args = parse_args(parser, accounts=5, registrations=20)
    sys.path.insert(0, str(args.code.resolve()))

    import psycopg
    from psycopg import sql

    import lifecycle
    from lifecycle.aggregates.shipments import Ticket, Unit
    from lifecycle.bootstrap import build_application, build_notifications, build_read_models
    try:
        from lifecycle.domain.dates import TOKYO
        from tests.fakes import FixedClock
    except ImportError:  # a tree from before the structure change
        from lifecycle.clock import TOKYO, FixedClock  # type: ignore[no-redef]
    from lifecycle.settings import Settings

    print(f"code: {Path(lifecycle.__file__).resolve().parent.parent}", flush=True)
    name = f"lifecycle_privacy_bench_{os.getpid()}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    from datetime import datetime

    clock = FixedClock(datetime(2026, 11, 20, 10, tzinfo=TOKYO))
    try:
        with tempfile.TemporaryDirectory() as var:
            settings = Settings(database_url=f"{ADMIN_URL.rsplit('/', 1)[0]}/{name}", var_dir=Path(var),
                                secret_key="bench", smtp_host="")
            app = build_application(settings, clock=clock)
            # Argon2 takes ~230 ms of CPU per sign-up here and would hide everything else.
            app.hash_password = lambda password: "not-hashed"
            sites: list = []

            def sign_ups() -> None:
                for i in range(args.accounts):
                    email = f"bench{i}-{uuid.uuid4().hex[:6]}@example.jp"
                    account = app.accounts.sign_up(email, "secret123", f"山田 太郎{i}", "株式会社サンプル",
                                                   "03-1234-5678", True)
                    app.accounts.verify_account(app.accounts.confirmation_token(account["account_id"]))
                    company = app.companies.register_company(account["account_id"], f"会社{i}")
                    site = app.companies.add_site(company["company_id"], {
                        "name": "本社", "postal_code": "1000001", "prefecture": "東京都", "city": "千代田区",
                        "street": f"千代田{i}-1", "building": "ビル", "person": f"佐藤 花子{i}",
                        "phone": "03-1234-5678", "email": f"site{i}@example.jp"})
                    app.companies.add_fault_contact(site["site_id"], {
                        "company": "株式会社サンプル", "postal_code": "1000001", "prefecture": "東京都",
                        "city": "千代田区", "street": "千代田1-1", "building": "", "person": f"鈴木{i}",
                        "phone": "03-2345-6789", "mail1": f"noc{i}@example.jp", "mail2": f"ichiro{i}@example.jp"})
                    sites.append(site["site_id"])

            timed("sign-ups (account, company, site, fault contact)", args.accounts, sign_ups)

            serials = [f"PB{n:08d}" for n in range(args.registrations)]
            tickets = [f"{n + 10_000_000:08d}" for n in range(args.registrations)]
            units = [Unit(s, "1234501", "AT-x510", date(2026, 11, 2), None, None) for s in serials]
            sold = [Ticket(t, "AB12CD", "1234599", "デリバリースタンダード", 1, "new", date(2026, 11, 10)) for t in tickets]
            for start in range(0, len(units), 500):
                app.save(*units[start:start + 500], *sold[start:start + 500])

            def registrations() -> None:
                for n, (serial, ticket) in enumerate(zip(serials, tickets)):
                    app.registrations.register_ticket(sites[n % len(sites)], ticket, "AB12CD", serial)

            # Contracts loaded cold (as another process would): snapshots and events decoded.
            def cold_loads() -> None:
                from lifecycle.aggregates.contract import Contract

                app._contracts.cache.clear() if app._contracts.cache is not None else None  # noqa: SLF001
                for site_id in sites:
                    app.companies.contract_of_site(site_id)
                assert Contract

            timed("registrations (new tickets)", args.registrations, registrations)
            timed("contracts loaded cold", len(sites), cold_loads)
            head = app.recorder.max_notification_id()

            # Decoding alone (CPU-bound, steadier than a catch-up's wall time on a busy host): every
            # event the parties read model reads, each holding personal fields, decoded 3 times.
            from lifecycle.projections.parties import Parties

            stored = app.recorder.select_notifications(start=0, limit=10**9, topics=Parties.topics)

            def decode() -> None:
                for _ in range(3):
                    for notification in stored:
                        app.mapper.to_domain_event(notification)

            timed("decoding the parties' events (each holds personal fields), 3 times", 3 * len(stored), decode)

            def parties() -> None:
                build_read_models(settings, app).runners["parties"].catch_up()

            def timers() -> None:
                build_notifications(settings, app, clock=clock).projection.catch_up()

            timed(f"catch-up from zero: parties (every personal field), log of {head} events", head, parties)
            timed(f"catch-up from zero: timers, log of {head} events", head, timers)

            def all_read_models() -> None:
                read_models = build_read_models(settings, app)
                for name in list(read_models.runners):
                    read_models.rebuild(name)

            timed(f"rebuild of every read model (parties, coverage, service_in), log of {head} events", head,
                  all_read_models)
            app.close()
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


if __name__ == "__main__":
    main()
