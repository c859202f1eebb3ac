"""Rebuilding a read model replays the log into fresh tables and swaps them in: for long
random command sequences the rebuilt read models equal the ones built incrementally, batch
by small batch, while the commands ran."""

from __future__ import annotations

import tempfile
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lifecycle.bootstrap import build_application
from lifecycle.domain.dates import TOKYO
from lifecycle.domain.errors import DomainError
from lifecycle.projections.coverage import Coverage
from lifecycle.projections.read_models import ReadModels
from tests.conftest import settings_for
from tests.fakes import FixedClock
from tests.scenario import CONTACT_BODY, SITE_BODY

OPERATIONS = (
    "company", "site", "contact", "rename", "change_site", "change_contact", "ship", "ship_bundle",
    "register", "register_bundle", "renew", "upgrade", "notify", "sell", "days_pass",
)


class World:
    """Interprets (operation, number) pairs as commands on what exists so far."""

    def __init__(self, app: Any, clock: FixedClock) -> None:
        self.app, self.clock = app, clock
        self.companies: list[str] = []
        self.sites: list[str] = []
        self.contacts: list[str] = []
        self.units: list[str] = []
        self.bundles: list[tuple[str, list[str]]] = []
        self.registered: list[str] = []
        self.serial_numbers = iter(range(10**6))

    def pick(self, items: list[Any], n: int) -> Any:
        return items[n % len(items)] if items else None

    def ticket(self, n: int, kind: str) -> str:
        ticket_id = f"{50_000_000 + next(self.serial_numbers)}"
        sold_on = date(2024, 1, 1) + timedelta(days=(n * 37) % 1000)
        self.app.shipments.record_ticket_sale(ticket_id, "C", "12345-99", "デリバリースタンダード", 1 + 4 * (n % 2), kind, sold_on)
        return ticket_id

    def run(self, operation: str, n: int) -> None:  # noqa: C901 - one branch per command
        app = self.app
        if operation == "company" or (not self.companies and operation in ("site", "rename")):
            account = app.accounts.sign_up(f"{uuid.uuid4().hex[:10]}@example.co.jp", "secret123", "山田", "会社", "03-1234-5678", True)
            app.accounts.verify_account(app.accounts.confirmation_token(account["account_id"]))
            self.companies.append(app.companies.register_company(account["account_id"], f"会社{n}")["company_id"])
        elif operation == "site":
            self.sites.append(app.companies.add_site(self.pick(self.companies, n), SITE_BODY)["site_id"])
        elif operation == "contact" and self.sites:
            self.contacts.append(app.companies.add_fault_contact(self.pick(self.sites, n), CONTACT_BODY)["contact_id"])
        elif operation == "rename":
            app.companies.rename_company(self.pick(self.companies, n), f"新会社{n}")
        elif operation == "change_site" and self.sites:
            app.companies.change_site(self.pick(self.sites, n), {"name": f"拠点{n}", "person": f"担当{n % 3}"})
        elif operation == "change_contact" and self.contacts:
            app.companies.change_fault_contact(self.pick(self.contacts, n), {"mail1": f"m{n}@example.co.jp"})
        elif operation == "ship":
            serial = f"RB{next(self.serial_numbers):08d}"
            app.shipments.record_shipment(serial, "12345-01", "AT-x510", date(2025, 1, 1))
            self.units.append(serial)
        elif operation == "ship_bundle":
            serial, option = f"BU{next(self.serial_numbers):08d}", f"OP{next(self.serial_numbers):08d}"
            sold_on = date(2024, 1, 1) + timedelta(days=(n * 53) % 1000)
            bundle = {"service": "デリバリースタンダード", "term_years": 1, "sold_on": sold_on, "ticket_model": "TM",
                      "options": [{"serial": option, "code_no": "12345-10", "model": "PWR"}]}
            app.shipments.record_shipment(serial, "12345-01", "AT-x930", date(2025, 1, 1), bundle)
            self.bundles.append((serial, [option]))
        elif operation == "register" and self.units and self.sites:
            serial = self.pick(self.units, n)
            app.registrations.register_ticket(self.pick(self.sites, n // 7), self.ticket(n, "new"), "C", serial)
            self.registered.append(serial)
        elif operation == "register_bundle" and self.bundles and self.sites:
            serial, options = self.pick(self.bundles, n)
            app.registrations.register_bundle(self.pick(self.sites, n // 5), serial, options)
            self.registered.append(serial)
        elif operation == "renew" and self.registered:
            app.registrations.renew(self.pick(self.registered, n), self.ticket(n, "renewal"), "C")
        elif operation == "upgrade" and self.registered:
            app.registrations.upgrade_service_level(self.pick(self.registered, n), f"プレミアム{n % 2}", "営業")
        elif operation == "notify" and self.registered:
            unit = app.shipments.shipped_unit(self.pick(self.registered, n))
            if unit.contract_id is not None:
                app.mail_records.record_contract_mail_sent(unit.contract_id, lambda c: c.record_service_in_notified(
                    uuid.uuid4(), unit.registration_serial, ["a@example.co.jp"], "<m>", self.clock.now()))
        elif operation == "days_pass":
            self.clock.set(self.clock.now() + timedelta(days=n % 120))


def dump(read_models: ReadModels) -> dict[str, list[dict[str, Any]]]:
    tables = {}
    for name, runner in read_models.runners.items():
        view = runner.view
        for table in view.tables.values():
            rows = view.query(f"SELECT * FROM {{{table.name}}} ORDER BY {table.key}")
            tables[f"{name}.{table.name}"] = rows
    return tables


def check_rebuild_equals_incremental(store_settings: Any, steps: list[tuple[str, int]]) -> None:
    clock = FixedClock(datetime(2026, 11, 20, 10, tzinfo=TOKYO))
    app = build_application(store_settings, clock=clock)
    try:
        read_models = ReadModels(app, batch_size=3)
        world = World(app, clock)
        for number, (operation, n) in enumerate(steps):
            try:
                world.run(operation, n)
            except DomainError:
                pass  # a refused command records nothing
            if number % 4 == 0:
                for runner in read_models.runners.values():
                    runner.run_once()  # at most one small batch: the models lag, then catch up
        read_models.catch_up()
        incremental = dump(read_models)
        assert any(incremental.values())
        coverage = read_models.view("coverage")  # the kept counts are the registrations' counts
        grouped = coverage.query(
            "SELECT period_end, COUNT(*) AS n FROM {registrations} WHERE is_current = 1 GROUP BY period_end"
        )
        kept = coverage.query("SELECT period_end, count FROM {end_counts} WHERE count <> 0")
        assert {r["period_end"]: r["count"] for r in kept} == {r["period_end"]: r["n"] for r in grouped}
        for name in read_models.runners:
            assert read_models.rebuild(name) == app.recorder.max_notification_id()
        assert dump(read_models) == incremental
        read_models.catch_up()  # the live runners go on from the rebuilt position
        assert dump(read_models) == incremental
    finally:
        app.close()


steps = st.lists(st.tuples(st.sampled_from(OPERATIONS), st.integers(0, 10_000)), min_size=30, max_size=90)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=steps)
def test_rebuilt_read_models_equal_the_incremental_ones_on_sqlite(steps: list[tuple[str, int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        check_rebuild_equals_incremental(settings_for("sqlite", Path(tmp)), steps)


@pytest.mark.postgres
def test_rebuilt_read_models_equal_the_incremental_ones_on_postgres(postgres_url: str) -> None:
    @settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(steps=steps)
    def check(steps: list[tuple[str, int]]) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            check_rebuild_equals_incremental(settings_for("postgres", Path(tmp), postgres_url), steps)

    check()


def test_rebuild_keeps_answering_reads_while_it_runs(tmp_path: Path) -> None:
    clock = FixedClock(datetime(2026, 11, 20, 10, tzinfo=TOKYO))
    app = build_application(settings_for("sqlite", tmp_path), clock=clock)
    try:
        read_models = ReadModels(app)
        world = World(app, clock)
        for n, operation in enumerate(["company", "site", "contact", "ship", "register", "ship", "register"] * 3):
            world.run(operation, 0 if operation in ("site", "register") else n)
        read_models.catch_up()
        view = read_models.view("coverage")
        before = view.query("SELECT serial FROM {registrations} ORDER BY serial")
        seen: list[Any] = []

        class Observed(Coverage):
            """Reads the live model at every event the rebuild applies to its fresh tables."""

            def process_event(self, domain_event: Any, tracking: Any) -> None:
                seen.append(view.query("SELECT serial FROM {registrations} ORDER BY serial"))
                super().process_event(domain_event, tracking)

        read_models.runners["coverage"].projection = Observed(view)
        read_models.rebuild("coverage")
        assert seen and all(rows == before for rows in seen)
        assert view.query("SELECT serial FROM {registrations} ORDER BY serial") == before
    finally:
        app.close()


def test_rebuild_command_rebuilds_one_or_all_projections(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from lifecycle.entrypoints.cli import cli

    store = settings_for("sqlite", tmp_path)
    app = build_application(store)
    World(app, FixedClock(datetime(2026, 11, 20, 10, tzinfo=TOKYO))).run("ship", 1)
    app.close()
    monkeypatch.setenv("LIFECYCLE_DATABASE_URL", store.database_url)
    monkeypatch.setenv("LIFECYCLE_VAR_DIR", str(tmp_path / "var"))
    result = CliRunner().invoke(cli, ["projections", "rebuild", "coverage"])
    assert result.exit_code == 0 and "coverage: rebuilt up to log position 1" in result.output
    result = CliRunner().invoke(cli, ["projections", "rebuild"])
    assert result.exit_code == 0 and {"parties:", "coverage:", "service_in:"} <= set(result.output.split())
    assert CliRunner().invoke(cli, ["projections", "rebuild", "nope"]).exit_code == 1


def test_rebuild_switches_in_only_once_caught_up_and_live_runners_drop_their_cached_rows(tmp_path: Path) -> None:
    clock = FixedClock(datetime(2026, 11, 20, 10, tzinfo=TOKYO))
    app = build_application(settings_for("sqlite", tmp_path), clock=clock)
    try:
        read_models = ReadModels(app)
        world = World(app, clock)
        for n, operation in enumerate(["company", "site", "contact", "ship", "register", "ship"]):
            world.run(operation, 0 if operation in ("site", "register") else n)
        read_models.catch_up()
        live, runner = read_models.view("coverage"), read_models.runners["coverage"]
        [first] = live.query("SELECT registration_id, model FROM {registrations}")
        # Rows the live runner holds in memory that the rebuilt tables will not have (as rows
        # derived by handlers a rebuild corrects): it must not write them back afterwards.
        runner.projection.rows.get("registrations", first["registration_id"])["model"] = "CACHED"

        switch, attempts = live.swap_in, []

        def live_runner_goes_ahead_first(fresh: Any) -> None:
            attempts.append(fresh.position())
            if len(attempts) == 1:  # a registration saved and shown live while the rebuild finishes
                world.run("register", 1)
                runner.catch_up()
            switch(fresh)

        live.swap_in = live_runner_goes_ahead_first  # type: ignore[method-assign]
        head = app.recorder.max_notification_id()
        assert read_models.rebuild("coverage") == app.recorder.max_notification_id() > head
        assert len(attempts) == 2 and attempts[0] == head  # refused while behind the live model
        assert runner.position() == app.recorder.max_notification_id()
        assert {r["serial"] for r in live.query("SELECT serial FROM {registrations}")} == set(world.registered)
        read_models.wait_for(app.recorder.max_notification_id(), "coverage")  # no wait: shown already

        world.run("upgrade", 0)  # the live runner changes the first registration's row again
        read_models.catch_up()
        [row] = live.query("SELECT model, service FROM {registrations} WHERE registration_id = :r",
                           {"r": first["registration_id"]})
        assert row == {"model": first["model"], "service": "プレミアム0"}
    finally:
        app.close()
