"""The projection runner on SQLite and PostgreSQL: it catches up, commits rows with their
tracking position, resumes after a crash where it stopped, and never lets two runners
apply the same events."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import date, datetime
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from lifecycle.adapters.leadership import AdvisoryLock, leadership_for
from lifecycle.bootstrap import build_application
from lifecycle.domain.dates import TOKYO
from lifecycle.projections.coverage import Coverage
from lifecycle.projections.engine.runner import EventNotApplied, ProjectionRunner
from lifecycle.projections.engine.views import PositionMoved, build_view
from lifecycle.projections.read_models import ReadModels
from lifecycle.settings import Settings
from tests.conftest import settings_for
from tests.fakes import FixedClock
from tests.scenario import CONTACT_BODY, SITE_BODY

@pytest.fixture
def app(store_settings: Settings) -> Iterator[Any]:
    application = build_application(store_settings, clock=FixedClock(datetime(2026, 11, 20, 10, tzinfo=TOKYO)))
    yield application
    application.close()


def register_units(app: Any, count: int, start: int = 0) -> str:
    """`count` units registered at one new site; answers the site id."""
    account = app.accounts.sign_up(f"u{start}@example.co.jp", "secret123", "山田", "株式会社サンプル", "03-1234-5678", True)
    app.accounts.verify_account(app.accounts.confirmation_token(account["account_id"]))
    company = app.companies.register_company(account["account_id"], "株式会社サンプル")
    site = app.companies.add_site(company["company_id"], SITE_BODY)
    app.companies.add_fault_contact(site["site_id"], CONTACT_BODY)
    for n in range(start, start + count):
        serial = f"SN{n:08d}"
        app.shipments.record_shipment(serial, "12345-01", "AT-x510", date(2026, 1, 5))
        app.shipments.record_ticket_sale(f"{n + 20_000_000}", "C", "12345-99", "デリバリースタンダード", 1, "new", date(2025, 6, 1))
        app.registrations.register_ticket(site["site_id"], f"{n + 20_000_000}", "C", serial)
    return site["site_id"]


def coverage_rows(view: Any) -> list[dict[str, Any]]:
    return view.query("SELECT serial, period_end, is_current FROM {registrations} ORDER BY serial")


class TestProjectionRunner:
    def test_runner_catches_up_and_tracks_the_head_of_the_log(self, app: Any) -> None:
        register_units(app, 3)
        runner = ProjectionRunner(app, Coverage(build_view(app.factory.datastore, "coverage", Coverage.tables, topics=Coverage.topics)))
        runner.catch_up()
        assert [r["serial"] for r in coverage_rows(runner.view)] == ["SN00000000", "SN00000001", "SN00000002"]
        assert runner.position() == app.recorder.max_notification_id()
        assert runner.status()["lag"] == 0

    def test_a_crash_mid_batch_loses_nothing_and_applies_nothing_twice(self, app: Any) -> None:
        register_units(app, 4)
        view = build_view(app.factory.datastore, "coverage", Coverage.tables, topics=Coverage.topics)

        class Crashing(Coverage):
            crashes = 1

            def process_event(self, domain_event: Any, tracking: Any) -> None:
                super().process_event(domain_event, tracking)
                if type(domain_event).__name__ == "TicketRegistered" and Crashing.crashes:
                    Crashing.crashes -= 1
                    raise RuntimeError("the process died here")

        crashing = ProjectionRunner(app, Crashing(view), batch_size=3)
        with pytest.raises(EventNotApplied) as stopped:  # a handler's error stops the runner at its event
            crashing.catch_up()
        assert isinstance(stopped.value.__cause__, RuntimeError)
        before = view.position()
        assert len(coverage_rows(view)) == 0  # the batch was rolled back with its position
        restarted = ProjectionRunner(app, Coverage(view), batch_size=3)
        assert restarted.position() == before
        restarted.catch_up()
        rows = view.query("SELECT serial, terms FROM {registrations} ORDER BY serial")
        assert [(r["serial"], r["terms"]) for r in rows] == [(f"SN0000000{n}", 1) for n in range(4)]
        assert len(view.query("SELECT * FROM {terms}")) == 4

    def test_a_second_runner_with_a_stale_position_cannot_commit(self, app: Any) -> None:
        register_units(app, 1)
        view = build_view(app.factory.datastore, "coverage", Coverage.tables, topics=Coverage.topics)
        first, second = ProjectionRunner(app, Coverage(view)), ProjectionRunner(app, Coverage(view))
        assert second.position() == 0
        first.catch_up()
        register_units(app, 1, start=1)
        second._committed = 0  # it believes nothing was applied yet
        with pytest.raises(PositionMoved):
            second.run_once()
        second.catch_up()  # it reloads the position and goes on from there
        rows = view.query("SELECT serial, terms FROM {registrations} ORDER BY serial")
        assert [(r["serial"], r["terms"]) for r in rows] == [("SN00000000", 1), ("SN00000001", 1)]

    def test_read_models_wait_for_a_position_and_refuse_after_the_bound(self, app: Any) -> None:
        read_models = ReadModels(app, wait_timeout=10)  # ample on a slow, busy machine
        read_models.start()
        try:
            site_id = register_units(app, 1)
            read_models.wait_for(app.recorder.max_notification_id(), "coverage")
            rows = read_models.view("coverage").query("SELECT site_id FROM {registrations}")
            assert rows == [{"site_id": str(site_id)}]
            read_models.wait_timeout = 0.2  # a position never reached: refused after the bound
            with pytest.raises(Exception) as refused:
                read_models.wait_for(app.recorder.max_notification_id() + 100, "coverage")
            assert getattr(refused.value, "code", None) == "READ_MODEL_BEHIND"
        finally:
            read_models.stop()

    def test_a_stream_of_saves_is_applied_in_few_batches_and_a_waiting_read_skips_the_gathering(
        self, app: Any
    ) -> None:
        # A long gathering pause: without the read's hurry, wait_for would give up after 5 s.
        read_models = ReadModels(app, gather_seconds=60, wait_timeout=5)
        read_models.start()
        runner = read_models.runners["coverage"]
        try:
            saves_before = app.recorder.max_notification_id() or 0
            register_units(app, 4)  # 20 saves, each of them wakes the runner
            assert app.recorder.max_notification_id() - saves_before >= 20
            read_models.wait_for(app.recorder.max_notification_id(), "coverage")
            assert [r["serial"] for r in coverage_rows(runner.view)] == [f"SN0000000{n}" for n in range(4)]
            # One batch for the first save, then nothing until the read asked.
            assert runner.batches_committed <= 3
        finally:
            read_models.stop()


@pytest.mark.postgres
def test_only_one_process_runs_a_projection_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    settings = settings_for("postgres", tmp_path, postgres_url)
    first_app = build_application(settings)
    second_app = build_application(settings)
    try:
        key = f"lifecycle-projection:{settings.database_schema}:coverage"
        first, second = AdvisoryLock(first_app.factory.datastore, key), AdvisoryLock(second_app.factory.datastore, key)
        assert first.acquire() is True
        assert second.acquire() is False
        assert first.acquire() is True  # still held
        first.release()  # as when its process dies and the session ends
        assert second.acquire() is True
        second.release()
    finally:
        first_app.close()
        second_app.close()


def test_a_changed_read_model_definition_is_rebuilt_from_zero(app: Any) -> None:
    register_units(app, 2)
    view = build_view(app.factory.datastore, "coverage", Coverage.tables, topics=Coverage.topics)
    ProjectionRunner(app, Coverage(view)).catch_up()
    assert view.position() > 0
    from dataclasses import replace

    wider = [replace(t, columns={**t.columns, "note": "text"}) if t.name == "units" else t for t in Coverage.tables]
    changed = build_view(app.factory.datastore, "coverage", wider, topics=Coverage.topics)
    assert changed.position() == 0 and changed.query("SELECT * FROM {units}") == []
    assert build_view(app.factory.datastore, "coverage", wider, topics=Coverage.topics).position() == 0  # same definition: kept


@pytest.mark.postgres
def test_two_processes_on_postgres_run_each_projection_once_and_take_over(postgres_url: str, tmp_path: Path) -> None:
    """Two API processes (here: two applications with their own connection pools): each
    projection runs in one of them; both serve reads; when that one stops, the other takes
    over from the committed position."""
    settings = settings_for("postgres", tmp_path, postgres_url)
    first_app, second_app = build_application(settings), build_application(settings)
    first, second = (  # each with PostgreSQL's leadership, as bootstrap gives it
        ReadModels(app, wait_timeout=10, leadership=partial(leadership_for, app.factory.datastore))
        for app in (first_app, second_app)
    )
    first.start()
    second.start()
    try:
        register_units(first_app, 2)
        head = first_app.recorder.max_notification_id()
        first.wait_for(head)
        second.wait_for(head)
        for name in first.runners:
            assert [first.runners[name].is_leader, second.runners[name].is_leader].count(True) == 1
        for name in first.runners:  # each event applied once, by one of the two
            topics = first.runners[name].projection.topics
            in_log = len(first_app.recorder.select_notifications(None, 10**6, topics=topics))
            assert first.runners[name].events_processed + second.runners[name].events_processed == in_log
        leader, standby = (first, second) if first.runners["coverage"].is_leader else (second, first)
        leader.stop()
        register_units(second_app, 1, start=2)
        standby.wait_for(second_app.recorder.max_notification_id(), "coverage")
        assert standby.runners["coverage"].is_leader
        rows = standby.view("coverage").query("SELECT serial, terms FROM {registrations} ORDER BY serial")
        assert [(r["serial"], r["terms"]) for r in rows] == [(f"SN0000000{n}", 1) for n in range(3)]
    finally:
        first.stop()
        second.stop()
        first_app.close()
        second_app.close()


@pytest.mark.postgres
def test_one_process_at_a_time_runs_the_timer_scheduler_on_postgres(postgres_url: str, tmp_path: Path) -> None:
    from lifecycle.bootstrap import build_notifications

    settings = settings_for("postgres", tmp_path, postgres_url).model_copy(update={"scheduler_interval_seconds": 0.05})
    apps = [build_application(settings), build_application(settings)]
    schedulers = [build_notifications(settings, app).scheduler for app in apps]
    for scheduler in schedulers:
        scheduler.start()
    try:
        deadline = time.monotonic() + 10
        while sum(s.runs for s in schedulers) < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sorted(s.runs > 0 for s in schedulers) == [False, True]
        leader, standby = sorted(schedulers, key=lambda s: s.runs, reverse=True)
        leader.stop()  # its lock goes with it: the other takes over
        deadline = time.monotonic() + 10
        while standby.runs == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert standby.runs > 0
    finally:
        for scheduler in schedulers:
            scheduler.stop()
        for app in apps:
            app.close()


@pytest.mark.postgres
def test_an_event_stored_with_a_NUL_reaches_the_read_model_as_a_replacement_character(
    postgres_url: str, tmp_path: Path
) -> None:
    """Issue 11: a NUL saved past the door (an event stored before the door refused it) made
    PostgreSQL refuse the batch, and the parties read model stopped there for good. The event
    keeps its NUL; the read model holds U+FFFD in its place, and lookups by it still match."""
    from lifecycle.projections.parties import Parties

    settings = settings_for("postgres", tmp_path, postgres_url)
    app = build_application(settings, clock=FixedClock(datetime(2026, 11, 20, 10, tzinfo=TOKYO)))
    try:
        for n, name in enumerate(["山田", "山田\x00太郎", "佐藤"]):
            app.accounts.sign_up(f"p{n}@example.co.jp", "secret123", name, "株式会社", "03-1234-5678", True)
        view = build_view(app.factory.datastore, "parties", Parties.tables, topics=Parties.topics)
        runner = ProjectionRunner(app, Parties(view), batch_size=100)
        runner.catch_up()
        assert runner.failed_event is None
        assert runner.position() == app.recorder.max_notification_id()
        names = [r["name"] for r in view.query("SELECT name FROM {accounts} ORDER BY name")]
        assert sorted(names) == sorted(["山田", "山田\ufffd太郎", "佐藤"])
        assert view.query("SELECT name FROM {accounts} WHERE name = :name", {"name": "山田\x00太郎"})
    finally:
        app.close()


@pytest.mark.postgres
def test_a_batch_the_store_refuses_is_applied_up_to_the_event_it_cannot_hold(postgres_url: str, tmp_path: Path) -> None:
    """A value PostgreSQL refuses made it refuse the whole batch, and the runner retried it
    forever. It now applies the batch one event at a time, commits everything before that
    event and stops at it."""
    from lifecycle.aggregates.accounts import Account
    from lifecycle.projections.parties import Parties

    class Refusing(Parties):  # puts into a row what PostgreSQL's encoder refuses
        def process_event(self, domain_event: Any, tracking: Any) -> None:
            super().process_event(domain_event, tracking)
            if isinstance(domain_event, Account.SignedUp) and domain_event.name == "壊す":
                row = self.rows.get("accounts", str(domain_event.originator_id))
                assert row is not None
                self.rows.put("accounts", {**row, "name": "\ud800"})

    settings = settings_for("postgres", tmp_path, postgres_url)
    app = build_application(settings, clock=FixedClock(datetime(2026, 11, 20, 10, tzinfo=TOKYO)))
    try:
        for n, name in enumerate(["山田", "壊す", "佐藤"]):
            app.accounts.sign_up(f"p{n}@example.co.jp", "secret123", name, "株式会社", "03-1234-5678", True)
        # Each sign-up saves the account's SignedUp, then its Index claim: positions 1..6.
        runner = ProjectionRunner(app, Refusing(build_view(app.factory.datastore, "parties", Parties.tables,
                                                           topics=Parties.topics)), batch_size=100)
        with pytest.raises(EventNotApplied) as stopped:
            runner.catch_up()
        assert stopped.value.failed.position == 3
        assert stopped.value.failed.topic.endswith("Account.SignedUp")
        assert runner.position() == 1  # up to the first SignedUp (its Index claim is not a parties event)
        assert [r["name"] for r in runner.view.query("SELECT name FROM {accounts}")] == ["山田"]
    finally:
        app.close()


def test_an_outage_inside_a_handler_is_retried_not_a_stop(app: Any) -> None:
    """A handler reads rows as it goes; the database going away then is no fault of the event."""
    from eventsourcing.persistence import OperationalError

    register_units(app, 1)
    view = build_view(app.factory.datastore, "coverage", Coverage.tables, topics=Coverage.topics)

    class Outage(Coverage):
        def process_event(self, domain_event: Any, tracking: Any) -> None:
            raise OperationalError("server closed the connection unexpectedly")

    runner = ProjectionRunner(app, Outage(view))
    with pytest.raises(OperationalError):
        runner.catch_up()
    assert runner.failed_event is None
    ProjectionRunner(app, Coverage(view)).catch_up()
    assert len(coverage_rows(view)) == 1


@pytest.mark.postgres
def test_leading_every_projection_holds_no_connection_of_the_pool(postgres_url: str, tmp_path: Path) -> None:
    """The leadership locks and the LISTEN live on connections of their own: a process that
    leads every projection still has its whole pool for requests (a pool of 3 once went dry
    and health answered 503 while the database was fine)."""
    settings = settings_for("postgres", tmp_path, postgres_url).model_copy(update={"database_pool_size": 1})
    app = build_application(settings)
    read_models = ReadModels(app, wait_timeout=10, leadership=partial(leadership_for, app.factory.datastore))
    read_models.start()
    try:
        register_units(app, 1)
        read_models.wait_for(app.recorder.max_notification_id())
        assert all(runner.is_leader for runner in read_models.runners.values())
        pool = app.factory.datastore.pool
        assert pool.max_size == 2
        with pool.connection(timeout=2), pool.connection(timeout=2):
            pass  # both of the pool's connections are free for requests
    finally:
        read_models.stop()
        app.close()
