"""The dashboards over HTTP: JSON, paging, and the same lists as CSV and Excel files."""

from __future__ import annotations

import csv
import io

from openpyxl import load_workbook

from tests.e2e.conftest import assert_problem
from tests.scenario import Flow


def expiring_site(flow: Flow) -> tuple[str, list[str]]:
    """Three units ending 2026-12-31, 2027-01-31 and 2027-02-28 (today is 2026-11-20)."""
    site_id = flow.ready_site()
    serials = []
    for sold_on in ("2025-11-10", "2025-12-10", "2026-01-10"):
        serial = flow.ship()
        flow.register(site_id, flow.sell_ticket(sold_on=sold_on), serial)
        serials.append(serial)
    return site_id, serials


class TestExpiryDashboardApi:
    def test_site_filter_counts_windows_and_groups_by_month(self, flow: Flow) -> None:
        site_id, serials = expiring_site(flow)
        answer = flow.client.get("/v1/dashboards/expiry", params={"site_id": site_id, "list": "ending_180"}).json()
        assert answer["counts"] == {"ending_30": 0, "ending_60": 1, "ending_90": 2, "ending_180": 3,
                                    "expired_renewable": 0, "lapsed": 0}
        assert [i["serial"] for i in answer["items"]] == serials
        assert answer["by_month"] == [{"month": m, "count": 1} for m in ("2026-12", "2027-01", "2027-02")]
        assert answer["items"][0]["days_left"] == 41 and answer["items"][0]["renewal_open"] is True

    def test_paging_and_sorting(self, flow: Flow) -> None:
        site_id, serials = expiring_site(flow)
        params = {"site_id": site_id, "list": "ending_180", "sort": "-end", "limit": 2}
        first = flow.client.get("/v1/dashboards/expiry", params=params).json()
        second = flow.client.get("/v1/dashboards/expiry", params={**params, "offset": 2}).json()
        assert first["total"] == 3
        assert [i["serial"] for i in first["items"] + second["items"]] == serials[::-1]

    def test_csv_and_excel_exports_hold_the_whole_list(self, flow: Flow) -> None:
        site_id, serials = expiring_site(flow)
        params = {"site_id": site_id, "list": "ending_180", "limit": 1}
        response = flow.client.get("/v1/dashboards/expiry", params={**params, "format": "csv"})
        assert response.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
        assert [r["serial"] for r in rows] == serials
        assert rows[0]["period_end"] == "2026-12-31"
        response = flow.client.get("/v1/dashboards/expiry", params={**params, "format": "xlsx"})
        sheet = load_workbook(io.BytesIO(response.content)).active
        values = list(sheet.values)
        column = values[0].index("serial")
        assert [row[column] for row in values[1:]] == serials

    def test_an_unknown_list_is_refused(self, flow: Flow) -> None:
        assert_problem(flow.client.get("/v1/dashboards/expiry", params={"list": "soon"}), 422, "VALIDATION_ERROR")


class TestServiceInDashboardApi:
    def test_registrations_wait_with_their_deadline_and_export(self, flow: Flow) -> None:
        site_id = flow.ready_site()
        serial = flow.ship()
        flow.register(site_id, flow.sell_ticket(), serial)
        answer = flow.client.get("/v1/dashboards/service-in", params={"site_id": site_id}).json()
        # The service-in mail is due on the next business day: the clock stands on the 20th.
        assert [(i["serial"], i["deadline"], i["overdue"]) for i in answer["items"]] == [(serial, "2026-11-27", False)]
        response = flow.client.get("/v1/dashboards/service-in", params={"site_id": site_id, "format": "csv"})
        assert response.text.lstrip("\ufeff").splitlines()[0].startswith("contract_number,")
