"""The auditor's view over HTTP: a contract's history paged and filtered by event type and
time, and the contract as it stood at an instant."""

from __future__ import annotations

import time
from datetime import datetime, timezone

from tests.e2e.conftest import assert_problem
from tests.scenario import Flow


def contract_with_history(flow: Flow) -> tuple[dict, str, datetime]:
    """A contract whose site is renamed after its first registration; answers the instant between."""
    company = flow.company()
    site_id = flow.site(company["company_id"])["site_id"]
    flow.fault_contact(site_id)
    serial = flow.ship()
    flow.register(site_id, flow.sell_ticket(sold_on="2025-11-10"), serial)
    time.sleep(0.01)
    between = datetime.now(timezone.utc)
    time.sleep(0.01)
    flow.client.patch(f"/v1/sites/{site_id}", json={"name": "大阪支店"})
    flow.client.post(f"/v1/registrations/{serial}/renewals", json=flow.sell_ticket(kind="renewal"))
    return company, serial, between


class TestHistory:
    def test_history_is_filtered_by_event_type_and_paged(self, flow: Flow) -> None:
        company, _, _ = contract_with_history(flow)
        path = f"/v1/contracts/{company['contract_number']}/history"
        everything = flow.client.get(path).json()
        assert [e["type"] for e in everything["events"]] == [
            "CompanyRegistered", "SiteAdded", "FaultContactAdded", "TicketRegistered", "SiteChanged", "Renewed",
        ]
        chosen = flow.client.get(path, params={"type": ["SiteAdded", "SiteChanged"]}).json()
        assert [e["type"] for e in chosen["events"]] == ["SiteAdded", "SiteChanged"] and chosen["total"] == 2
        page = flow.client.get(path, params={"limit": 2, "offset": 2}).json()
        assert [e["version"] for e in page["events"]] == [3, 4] and page["total"] == 6

    def test_history_is_filtered_by_time(self, flow: Flow) -> None:
        company, _, between = contract_with_history(flow)
        path = f"/v1/contracts/{company['contract_number']}/history"
        after = flow.client.get(path, params={"since": between.isoformat()}).json()
        before = flow.client.get(path, params={"until": between.isoformat()}).json()
        assert [e["type"] for e in after["events"]] == ["SiteChanged", "Renewed"]
        assert len(before["events"]) == 4

    def test_unknown_event_type_is_refused(self, flow: Flow) -> None:
        company = flow.company()
        response = flow.client.get(f"/v1/contracts/{company['contract_number']}/history", params={"type": "Nope"})
        assert_problem(response, 422, "UNKNOWN_EVENT_TYPE")


class TestContractAsOf:
    def test_contract_as_it_stood_before_the_rename_and_the_renewal(self, flow: Flow) -> None:
        company, serial, between = contract_with_history(flow)
        path = f"/v1/contracts/{company['contract_number']}"
        then = flow.client.get(path, params={"as_of": between.isoformat()}).json()
        now = flow.client.get(path).json()
        assert [s["name"] for s in then["sites"]] == ["東京本社"]
        assert [s["name"] for s in now["sites"]] == ["大阪支店"]
        assert then["registrations"][0]["period"]["end"] == "2026-12-31"
        assert now["registrations"][0]["period"]["end"] == "2027-12-31"
        assert then["version"] == 4 and now["version"] == 6

    def test_before_the_contract_existed_is_404(self, flow: Flow) -> None:
        company = flow.company()
        response = flow.client.get(f"/v1/contracts/{company['contract_number']}", params={"as_of": "2020-01-01T00:00:00+09:00"})
        assert_problem(response, 404, "CONTRACT_NOT_FOUND")
