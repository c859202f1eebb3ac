"""The support desk's reads over HTTP, from the read models: the site's ticket list, the
call-center lookup by serial and by ticket ID, the entitlement check and the inquiry check."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from fastapi.testclient import TestClient

from api.app import create_app
from lifecycle.domain.dates import TOKYO
from tests.e2e.conftest import api_key, assert_problem, bearer
from tests.scenario import Flow, next_serial


def renew(flow: Flow, serial: str, **ticket: object) -> dict:
    return flow.post(f"/v1/registrations/{serial}/renewals", flow.sell_ticket(kind="renewal", **ticket))


class TestTicketList:
    def test_renewed_unit_lists_its_tickets_active_then_future(self, flow: Flow) -> None:
        site_id = flow.ready_site()
        serial = flow.ship()
        first = flow.sell_ticket(sold_on="2025-11-10")  # 2025-12-01 … 2026-12-31; today is 2026-11-20
        flow.register(site_id, first, serial)
        renewal = renew(flow, serial)
        listed = flow.client.get(f"/v1/sites/{site_id}/registrations").json()
        tickets = listed["tickets"]
        assert [(t["ticket_id"], t["kind"], t["status"]) for t in tickets] == [
            (first["ticket_id"], "new", "active"),
            (renewal["renewal_ticket_ids"][0], "renewal", "future"),
        ]
        assert tickets[0]["ending_soon"] is True  # 41 days left
        assert tickets[1]["period"] == {"start": "2027-01-01", "end": "2027-12-31"}
        assert [t["renewal_open"] for t in tickets] == [False, False]  # renewed: the next window is in 2027
        (registration,) = listed["registrations"]
        assert registration["period"] == {"start": "2027-01-01", "end": "2027-12-31"}
        assert registration["status"] == "active" and registration["ending_soon"] is False

    def test_expired_ticket_is_listed_after_the_active_ones_with_renewal_open(self, flow: Flow) -> None:
        site_id = flow.ready_site()
        expired, active = flow.ship(), flow.ship()
        flow.register(site_id, flow.sell_ticket(sold_on="2025-08-20"), expired)  # ended 2026-09-30
        flow.register(site_id, flow.sell_ticket(sold_on="2026-11-10"), active)  # starts 2026-12-01
        tickets = flow.client.get(f"/v1/sites/{site_id}/registrations").json()["tickets"]
        assert [(t["serial"], t["status"], t["renewal_open"]) for t in tickets] == [
            (active, "future", False),
            (expired, "expired_renewable", True),
        ]

    def test_M1_new_registration_waits_for_service_in_until_its_deadline(self, flow: Flow) -> None:
        site_id = flow.ready_site()
        serial = flow.ship()
        flow.register(site_id, flow.sell_ticket(), serial)  # Friday 2026-11-20; Monday 23rd is a holiday
        (ticket,) = flow.client.get(f"/v1/sites/{site_id}/registrations").json()["tickets"]
        assert ticket["service_in"]["deadline"] == "2026-11-27"
        assert ticket["service_in"]["state"] in {"waiting", "notified"}

    def test_unknown_site_is_404(self, flow: Flow) -> None:
        response = flow.client.get("/v1/sites/00000000-0000-0000-0000-000000000000/registrations")
        assert_problem(response, 404, "SITE_NOT_FOUND")


class TestCallCenterLookup:
    def test_lookup_by_ticket_id_finds_the_registration_with_site_and_contacts(self, flow: Flow) -> None:
        site_id = flow.ready_site()
        serial = flow.ship()
        ticket = flow.sell_ticket()
        flow.register(site_id, ticket, serial)
        found = flow.client.get(f"/v1/tickets/{ticket['ticket_id']}/registration").json()
        assert found["serial"] == serial and found["ticket_id"] == ticket["ticket_id"]
        assert found["user_name"] == "山田 太郎"
        assert found["site"]["name"] == "東京本社"
        assert found["site"]["address"] == "東京都千代田区千代田1-1サンプルビル3F"
        assert found["fault_contacts"][0]["mail1"] == "noc@example.co.jp"

    def test_renewal_ticket_finds_the_same_registration(self, flow: Flow) -> None:
        site_id = flow.ready_site()
        serial = flow.ship()
        flow.register(site_id, flow.sell_ticket(sold_on="2025-11-10"), serial)
        renewal_ticket = renew(flow, serial)["renewal_ticket_ids"][0]
        assert flow.client.get(f"/v1/tickets/{renewal_ticket}/registration").json()["serial"] == serial

    def test_unused_ticket_is_404(self, flow: Flow) -> None:
        ticket = flow.sell_ticket()
        response = flow.client.get(f"/v1/tickets/{ticket['ticket_id']}/registration")
        assert_problem(response, 404, "TICKET_NOT_REGISTERED")

    def test_contact_changes_show_in_the_lookup(self, flow: Flow) -> None:
        company = flow.company()
        site_id = flow.site(company["company_id"])["site_id"]
        contact = flow.fault_contact(site_id)
        serial = flow.ship()
        flow.register(site_id, flow.sell_ticket(), serial)
        flow.client.patch(f"/v1/fault-contacts/{contact['contact_id']}", json={"mail1": "new-noc@example.co.jp"})
        flow.client.patch(f"/v1/companies/{company['company_id']}", json={"name": "新社名株式会社"})
        found = flow.client.get(f"/v1/registrations/{serial}").json()
        assert found["fault_contacts"][0]["mail1"] == "new-noc@example.co.jp"
        assert found["company_name"] == "新社名株式会社"


class TestEntitlements:
    def test_each_serial_is_covered_not_covered_or_unknown(self, flow: Flow) -> None:
        site_id = flow.ready_site()
        covered, expired, unregistered = flow.ship(), flow.ship(), flow.ship()
        flow.register(site_id, flow.sell_ticket(sold_on="2026-01-15"), covered)  # 2026-02-01 … 2027-02-28
        flow.register(site_id, flow.sell_ticket(sold_on="2025-08-20"), expired)  # … 2026-09-30
        body = {"serials": [f"S/N:{covered.lower()} A", expired, unregistered, "NOSUCHSERIAL9999"]}
        results = flow.post("/v1/entitlements/check", body, expect=200)["results"]
        assert [(r["normalised_serial"], r["status"], r["end"]) for r in results] == [
            (covered, "covered", "2027-02-28"),
            (expired, "not_covered", "2026-09-30"),
            (unregistered, "not_covered", None),
            ("NOSUCHSERIAL9999", "unknown", None),
        ]
        assert results[0]["service"] == "デリバリースタンダード"

    def test_bundle_options_are_covered_with_their_bundle(self, flow: Flow) -> None:
        site_id = flow.ready_site()
        option = next_serial("OP")
        bundle = flow.ship(code_no="67890-01", model="AT-x930", bundle={
            "service": "デリバリースタンダード", "term_years": 5, "sold_on": "2026-10-05",
            "ticket_model": "AT-x930-NCD5", "options": [{"serial": option, "code_no": "67890-10", "model": "PWR"}],
        })
        flow.post(f"/v1/sites/{site_id}/bundles", {"serial": bundle, "option_serials": [option]})
        (result,) = flow.post("/v1/entitlements/check", {"serials": [option]}, expect=200)["results"]
        assert (result["status"], result["registration_serial"], result["end"]) == ("covered", bundle, "2032-01-31")

    def test_more_than_100_serials_are_refused(self, flow: Flow) -> None:
        response = flow.client.post("/v1/entitlements/check", json={"serials": ["X"] * 101})
        assert_problem(response, 422, "VALIDATION_ERROR")


class TestInquiryCheck:
    def test_Q1_fault_contact_calling_about_the_contract_is_a_party(self, flow: Flow) -> None:
        company = flow.company()
        site_id = flow.site(company["company_id"])["site_id"]
        flow.fault_contact(site_id)
        body = {"contract_number": company["contract_number"], "email": "NOC@example.co.jp"}
        answer = flow.post("/v1/inquiries/check", body, expect=200)
        assert answer["is_party"] is True
        assert {"role": "fault_contact", "field": "email"} in answer["matched"]

    def test_Q1_stranger_is_not_a_party(self, flow: Flow) -> None:
        company = flow.company()
        body = {"contract_number": company["contract_number"], "phone": "06-9999-0000", "company": "他社株式会社"}
        assert flow.post("/v1/inquiries/check", body, expect=200) == {
            "contract_number": company["contract_number"], "is_party": False, "matched": [],
        }

    def test_Q1_registrant_asking_about_a_serial_is_a_party_by_phone(self, flow: Flow) -> None:
        site_id = flow.ready_site()
        serial = flow.ship()
        flow.register(site_id, flow.sell_ticket(), serial)
        answer = flow.post("/v1/inquiries/check", {"serial": serial, "phone": "0312345678"}, expect=200)
        assert answer["is_party"] is True
        assert {"role": "registrant", "field": "phone"} in answer["matched"]

    def test_Q1_check_needs_a_contract_and_a_caller(self, flow: Flow) -> None:
        response = flow.client.post("/v1/inquiries/check", json={"email": "a@example.co.jp"})
        assert_problem(response, 422, "INQUIRY_TARGET_MISSING")

    def test_Q1_unknown_contract_is_404(self, flow: Flow) -> None:
        response = flow.client.post("/v1/inquiries/check", json={"contract_number": "SU00000000", "email": "a@b.jp"})
        assert_problem(response, 404, "CONTRACT_NOT_FOUND")


class TestReadYourWrites:
    def test_every_command_answers_its_log_position_and_reads_wait_for_it(self, flow: Flow) -> None:
        site_id = flow.ready_site()
        serial = flow.ship()
        response = flow.client.post(f"/v1/sites/{site_id}/registrations", json={**flow.sell_ticket(), "serial": serial})
        position = int(response.headers["X-Log-Position"])
        found = flow.client.get(f"/v1/registrations/{serial}", params={"min_position": position})
        assert found.status_code == 200 and found.json()["serial"] == serial

    def test_a_position_not_reached_in_time_is_503(self, store_settings, clock) -> None:  # noqa: ANN001
        # No runner in this process: a position a command answered is never reached.
        settings = store_settings.model_copy(update={"read_wait_seconds": 0.2, "run_projections": False})
        with TestClient(create_app(settings, clock=clock)) as client:
            client.headers.update(bearer(api_key(client)))
            shipped = client.post("/v1/shipments", json={"serial": "SN0000000000WAIT", "code_no": "12345-01",
                                                         "model": "AT-x510-28GTX", "shipped_on": "2026-11-02"})
            position = int(shipped.headers["X-Log-Position"])
            response = client.get("/v1/dashboards/expiry", params={"min_position": position})
        assert_problem(response, 503, "READ_MODEL_BEHIND")

    def test_only_so_many_reads_wait_at_once_the_others_answer_503_with_retry_after_at_once(
        self, store_settings, clock  # noqa: ANN001
    ) -> None:
        """Issue 11: each waiting read holds a server thread; 100 of them starved the POSTs. Past
        LIFECYCLE_READ_WAITERS_MAX the others are told to come back, and commands go on."""
        from concurrent.futures import ThreadPoolExecutor

        settings = store_settings.model_copy(
            update={"read_wait_seconds": 3, "read_waiters_max": 2, "run_projections": False}
        )
        with TestClient(create_app(settings, clock=clock)) as client:
            client.headers.update(bearer(api_key(client)))
            shipped = client.post("/v1/shipments", json={"serial": "SN00000000WAITER", "code_no": "12345-01",
                                                         "model": "AT-x510-28GTX", "shipped_on": "2026-11-02"})
            position = int(shipped.headers["X-Log-Position"])

            def read() -> tuple[float, Any]:
                started = time.monotonic()
                response = client.get("/v1/dashboards/expiry", params={"min_position": position})
                return time.monotonic() - started, response

            with ThreadPoolExecutor(6) as pool:
                reads = [pool.submit(read) for _ in range(6)]
                time.sleep(0.5)  # the waiters are waiting now: a command still goes through at once
                started = time.monotonic()
                ship = client.post("/v1/shipments", json={"serial": "SN00000000WAITED", "code_no": "12345-01",
                                                          "model": "AT-x510-28GTX", "shipped_on": "2026-11-02"})
                command_seconds = time.monotonic() - started
                answers = [r.result() for r in reads]
        assert ship.status_code == 201 and command_seconds < 1
        for _, response in answers:
            assert_problem(response, 503, "READ_MODEL_BEHIND")
        waited = [seconds for seconds, _ in answers if seconds >= 2.5]
        turned_away = [response for seconds, response in answers if seconds < 1]
        assert len(waited) == 2 and len(turned_away) == 4
        assert all(response.headers["Retry-After"] == "1" for response in turned_away)

    def test_a_retried_command_answers_the_first_position(self, flow: Flow, clock) -> None:  # noqa: ANN001
        headers = {"Idempotency-Key": "position-1"}
        body = {"serial": next_serial(), "code_no": "1", "model": "m", "shipped_on": "2026-01-01"}
        first = flow.client.post("/v1/shipments", json=body, headers=headers)
        flow.ship()
        clock.set(datetime(2026, 11, 21, tzinfo=TOKYO))
        again = flow.client.post("/v1/shipments", json=body, headers=headers)
        assert again.headers["X-Log-Position"] == first.headers["X-Log-Position"]
