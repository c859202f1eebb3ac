"""Projection benchmarks on PostgreSQL: catch-up from zero over a log of about a million
events, and the expiry dashboard's latency over 100,000 registrations.

    .venv/bin/python benchmarks/projections.py [--registrations 100000] [--batch-size 5000]

Makes a database of its own on the server of LIFECYCLE_BENCH_POSTGRES_URL (default: the
local test server), fills the log through the domain model (real events, saved in large
transactions), times each projection catching up from zero, then times the dashboard
(in-process and over HTTP), and drops the database. Prints its figures."""

from __future__ import annotations

import argparse
import os
import statistics
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
from lifecycle.projections.engine.runner import ProjectionRunner
from lifecycle.projections.engine.views import build_view
from lifecycle.projections.read_models import PROJECTIONS, ReadModels
from lifecycle.queries.dashboards import Dashboards
from lifecycle.settings import Settings
from tests.fakes import FixedClock

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
    args = parse_args(parser, registrations=200, per_company=20, queries=10, batch_size=100)

    name = args.reuse or f"lifecycle_bench_{os.getpid()}"
    if not args.reuse:
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = f"{ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    var_dir = Path(tempfile.mkdtemp(prefix=name))
    settings = Settings(database_url=url, secret_key="bench", var_dir=var_dir, run_projections=False)
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

        print(f"catch-up from zero, batch size {args.batch_size}:")
        total_seconds = 0.0
        for cls in PROJECTIONS.values():
            view = build_view(app.factory.datastore, cls.name, cls.tables, topics=cls.topics, revision=cls.revision)
            view.drop_tables()  # from zero, also when reusing a log
            view.create_tables()
            runner = ProjectionRunner(app, cls(view), batch_size=args.batch_size)
            started = time.perf_counter()
            runner.catch_up()
            seconds = time.perf_counter() - started
            total_seconds += seconds
            assert runner.position() == head
            print(f"  {cls.name:<11} {seconds:6.1f}s  {head / seconds:9,.0f} log events/s  "
                  f"({runner.events_processed:,} of its topics applied, {runner.events_processed / seconds:,.0f}/s)")
        print(f"  one after another: every read model caught up in {total_seconds:.1f}s, "
              f"{head / total_seconds:,.0f} log events/s")

        # As the service does it: the three runners at once, each in its own thread.
        runners = []
        for cls in PROJECTIONS.values():
            view = build_view(app.factory.datastore, cls.name, cls.tables, topics=cls.topics, revision=cls.revision)
            view.drop_tables()
            view.create_tables()
            runners.append(ProjectionRunner(app, cls(view), batch_size=args.batch_size))
        threads = [threading.Thread(target=runner.catch_up) for runner in runners]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - started
        assert all(runner.position() == head for runner in runners)
        print(f"  side by side (threads): every read model caught up in {seconds:.1f}s, "
              f"{head / seconds:,.0f} log events/s")

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
