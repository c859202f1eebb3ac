"""Projection benchmarks on PostgreSQL: catch-up from zero over a log of about a million
events (each read model alone, all side by side, all reading the log together, the timer
projection), and the expiry dashboard's latency over 100,000 registrations.

    .venv/bin/python benchmarks/projections.py [--registrations 100000] [--batch-size 5000]
    .venv/bin/python benchmarks/projections.py --reuse DATABASE --only catch-up   # a kept log

With PYTHONPATH naming another tree of the project, it measures that tree's code (what it
lacks, such as reading together, is skipped).

Makes a database of its own on the server of LIFECYCLE_BENCH_POSTGRES_URL (default: the
local test server), fills the log through the domain model (real events, saved in large
transactions), times each projection catching up from zero, then times the dashboard
(in-process and over HTTP), and drops the database. Prints its figures."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from lifecycle.aggregates.accounts import Account
from lifecycle.aggregates.contract import Contract, FaultContact, Site
from lifecycle.aggregates.shipments import Ticket, Unit
from lifecycle.bootstrap import build_access, build_application
from lifecycle.domain.dates import TOKYO
from lifecycle.domain.periods import RenewalPolicy, SupportPeriod
from lifecycle.bootstrap import build_notifications
from lifecycle.projections.engine.runner import ProjectionRunner
from lifecycle.projections.engine.views import build_view
from lifecycle.projections.read_models import PROJECTIONS, ReadModels
from lifecycle.queries.dashboards import Dashboards
from lifecycle.settings import Settings
sys.path.append(str(Path(__file__).resolve().parent.parent))  # tests.fakes, run as documented (after PYTHONPATH)
from tests.fakes import FixedClock  # noqa: E402

from smoke import parse_args  # benchmarks/smoke.py: scripts run from this folder

ADMIN_URL = os.environ.get("LIFECYCLE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
TODAY = date(2026, 11, 20)
SITE = {
    "name": "本社", "postal_code": "1000001", "prefecture": "東京都", "city": "千代田区", "street": "千代田1-1",
    "building": "", "person": "佐藤", "phone": "03-1234-5678", "email": "site@example.co.jp",
}
CONTACT = {
    "company": "株式会社サンプル", "postal_code": "1000001", "prefecture": "東京都", "city": "千代田区",
    "street": "千代田1-1", "building": "", "person": "鈴木", "phone": "03-2345-6789",
    "mail1": "noc@example.co.jp", "mail2": "",
}


def fill_log(app: Any, registrations: int, per_company: int) -> int:
    """Companies with a site and a contact; per unit: shipped, ticket sold and used, covered,
    registered, service-in mail recorded; three in five renewed (ticket sold and used,
    coverage extended, renewed, mail recorded); as many shipped units never registered."""
    policy = RenewalPolicy()
    now = datetime(2026, 11, 20, 10, tzinfo=TOKYO)
    serial_no = 0
    for company_no in range(registrations // per_company):
        account = Account(f"u{company_no}@example.co.jp", "x", "山田", "会社", "03-1234-5678", now + timedelta(days=1))
        account.activate(now)
        contract = Contract(contract_number=f"SU{company_no:08d}", account_id=account.id, name=f"株式会社{company_no:05d}")
        site_id, contact_id = uuid.uuid4(), uuid.uuid4()
        contract.add_site(Site(site_id=site_id, **SITE))
        contract.add_fault_contact(FaultContact(contact_id, site_id, **CONTACT))
        changed: list[Any] = [account, contract]
        for _ in range(per_company):
            serial_no += 1
            serial = f"BN{serial_no:010d}"
            sold_on = date(2024, 1, 1) + timedelta(days=(serial_no * 7919) % 1050)
            period = SupportPeriod.from_sale(sold_on, 13)
            unit = Unit(serial, "1234501", "AT-x510", sold_on, None, None)
            ticket = Ticket(f"{10_000_000 + serial_no}", "C", "1234599", "デリバリースタンダード", 1, "new", sold_on)
            ticket.use(serial, contract.id)
            registered_on = min(period.start, TODAY)
            unit.cover(contract.id, serial, period.end, registered_on, policy)
            contract.register_ticket(
                site_id, serial, ticket.ticket_id, unit.code_no, unit.model, ticket.service, 1, sold_on, period,
                registered_on,
            )
            contract.record_service_in_notified(uuid.uuid4(), serial, ["noc@example.co.jp"], "<m>", now)
            changed += [unit, ticket]
            if serial_no % 5 < 3:
                renewal = Ticket(f"{50_000_000 + serial_no}", "C", "1234599", "デリバリースタンダード", 1, "renewal", sold_on)
                renewal.use(serial, contract.id)
                renewed = period.continued(12)
                contract.renew(serial, renewal.ticket_id, renewal.service, 1, renewed, period.end - timedelta(days=20), policy)
                unit.extend_coverage(renewed.end)
                contract.record_service_in_notified(uuid.uuid4(), serial, ["noc@example.co.jp"], "<m>", now)
                changed.append(renewal)
            spare = Unit(f"SP{serial_no:010d}", "1234501", "AT-x510", sold_on, None, None)
            changed.append(spare)
        app.save(*changed)
    return app.recorder.max_notification_id() or 0


def timed(what: Any) -> tuple[float, float]:
    """Wall seconds and this process's CPU seconds of `what()`."""
    wall, cpu = time.perf_counter(), time.process_time()
    what()
    return time.perf_counter() - wall, time.process_time() - cpu


def rate(label: str, events: int, wall: float, cpu: float) -> str:
    return (f"  {label:<56} {wall:6.1f}s {events / wall:9,.0f} log events/s, "
            f"{cpu * 1e6 / events:5.1f} µs CPU per log event (load {os.getloadavg()[0]:.1f})")


def fresh_runners(app: Any, names: list[str], batch_size: int) -> list[ProjectionRunner]:
    runners = []
    for name in names:
        cls = PROJECTIONS[name]
        view = build_view(app.factory.datastore, cls.name, cls.tables, topics=cls.topics, revision=cls.revision)
        view.drop_tables()  # from zero, also when reusing a log
        view.create_tables()
        runners.append(ProjectionRunner(app, cls(view), batch_size=batch_size))
    return runners


def catch_up_benchmarks(app: Any, settings: Settings, head: int, batch_size: int, alone: bool) -> None:
    read_model_benchmarks(app, head, batch_size, alone)
    timer_benchmark(app, settings)


def read_model_benchmarks(app: Any, head: int, batch_size: int, alone: bool) -> None:
    read_models = [name for name in PROJECTIONS if name != "audit_tree"]
    print(f"catch-up from zero over {head:,} log events, batch size {batch_size}:")
    for name in PROJECTIONS if alone else ():
        [runner] = fresh_runners(app, [name], batch_size)
        wall, cpu = timed(runner.catch_up)
        assert runner.position() == head
        print(rate(f"{name} alone ({runner.events_processed:,} of its events)", head, wall, cpu))
    for label, names in (("read models", read_models), ("read models and audit tree", list(PROJECTIONS))):
        runners = fresh_runners(app, names, batch_size)

        def side_by_side() -> None:  # each runner in its own thread, as a service's runners tail the log
            threads = [threading.Thread(target=runner.catch_up) for runner in runners]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()

        wall, cpu = timed(side_by_side)
        assert all(runner.position() == head for runner in runners), "a runner failed (see above)"
        print(rate(f"{label}: side by side, a thread each", head, wall, cpu))
        fresh_runners(app, names, batch_size)  # dropped: from zero
        models = ReadModels(app, projections=[PROJECTIONS[name] for name in names], batch_size=batch_size)
        # As at start and in rebuilds: the read models of domain events read the log together, the
        # audit tree in a thread beside them (older trees: one read model after another).
        wall, cpu = timed(models.catch_up)
        assert all(runner.position() == head for runner in models.runners.values())
        print(rate(f"{label}: ReadModels.catch_up", head, wall, cpu))


def timer_benchmark(app: Any, settings: Settings) -> None:
    notifications = build_notifications(settings, app)
    notifications.projection.store.clear()
    applied = 0

    def timers() -> None:
        nonlocal applied
        applied = notifications.projection.catch_up()

    wall, cpu = timed(timers)
    print(f"  timer projection: {applied:,} of its events -> {sum(notifications.store.counts().values()):,} timers "
          f"in {wall:.1f}s = {applied / wall:,.0f} events/s, {cpu * 1e6 / applied:.1f} µs CPU per event "
          f"(load {os.getloadavg()[0]:.1f})")


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registrations", type=int, default=100_000)
    parser.add_argument("--per-company", type=int, default=50)
    parser.add_argument("--batch-size", type=int, default=5000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--keep", action="store_true", help="Keep the database afterwards.")
    parser.add_argument("--reuse", metavar="DATABASE", help="A database kept by --keep: its log is reused.")
    parser.add_argument("--only", choices=("catch-up", "timers", "dashboard"), help="One part of the benchmark.")
    parser.add_argument("--alone", action=argparse.BooleanOptionalAction, default=True,
                        help="Also each projection alone (the default).")
    args = parse_args(parser, registrations=200, per_company=20, queries=10, batch_size=100)

    name = args.reuse or f"lifecycle_bench_{os.getpid()}"
    if not args.reuse:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = f"{ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    # The key files of the store's personal data: kept beside the database for --reuse.
    var_dir = Path(tempfile.gettempdir()) / name
    var_dir.mkdir(exist_ok=True)
    settings = Settings(database_url=url, secret_key="bench", var_dir=var_dir, run_projections=False,
                        database_pool_size=20)  # a reader and a committer per runner, side by side
    clock = FixedClock(datetime(2026, 11, 20, 10, tzinfo=TOKYO))
    app = build_application(settings, clock=clock)
    try:
        started = time.perf_counter()
        head = app.recorder.max_notification_id() or 0
        if not head:
            head = fill_log(app, args.registrations, args.per_company)
            print(f"log: {head:,} events written in {time.perf_counter() - started:.1f}s "
                  f"({args.registrations:,} registrations)")
        else:
            print(f"log: {head:,} events (reused)")

        # The dashboards key of the HTTP part, made before the catch-up: its events would move the log
        # head past what the read models reach (no runner tails the log here), and reads wait for the head.
        access = build_access(settings, app)
        _, token = access.create_key(f"bench-{os.getpid()}", ["dashboards"])
        head = app.recorder.max_notification_id() or 0

        if args.only == "timers":
            timer_benchmark(app, settings)
            return
        if args.only != "dashboard":
            catch_up_benchmarks(app, settings, head, args.batch_size, args.alone)
        if args.only == "catch-up":
            return
        if args.only == "dashboard":  # the read models from zero, together (the dashboard reads coverage)
            ReadModels(app).catch_up()

        read_models = ReadModels(app)
        dashboards = Dashboards(read_models, clock, app.terms.renewal)
        counts = dashboards.expiry()["counts"]
        current = read_models.view("coverage").query("SELECT COUNT(*) AS n FROM {registrations} WHERE is_current = 1")
        print(f"expiry dashboard over {current[0]['n']:,} registrations; counts {counts}")
        variants = [
            {"list_name": "ending_90"},
            {"list_name": "ending_180", "sort": "company"},
            {"list_name": "expired_renewable", "sort": "-end", "offset": 100},
            {"list_name": "lapsed", "limit": 200},
            {"list_name": "ending_30", "sort": "contract_number"},
        ]
        for variant in variants * 4:  # warm-up, untimed
            dashboards.expiry(**variant)
        timings: list[float] = []
        by_variant: dict[int, list[float]] = {}
        for n in range(args.queries):
            started = time.perf_counter()
            dashboards.expiry(**variants[n % len(variants)])
            timings.append((time.perf_counter() - started) * 1000)
            by_variant.setdefault(n % len(variants), []).append(timings[-1])
        print(f"  in process: p50 {statistics.median(timings):.1f} ms, p95 {percentile(timings, 0.95):.1f} ms, "
              f"max {max(timings):.1f} ms ({args.queries} queries, 5 variants)")
        for index, variant in enumerate(variants):
            print(f"    {variant}: p50 {statistics.median(by_variant[index]):.1f} ms, "
                  f"p95 {percentile(by_variant[index], 0.95):.1f} ms")

        from types import SimpleNamespace

        from fastapi import FastAPI
        from fastapi.testclient import TestClient

        from api.problems import install_problem_handlers
        from api.routes import dashboards as dashboard_routes

        # The dashboard's route alone (the full app would also start the mail scheduler,
        # which catches up over the same million events meanwhile).
        api = FastAPI()
        install_problem_handlers(api)
        api.include_router(dashboard_routes.router)
        api.state.runtime = SimpleNamespace(dashboards=dashboards, read_models=read_models, access=access)
        http_timings: list[float] = []
        with TestClient(api, headers={"Authorization": f"Bearer {token}"}) as client:
            for variant in variants * 4:  # warm-up, untimed
                client.get("/v1/dashboards/expiry", params={"list": variant["list_name"]})
            for n in range(args.queries):
                variant = variants[n % len(variants)]
                params = {"list": variant["list_name"], "sort": variant.get("sort", "end"),
                          "offset": variant.get("offset", 0), "limit": variant.get("limit", 50)}
                started = time.perf_counter()
                response = client.get("/v1/dashboards/expiry", params=params)
                http_timings.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, response.text
        print(f"  over HTTP (in-process ASGI client): p50 {statistics.median(http_timings):.1f} ms, "
              f"p95 {percentile(http_timings, 0.95):.1f} ms")
    finally:
        app.close()
        if not (args.keep or args.reuse):
            with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


if __name__ == "__main__":
    main()
