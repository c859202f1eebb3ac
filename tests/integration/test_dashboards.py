"""The dashboards over a scenario of registrations spread over dates, checked against a
calculation of the test's own (SPEC P-1, R-2, R-3, M-1), on SQLite and PostgreSQL."""

from __future__ import annotations

import calendar
import itertools
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from uuid import uuid4

import pytest

from lifecycle.bootstrap import build_application
from lifecycle.domain.dates import TOKYO
from lifecycle.projections.read_models import ReadModels
from lifecycle.queries.dashboards import Dashboards, ExpiryFilters
from lifecycle.settings import Settings
from tests.fakes import FixedClock
from tests.scenario import CONTACT_BODY, SITE_BODY

TODAY = date(2026, 11, 20)
_numbers = itertools.count(30_000_000)


def last_day(year: int, month: int) -> date:
    return date(year, month, calendar.monthrange(year, month)[1])


def expected_end(sold_on: date, months: int) -> date:
    """P-1 by hand: from the 1st of the next month, `months` months, ending on a month's last day."""
    month_index = sold_on.year * 12 + sold_on.month  # the next month, zero-based
    end_index = month_index + months - 1
    return last_day(end_index // 12, end_index % 12 + 1)


def renewal_window(end: date) -> tuple[date, date]:
    """R-2 by hand: opens on the day three months before the day after the end."""
    after = end + timedelta(days=1)
    year, month = (after.year, after.month - 3) if after.month > 3 else (after.year - 1, after.month + 9)
    opens = date(year, month, min(after.day, calendar.monthrange(year, month)[1]))
    return opens, end + timedelta(days=90)


@dataclass
class Unit:
    serial: str
    company: str
    end: date


@pytest.fixture
def world(store_settings: Settings) -> Iterator[tuple[Any, ReadModels, Dashboards, FixedClock]]:
    clock = FixedClock(datetime(2026, 11, 20, 10, tzinfo=TOKYO))
    app = build_application(store_settings, clock=clock)
    read_models = ReadModels(app)
    dashboards = Dashboards(read_models, clock, app.terms.renewal)
    yield app, read_models, dashboards, clock
    app.close()


def new_site(app: Any, name: str) -> tuple[str, str]:
    account = app.accounts.sign_up(f"{uuid4().hex[:8]}@example.co.jp", "secret123", "山田", name, "03-1234-5678", True)
    app.accounts.verify_account(app.accounts.confirmation_token(account["account_id"]))
    company = app.companies.register_company(account["account_id"], name)
    site = app.companies.add_site(company["company_id"], SITE_BODY)
    app.companies.add_fault_contact(site["site_id"], CONTACT_BODY)
    return company["contract_number"], site["site_id"]


def register(app: Any, site_id: str, sold_on: date, term_years: int) -> str:
    serial = f"DB{next(_numbers):010d}"
    ticket_id = str(next(_numbers))
    model = "AT-x230" if int(serial[2:]) % 3 == 0 else "AT-x510"  # two models, for the sort by model
    app.shipments.record_shipment(serial, "12345-01", model, sold_on)
    app.shipments.record_ticket_sale(ticket_id, "C", "12345-99", "デリバリースタンダード", term_years, "new", sold_on)
    app.registrations.register_ticket(site_id, ticket_id, "C", serial)
    return serial


def renew(app: Any, serial: str, term_years: int = 1) -> None:
    ticket_id = str(next(_numbers))
    app.shipments.record_ticket_sale(ticket_id, "C", "12345-99", "デリバリースタンダード", term_years, "renewal", TODAY)
    app.registrations.renew(serial, ticket_id, "C")


def scenario(app: Any) -> list[Unit]:
    """54 units sold every 17 days from June 2024, at two companies; those whose renewal window
    is open today are renewed every third time."""
    companies = [new_site(app, "株式会社アルファ"), new_site(app, "ベータ工業株式会社")]
    units = []
    sold_on = date(2024, 6, 3)
    for n in range(54):
        contract_number, site_id = companies[n % 2]
        term_years = 5 if n % 9 == 4 else 1
        serial = register(app, site_id, sold_on, term_years)
        end = expected_end(sold_on, 63 if term_years == 5 else 13)
        opens, closes = renewal_window(end)
        if opens <= TODAY <= closes and n % 3 == 0:
            renew(app, serial)
            end = last_day(end.year + 1, end.month)  # 12 more months, without a gap
        units.append(Unit(serial, contract_number, end))
        sold_on += timedelta(days=17)
    return units


def expected_lists(units: list[Unit]) -> dict[str, list[Unit]]:
    lists: dict[str, list[Unit]] = {f"ending_{n}": [u for u in units if TODAY <= u.end <= TODAY + timedelta(days=n)]
                                    for n in (30, 60, 90, 180)}
    lists["expired_renewable"] = [u for u in units if TODAY - timedelta(days=90) <= u.end < TODAY]
    lists["lapsed"] = [u for u in units if u.end < TODAY - timedelta(days=90)]
    return lists


class TestExpiryDashboard:
    def test_counts_groups_and_lists_match_an_independent_calculation(self, world: Any) -> None:
        app, read_models, dashboards, _ = world
        units = scenario(app)
        read_models.catch_up()
        expected = expected_lists(units)
        assert all(expected[name] for name in expected), "the scenario covers every list"
        for name, members in expected.items():
            answer = dashboards.expiry(name, limit=500)
            assert answer["counts"] == {k: len(v) for k, v in expected.items()}
            assert answer["total"] == len(members)
            assert [i["serial"] for i in answer["items"]] == [
                u.serial for u in sorted(members, key=lambda u: (u.end, u.serial))
            ]
            assert {m["month"]: m["count"] for m in answer["by_month"]} == dict(
                Counter(f"{u.end:%Y-%m}" for u in members)
            )
            assert {c["contract_number"]: c["count"] for c in answer["by_company"]} == dict(
                Counter(u.company for u in members)
            )

    def test_filters_sorting_and_pages(self, world: Any) -> None:
        app, read_models, dashboards, _ = world
        units = scenario(app)
        read_models.catch_up()
        company = units[0].company
        members = [u for u in expected_lists(units)["lapsed"] if u.company == company]
        filtered = dashboards.expiry("lapsed", ExpiryFilters(contract_number=company), sort="-end", limit=500)
        assert [i["serial"] for i in filtered["items"]] == [
            u.serial for u in sorted(members, key=lambda u: (u.end, u.serial), reverse=True)
        ]
        assert filtered["counts"]["lapsed"] == len(members)
        # The scenario's two companies in the order of their names (code points: ベ before 株).
        name_of = {company: filtered["items"][0]["company_name"]}
        name_of.update({u.company: "株式会社アルファ" if name_of[company] != "株式会社アルファ" else "ベータ工業株式会社"
                        for u in units if u.company != company})
        lapsed = expected_lists(units)["lapsed"]
        by_name = [u.serial for u in sorted(lapsed, key=lambda u: (name_of[u.company], u.end, u.serial))]
        pages = [dashboards.expiry("lapsed", sort="company", limit=5, offset=o)["items"] for o in range(0, len(lapsed), 5)]
        assert [i["serial"] for page in pages for i in page] == by_name
        everything = dashboards.expiry("ending_180", limit=500)["items"]
        pages = [dashboards.expiry("ending_180", limit=4, offset=o)["items"] for o in range(0, len(everything), 4)]
        assert [i["serial"] for page in pages for i in page] == [i["serial"] for i in everything]

    def test_lists_move_with_the_calendar(self, world: Any) -> None:
        app, read_models, dashboards, clock = world
        _, site_id = new_site(app, "ガンマ株式会社")
        serial = register(app, site_id, date(2025, 11, 10), 1)  # ends 2026-12-31
        read_models.catch_up()
        assert dashboards.expiry("ending_60")["items"][0]["serial"] == serial
        clock.set(datetime(2027, 1, 1, 9, tzinfo=TOKYO))
        assert [i["serial"] for i in dashboards.expiry("expired_renewable")["items"]] == [serial]
        clock.set(datetime(2027, 4, 1, 9, tzinfo=TOKYO))  # the window closed on 2027-03-31
        assert [i["serial"] for i in dashboards.expiry("lapsed")["items"]] == [serial]


    def test_counts_kept_by_the_projection_agree_with_the_registrations_under_every_filter(self, world: Any) -> None:
        """The counts per end date, company, service and model that the coverage projection keeps
        (renewals and a service upgrade move them) give what counting the registrations gives."""
        app, read_models, dashboards, _ = world
        units = scenario(app)
        app.registrations.upgrade_service_level(units[1].serial, "オンサイトスタンダード", "sales")
        read_models.catch_up()
        view = read_models.view("coverage")
        site_id = view.query("SELECT site_id FROM {registrations} LIMIT 1")[0]["site_id"]
        name = dashboards.expiry()["by_company"][0]["company_name"]
        cases = [
            ExpiryFilters(), ExpiryFilters(contract_number=units[0].company), ExpiryFilters(company=name[-3:]),
            ExpiryFilters(service="オンサイトスタンダード"), ExpiryFilters(model="AT-x510"),
            ExpiryFilters(service="デリバリースタンダード", model="AT-x510"), ExpiryFilters(site_id=site_id),
            ExpiryFilters(contract_number=units[0].company, service="オンサイトスタンダード"),
        ]
        for filters in cases:
            where = {k: v for k, v in vars(filters).items() if v}
            rows = [r for r in view.query("SELECT r.*, c.contract_number, c.name FROM {registrations} r "
                                          "JOIN " + read_models.view("parties").table("contracts")
                                          + " c ON c.contract_id = r.contract_id WHERE r.is_current = 1")
                    if all((v in r["name"]) if k == "company" else r[k] == v for k, v in where.items())]
            assert rows or filters.service, filters
            for list_name in ("ending_180", "expired_renewable", "lapsed"):
                answer = dashboards.expiry(list_name, filters, limit=500)
                members = [r for r in rows if dashboards._in_list(list_name, r["period_end"],
                                                                  dashboards.expiry_bounds(TODAY))]
                assert answer["total"] == len(members), (filters, list_name)
                assert {c["company_id"]: c["count"] for c in answer["by_company"]} == dict(
                    Counter(r["contract_id"] for r in members)), (filters, list_name)
                assert sorted(i["serial"] for i in answer["items"]) == sorted(r["serial"] for r in members)
                pages = [dashboards.expiry(list_name, filters, sort="model", limit=3, offset=o)["items"]
                         for o in range(0, len(members), 3)]
                assert [i["serial"] for page in pages for i in page] == [
                    r["serial"] for r in sorted(members, key=lambda r: (r["model"], r["period_end"], r["serial"]))]


class TestServiceInDashboard:
    def test_M1_waiting_registrations_have_their_deadline_and_turn_overdue(self, world: Any) -> None:
        app, read_models, dashboards, clock = world
        contract_number, site_id = new_site(app, "デルタ株式会社")
        friday = register(app, site_id, date(2026, 11, 2), 1)  # registered Fri 2026-11-20
        clock.set(datetime(2026, 12, 25, 15, tzinfo=TOKYO))
        christmas = register(app, site_id, date(2026, 11, 2), 1)  # Fri 2026-12-25, before the year-end closing
        read_models.catch_up()
        # Holidays by hand: 23 Nov (勤労感謝の日); the closing 29 Dec - 3 Jan.
        deadlines = {friday: date(2026, 11, 27), christmas: date(2027, 1, 6)}
        answer = dashboards.service_in(limit=500)
        assert {i["serial"]: i["deadline"] for i in answer["items"]} == deadlines
        assert answer["counts"] == {"waiting": 2, "overdue": 1, "due_today": 0}
        assert [i["serial"] for i in dashboards.service_in(overdue_only=True)["items"]] == [friday]

        contract = app.companies.contract_by_number(contract_number)
        app.mail_records.record_contract_mail_sent(contract.id, lambda c: c.record_service_in_notified(
            uuid4(), friday, ["a@example.co.jp"], "<m1>", clock.now()))
        read_models.catch_up()
        clock.set(datetime(2027, 1, 6, 9, tzinfo=TOKYO))
        answer = dashboards.service_in()
        assert [i["serial"] for i in answer["items"]] == [christmas]
        assert answer["counts"] == {"waiting": 1, "overdue": 0, "due_today": 1}
        clock.set(datetime(2027, 1, 7, 9, tzinfo=TOKYO))
        assert dashboards.service_in()["counts"]["overdue"] == 1
