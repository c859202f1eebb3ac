"""Contracts kept in memory between commands: every load still sees what any process saved
since, and a command's unsaved changes never reach the next command."""

from __future__ import annotations

from collections.abc import Iterator
from copy import deepcopy
from datetime import date, datetime
from typing import Any
from uuid import UUID

import pytest

from lifecycle.aggregates.contract import Contract
from lifecycle.aggregates.layered import LayeredMap
from lifecycle.bootstrap import build_application
from lifecycle.domain.dates import TOKYO
from lifecycle.settings import Settings
from tests.fakes import FixedClock
from tests.integration.test_projection_runner import CONTACT, SITE

NOW = datetime(2026, 11, 20, 10, tzinfo=TOKYO)


@pytest.fixture
def two_processes(store_settings: Settings) -> Iterator[tuple[Any, Any]]:
    """Two applications on one store, as two server processes would be."""
    first = build_application(store_settings, clock=FixedClock(NOW))
    second = build_application(store_settings, clock=FixedClock(NOW))
    yield first, second
    first.close()
    second.close()


def company_with_site(app: Any) -> tuple[str, str]:
    account = app.accounts.sign_up("c@example.co.jp", "secret123", "山田", "株式会社サンプル", "03-1234-5678", True)
    app.accounts.verify_account(app.accounts.confirmation_token(account["account_id"]))
    company = app.companies.register_company(account["account_id"], "株式会社サンプル")
    site = app.companies.add_site(company["company_id"], SITE)
    app.companies.add_fault_contact(site["site_id"], CONTACT)
    return company["company_id"], site["site_id"]


def test_a_cached_contract_shows_what_another_process_saved_since(two_processes: tuple[Any, Any]) -> None:
    first, second = two_processes
    company_id, site_id = company_with_site(first)
    assert first.companies.get_site(site_id)["name"] == "東京本社"  # the first process now holds the contract
    second.companies.rename_company(company_id, "株式会社サンプル商事")
    second.companies.change_site(site_id, {"name": "大阪支店"})
    second.shipments.record_shipment("SN0001", "12345-01", "AT-x510", date(2026, 1, 5))
    second.shipments.record_ticket_sale("20000001", "C", "12345-99", "デリバリースタンダード", 1, "new", date(2025, 6, 1))
    second.registrations.register_ticket(site_id, "20000001", "C", "SN0001")

    assert first.companies.get_company(company_id)["name"] == "株式会社サンプル商事"
    assert first.companies.get_site(site_id)["name"] == "大阪支店"
    # A command in the first process decides on the current contract: the unit is taken.
    first.shipments.record_shipment("SN0002", "12345-01", "AT-x510", date(2026, 1, 5))
    first.shipments.record_ticket_sale("20000002", "C", "12345-99", "デリバリースタンダード", 1, "new", date(2025, 6, 1))
    answer = first.registrations.register_ticket(site_id, "20000002", "C", "SN0002")
    assert answer["serial"] == "SN0002"
    assert set(first.companies.company(company_id).registrations) == {"SN0001", "SN0002"}


def test_changes_a_command_did_not_save_do_not_reach_the_next_command(two_processes: tuple[Any, Any]) -> None:
    app, _ = two_processes
    company_id, site_id = company_with_site(app)
    loaded = app.companies.company(company_id)
    loaded.rename("未保存の名前")  # as a command refused after changing its copy
    loaded.change_site(site_id, {"name": "未保存の拠点"})

    again = app.companies.company(company_id)
    assert again.name == "株式会社サンプル"
    assert again.site(site_id).name == "東京本社"
    assert again.version == loaded.version - 2
    app.companies.rename_company(company_id, "株式会社サンプル商事")  # saves one event, not the unsaved ones
    history = [type(e).__name__ for e in app.events.get(company_id)]
    assert history.count("CompanyRenamed") == 1
    assert "SiteChanged" not in history


def test_a_contract_copy_shares_no_container_with_the_original() -> None:
    contract = Contract(contract_number="SU00000001", account_id=UUID(int=1), name="株式会社サンプル")
    copy = deepcopy(contract)
    assert copy.__dict__ == contract.__dict__
    containers = [name for name, value in contract.__dict__.items() if isinstance(value, dict | list | LayeredMap)]
    assert {"sites", "fault_contacts", "registrations", "notifications_sent"} <= set(containers)
    for name in containers:
        assert copy.__dict__[name] is not contract.__dict__[name], name
    copy.notifications_sent["n"] = "<m@x>"
    assert "n" not in contract.notifications_sent


def test_one_process_registers_concurrently_at_one_site_without_losing_races(two_processes: tuple[Any, Any]) -> None:
    """Commands of one process on one contract take turns: none has to retry on a conflict."""
    from concurrent.futures import ThreadPoolExecutor

    app, _ = two_processes
    _, site_id = company_with_site(app)
    for n in range(16):
        app.shipments.record_shipment(f"SN{n:04d}", "12345-01", "AT-x510", date(2026, 1, 5))
        app.shipments.record_ticket_sale(f"{30_000_000 + n}", "C", "12345-99", "デリバリースタンダード", 1, "new", date(2025, 6, 1))
    conflicts = []
    save_at = app._save_at

    def counting_save_at(*aggregates: Any) -> int | None:
        position = save_at(*aggregates)
        if position is None:
            conflicts.append(aggregates)
        return position

    app._save_at = counting_save_at
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(lambda n: app.registrations.register_ticket(site_id, f"{30_000_000 + n}", "C", f"SN{n:04d}"), range(16)))
    assert sorted(a["serial"] for a in answers) == [f"SN{n:04d}" for n in range(16)]
    assert conflicts == []


def test_a_large_contract_loads_in_another_process_from_its_snapshot_and_applies_the_rules(
    two_processes: tuple[Any, Any],
) -> None:
    """Issue 12, item 7: snapshots are taken from the contract as it was saved, hold each
    registration as a row, and a process that never saw the contract decides on it."""
    from lifecycle.aggregates.shipments import Ticket, Unit
    from lifecycle.domain.errors import RenewalWindowClosed

    first, second = two_processes
    company_id, site_id = company_with_site(first)
    count = 220  # versions 4…223: snapshots at 100 and 200
    first.save(*(aggregate for n in range(count + 1) for aggregate in (
        Unit(f"GR{n:06d}", "1234501", "AT-x510", date(2026, 1, 5), None, None),
        Ticket(f"{50_000_000 + n}", "C", "1234599", "デリバリースタンダード", 1, "new", date(2026, 11, 10)),
    )))
    for n in range(count):
        first.registrations.register_ticket(site_id, f"{50_000_000 + n}", "C", f"GR{n:06d}")
    stored = first.snapshots.recorder.select_events(UUID(str(company_id)))
    assert [s.originator_version for s in stored] == [100, 200]
    assert b'"registration_row"' in stored[-1].state

    contract = second.companies.company(company_id)  # the snapshot at 200 and 23 events
    assert contract.version == count + 3
    assert contract.registrations == first.companies.company(company_id).registrations
    second.shipments.record_ticket_sale("59000000", "C", "12345-99", "デリバリースタンダード", 1, "renewal",
                                        date(2026, 11, 10))
    with pytest.raises(RenewalWindowClosed):  # R-2: GR000000's period ends 2027-11-30
        second.registrations.renew("GR000000", "59000000", "C")
    answer = second.registrations.register_ticket(site_id, f"{50_000_000 + count}", "C", f"GR{count:06d}")
    assert answer["serial"] == f"GR{count:06d}"
    assert len(first.companies.company(company_id).registrations) == count + 1
    as_of = second.history.contract_as_of(contract.contract_number)
    assert len(as_of["registrations"]) == count + 1
