"""The expiry and service-in dashboards at a million registrations: p95 over HTTP of every
variant (each list, each sort, each filter, deep offsets, large pages).

    .venv/bin/python benchmarks/dashboards.py                         # 1,000,000 registrations
    .venv/bin/python benchmarks/dashboards.py --registrations 100000  # another size, its own database

The store is built once and kept: the database `lifecycle_dash_<registrations>` on the server
of LIFECYCLE_BENCH_POSTGRES_URL (default: the local test server) holds the log (real
registrations made through the contract aggregate, saved 500 at a time per company) and the
read models. A rerun finds the log there and only catches the read models up (from zero when
their definition changed, e.g. another commit's indexes); `--database NAME` names another copy
(`CREATE DATABASE b TEMPLATE a` copies a store in seconds, so two commits can be measured on
the same log side by side); `--drop` removes the database afterwards (`--smoke` always does).
The dashboard routes are timed through the in-process ASGI client, like projections.py."""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import psycopg
from psycopg import sql

from lifecycle.aggregates.accounts import Account
from lifecycle.aggregates.contract import Contract, Site
from lifecycle.bootstrap import build_access, build_application
from lifecycle.domain.dates import TOKYO
from lifecycle.domain.periods import RenewalPolicy, SupportPeriod
from lifecycle.projections.coverage import Coverage
from lifecycle.projections.engine.views import ReadModelView
from lifecycle.projections.parties import Parties
from lifecycle.projections.read_models import ReadAt, ReadModels
from lifecycle.projections.service_in import ServiceIn
from lifecycle.queries.dashboards import Dashboards
from lifecycle.settings import Settings
sys.path.append(str(Path(__file__).resolve().parent.parent))  # tests.fakes, run as documented (after PYTHONPATH)
from tests.fakes import FixedClock  # noqa: E402

from smoke import parse_args  # benchmarks/smoke.py: scripts run from this folder

ADMIN_URL = os.environ.get("LIFECYCLE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
NOW = datetime(2026, 11, 20, 10, tzinfo=TOKYO)
# The stores hold made-up data and are kept for reruns (and copied): one fixed key wraps their
# personal-data keys, where a service makes a random one in its var folder.
PRIVACY_KEY = "120b91c6e827f15506d5d851e6e33dc4c74b893527b1867929fa6d8045ebb83b"
TODAY = NOW.date()
SITE = {
    "name": "本社", "postal_code": "1000001", "prefecture": "東京都", "city": "千代田区", "street": "千代田1-1",
    "building": "", "person": "佐藤", "phone": "03-1234-5678", "email": "site@example.co.jp",
}
MODELS = ("AT-x510", "AT-x230", "AT-GS970")
SERVICES = ("デリバリースタンダード", "オンサイトスタンダード")


def fill_log(app: Any, registrations: int, per_company: int) -> None:
    """Companies of `per_company` units at two sites; units sold over three years (so coverage
    ends spread over the lists); nine in ten have had their service-in mail (the rest wait,
    most of them overdue); one in five has been renewed (and mailed)."""
    policy = RenewalPolicy()
    serial_no = 0
    companies = max(1, registrations // per_company)
    for company_no in range(companies):
        account = Account(f"u{company_no}@example.co.jp", "x", "山田", "会社", "03-1234-5678", NOW + timedelta(days=1))
        account.activate(NOW)
        contract = Contract(contract_number=f"SU{company_no:08d}", account_id=account.id, name=f"株式会社{company_no:06d}")
        sites = [uuid.uuid4(), uuid.uuid4()]
        for site_id in sites:
            contract.add_site(Site(site_id=site_id, **SITE))
        for _ in range(per_company):
            serial_no += 1
            serial = f"BN{serial_no:010d}"
            sold_on = date(2023, 6, 1) + timedelta(days=(serial_no * 7919) % 1270)
            period = SupportPeriod.from_sale(sold_on, 13)
            registered_on = min(period.start, TODAY)
            contract.register_ticket(
                sites[serial_no % 2], serial, f"{10_000_000 + serial_no}", "1234501", MODELS[serial_no % 3],
                SERVICES[serial_no % 2], 1, sold_on, period, registered_on,
            )
            if serial_no % 10:
                contract.record_service_in_notified(uuid.uuid4(), serial, ["noc@example.co.jp"], "<m>", NOW)
            if serial_no % 5 == 0 and period.end < TODAY + timedelta(days=30):
                renewed = period.continued(12)
                contract.renew(serial, f"{50_000_000 + serial_no}", SERVICES[0], 1, renewed,
                               period.end - timedelta(days=20), policy)
                contract.record_service_in_notified(uuid.uuid4(), serial, ["noc@example.co.jp"], "<m>", NOW)
        app.save(account, contract)
        if company_no % 200 == 199:
            print(f"  {serial_no:,} registrations written", flush=True)


def variants(company: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every list, sort and filter of both dashboards (JSON; the file exports hold every
    matching row by design and are not paged)."""
    expiry = [{"list": name} for name in
              ("ending_30", "ending_60", "ending_90", "ending_180", "expired_renewable", "lapsed")]
    expiry += [{"list": "ending_90", "sort": sort} for sort in ("-end", "serial", "contract_number", "company", "model")]
    expiry += [
        {"list": "lapsed", "sort": "company", "offset": 5000},
        {"list": "lapsed", "sort": "-end", "offset": 10000, "limit": 500},
        {"list": "expired_renewable", "sort": "contract_number", "limit": 500},
        {"list": "ending_180", "contract_number": company["contract_number"]},
        {"list": "ending_180", "site_id": company["site_id"]},
        {"list": "ending_180", "service": SERVICES[1]},
        {"list": "lapsed", "model": MODELS[2], "sort": "company"},
        {"list": "ending_90", "company": company["name"][-4:]},
        {"list": "ending_90", "company": "株式会社"},
    ]
    service_in = [{"overdue": overdue, "sort": sort} for overdue in ("false", "true")
                  for sort in ("deadline", "-deadline", "registered_on", "contract_number")]
    service_in += [
        {"offset": 5000, "limit": 500},
        {"contract_number": company["contract_number"]},
        {"site_id": company["site_id"], "overdue": "true"},
    ]
    return [("/v1/dashboards/expiry", v) for v in expiry] + [("/v1/dashboards/service-in", v) for v in service_in]


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--registrations", type=int, default=1_000_000)
    parser.add_argument("--per-company", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=20, help="timed requests per variant")
    parser.add_argument("--database", help="default: lifecycle_dash_<registrations>")
    parser.add_argument("--drop", action="store_true", help="drop the database afterwards")
    parser.add_argument("--only", choices=("expiry", "service-in"), help="one dashboard's variants (and read models)")
    parser.add_argument("--no-catch-up", action="store_true",
                        help="read the read models' tables as they are (eventual reads), whoever's definition "
                             "made them: to time another commit's queries over this one's tables")
    args = parse_args(parser, registrations=400, per_company=50, rounds=2)
    name = args.database or (f"lifecycle_dash_smoke_{os.getpid()}" if args.smoke
                             else f"lifecycle_dash_{args.registrations}")
    drop = args.drop or args.smoke

    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    url = f"{ADMIN_URL.rsplit('/', 1)[0]}/{name}"
    settings = Settings(database_url=url, secret_key="bench", var_dir=Path(tempfile.mkdtemp(prefix=name)),
                        privacy_key=PRIVACY_KEY, run_projections=False,
                        database_statement_timeout_seconds=0)  # catching a million up on a busy host
    clock = FixedClock(NOW)
    app = build_application(settings, clock=clock)
    try:
        if not app.recorder.max_notification_id():
            started = time.perf_counter()
            fill_log(app, args.registrations, args.per_company)
            print(f"log: {app.recorder.max_notification_id():,} events in {time.perf_counter() - started:.0f}s "
                  f"({args.registrations:,} registrations) into database {name}", flush=True)
        access = build_access(settings, app)
        _, token = access.create_key(f"bench-{os.getpid()}", ["dashboards"])

        if args.no_catch_up:  # views are built checking their definition, which would drop another's tables
            ReadModelView.ensure_definition = lambda self: None  # type: ignore[method-assign]
        needs = {"expiry": ("parties", "coverage"), "service-in": ("parties", "service_in")}.get(
            args.only, ("parties", "coverage", "service_in"))
        read_models = ReadModels(app, projections=(Parties, Coverage, ServiceIn), batch_size=5000)
        started = time.perf_counter()
        for runner in () if args.no_catch_up else read_models.runners.values():
            if runner.name not in needs:
                continue
            runner.view.ensure_definition()
            runner.view.create_tables()
            before = runner.position()
            runner.catch_up()
            if runner.position() - before > 10_000:
                runner.view.analyze()
                print(f"  {runner.name} caught up from {before:,} to {runner.position():,}", flush=True)
        print(f"read models caught up in {time.perf_counter() - started:.1f}s", flush=True)
        if not args.no_catch_up:
            with psycopg.connect(url, autocommit=True) as conn:  # index-only scans need the visibility map
                conn.execute("VACUUM (ANALYZE)")
        dashboards = Dashboards(read_models, clock, app.terms.renewal)
        parties = read_models.view("parties")
        company = parties.query("SELECT contract_id, contract_number, name FROM {contracts} ORDER BY contract_number "
                                "LIMIT 1")[0]
        company["site_id"] = parties.query("SELECT site_id FROM {sites} WHERE contract_id = :c ORDER BY site_id LIMIT 1",
                                           {"c": company["contract_id"]})[0]["site_id"]
        # Without a catch-up the read models may be behind the log (the key's events at least):
        # they are read as they are.
        read_at = ReadAt(eventual=args.no_catch_up)
        if args.only != "service-in":
            print(f"expiry counts {dashboards.expiry(read_at=read_at)['counts']}", flush=True)
        if args.only != "expiry":
            print(f"service-in counts {dashboards.service_in(read_at=read_at)['counts']}", flush=True)

        from fastapi import FastAPI
        from fastapi.testclient import TestClient

        from api.problems import install_problem_handlers
        from api.routes import dashboards as dashboard_routes

        # The dashboards' routes alone, as projections.py does (the full app would also start
        # the mail scheduler over the same store).
        api = FastAPI()
        install_problem_handlers(api)
        api.include_router(dashboard_routes.router)
        api.state.runtime = SimpleNamespace(dashboards=dashboards, read_models=read_models, access=access)
        cases = [(path, {**v, **({"consistency": "eventual"} if args.no_catch_up else {})})
                 for path, v in variants(company) if args.only is None or path.endswith(args.only)]
        timings: dict[int, list[float]] = {i: [] for i in range(len(cases))}
        with TestClient(api, headers={"Authorization": f"Bearer {token}"}) as client:
            for path, params in cases:  # warm-up, untimed
                assert client.get(path, params=params).status_code == 200
            for _ in range(args.rounds):  # round-robin, so load changes hit every variant alike
                for i, (path, params) in enumerate(cases):
                    started = time.perf_counter()
                    response = client.get(path, params=params)
                    timings[i].append((time.perf_counter() - started) * 1000)
                    assert response.status_code == 200, response.text
        every = [t for ts in timings.values() for t in ts]
        print(f"over HTTP, {len(cases)} variants x {args.rounds}: p50 {statistics.median(every):.1f} ms, "
              f"p95 {percentile(every, 0.95):.1f} ms, worst variant's p95 "
              f"{max(percentile(ts, 0.95) for ts in timings.values()):.1f} ms")
        for i, (path, params) in enumerate(cases):
            shown = {k: (v if len(str(v)) < 20 else "…") for k, v in params.items() if k != "consistency"}
            print(f"  {path.rsplit('/', 1)[1]:<10} {str(shown):<62} p50 {statistics.median(timings[i]):6.1f} ms  "
                  f"p95 {percentile(timings[i], 0.95):6.1f} ms")
    finally:
        app.close()
        if drop:
            with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


if __name__ == "__main__":
    main()
