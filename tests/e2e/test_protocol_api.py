"""The HTTP contract's cross-cutting promises: problem+json for every refusal,
Idempotency-Key, history, and nothing lost across a restart."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from fastapi.testclient import TestClient

from api.app import create_app
from tests.e2e.conftest import api_key, assert_problem, bearer
from tests.scenario import Flow


class TestProblems:
    def test_malformed_json_is_a_problem_not_a_500(self, flow: Flow) -> None:
        response = flow.client.post(
            "/v1/tickets", content=b'{"ticket_id": ', headers={"content-type": "application/json"}
        )
        assert_problem(response, 422, "MALFORMED_JSON")

    def test_wrong_types_and_unknown_fields_are_schema_errors(self, flow: Flow) -> None:
        response = flow.client.post("/v1/tickets", json={"ticket_id": 12345678, "term_years": "one"})
        body = assert_problem(response, 422, "VALIDATION_ERROR")
        assert {tuple(e["loc"]) for e in body["errors"]} >= {("body", "term_years"), ("body", "sold_on")}
        response = flow.client.post(f"/v1/sites/{flow.ready_site()}/registrations",
                                    json={"ticket_id": "1", "verification_code": "x", "serial": "y", "extra": 1})
        assert_problem(response, 422, "VALIDATION_ERROR")

    def test_body_that_is_not_an_object_is_a_schema_error(self, flow: Flow) -> None:
        assert_problem(flow.client.post("/v1/shipments", json=[1, 2]), 422, "VALIDATION_ERROR")

    def test_unknown_path_and_method_are_problems(self, flow: Flow) -> None:
        assert_problem(flow.client.get("/v1/nothing-here"), 404, "NOT_FOUND")
        assert_problem(flow.client.delete("/v1/tickets"), 405, "METHOD_NOT_ALLOWED")

    def test_malformed_id_in_the_path_is_404(self, flow: Flow) -> None:
        assert_problem(flow.client.get("/v1/sites/not-a-uuid"), 404, "RESOURCE_NOT_FOUND")

    def test_openapi_documents_the_contract_with_examples(self, flow: Flow) -> None:
        spec = flow.client.get("/openapi.json").json()
        for path in ("/v1/shipments", "/v1/tickets", "/v1/accounts", "/v1/accounts/verify", "/v1/companies",
                     "/v1/companies/{company_id}/sites", "/v1/sites/{site_id}/fault-contacts",
                     "/v1/sites/{site_id}/registrations", "/v1/sites/{site_id}/bundles",
                     "/v1/registrations/{serial}/renewals", "/v1/registrations/{serial}",
                     "/v1/contracts/{contract_number}/history", "/v1/postal-codes/{code}"):
            assert path in spec["paths"], path
        assert spec["components"]["schemas"]["TicketRegistrationCreate"]["examples"]
        assert flow.client.get("/docs").status_code == 200


class TestIdempotency:
    def test_retry_with_the_same_key_returns_the_first_answer_and_changes_nothing(self, flow: Flow) -> None:
        site_id = flow.ready_site()
        ticket, serial = flow.sell_ticket(), flow.ship()
        headers = {"Idempotency-Key": "reg-1"}
        first = flow.client.post(f"/v1/sites/{site_id}/registrations", json={**ticket, "serial": serial}, headers=headers)
        again = flow.client.post(f"/v1/sites/{site_id}/registrations", json={**ticket, "serial": serial}, headers=headers)
        assert first.status_code == again.status_code == 201
        assert again.json() == first.json()
        contract = first.json()["contract_number"]
        types = [e["type"] for e in flow.client.get(f"/v1/contracts/{contract}/history").json()["events"]]
        assert types.count("TicketRegistered") == 1

    def test_same_key_with_another_body_is_refused(self, flow: Flow) -> None:
        headers = {"Idempotency-Key": "ship-1"}
        body = {"serial": "KEYTEST000000001", "code_no": "12345", "model": "m", "shipped_on": "2026-01-01"}
        assert flow.client.post("/v1/shipments", json=body, headers=headers).status_code == 201
        response = flow.client.post("/v1/shipments", json={**body, "serial": "KEYTEST000000002"}, headers=headers)
        assert_problem(response, 422, "IDEMPOTENCY_KEY_REUSED")
        assert_problem(flow.client.get("/v1/registrations/KEYTEST000000002"), 404, "SERIAL_NOT_FOUND")

    def test_a_refusal_is_the_first_answer_too(self, flow: Flow) -> None:
        site_id = flow.ready_site()
        ticket = flow.sell_ticket()
        body = {**ticket, "serial": "LATESHIPPED00001"}
        headers = {"Idempotency-Key": "reg-refused"}
        first = flow.client.post(f"/v1/sites/{site_id}/registrations", json=body, headers=headers)
        assert_problem(first, 422, "SERIAL_NOT_FOUND")
        flow.ship(serial="LATESHIPPED00001")
        again = flow.client.post(f"/v1/sites/{site_id}/registrations", json=body, headers=headers)
        assert again.json() == first.json()
        # Without the key, the command runs again on today's state.
        assert flow.client.post(f"/v1/sites/{site_id}/registrations", json=body).status_code == 201

    def test_concurrent_retries_with_one_key_register_once(self, flow: Flow) -> None:
        site_id = flow.ready_site()
        body = {**flow.sell_ticket(), "serial": flow.ship()}

        def post(_: int):  # noqa: ANN202
            return flow.client.post(f"/v1/sites/{site_id}/registrations", json=body, headers={"Idempotency-Key": "k"})

        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(post, range(4)))
        assert {a.status_code for a in answers} == {201}
        assert len({a.text for a in answers}) == 1


class TestRestart:
    def test_nothing_is_lost_across_a_restart(self, store_settings, clock) -> None:  # noqa: ANN001
        with TestClient(create_app(store_settings, clock=clock)) as client:
            key = api_key(client)  # the same caller after the restart: its idempotency keys are its own
            client.headers.update(bearer(key))
            flow = Flow(client, client.app.state.application)
            site_id = flow.ready_site()
            ticket, serial = flow.sell_ticket(), flow.ship()
            registration = flow.register(site_id, ticket, serial)
            shipped = flow.client.post("/v1/shipments", headers={"Idempotency-Key": "restart-key"},
                                       json={"serial": "RESTART000000001", "code_no": "1", "model": "m",
                                             "shipped_on": "2026-01-01"}).json()
        with TestClient(create_app(store_settings, clock=clock)) as client:
            client.headers.update(bearer(key))
            assert client.get(f"/v1/registrations/{serial}").json()["period"] == registration["period"]
            listed = client.get(f"/v1/sites/{site_id}/registrations").json()["registrations"]
            assert [r["serial"] for r in listed] == [serial]
            response = client.post(f"/v1/sites/{site_id}/registrations", json={**ticket, "serial": serial})
            assert_problem(response, 409, "TICKET_ALREADY_REGISTERED")
            replay = client.post("/v1/shipments", headers={"Idempotency-Key": "restart-key"},
                                 json={"serial": "RESTART000000001", "code_no": "1", "model": "m",
                                       "shipped_on": "2026-01-01"})
            assert replay.status_code == 201 and replay.json() == shipped


class TestHistory:
    def test_history_lists_every_event_of_the_contract_in_order(self, flow: Flow) -> None:
        company = flow.company()
        site = flow.site(company["company_id"])
        contact = flow.fault_contact(site["site_id"])
        flow.client.patch(f"/v1/fault-contacts/{contact['contact_id']}", json={"person": "田中"})
        serial = flow.ship()
        flow.register(site["site_id"], flow.sell_ticket(sold_on="2025-11-10"), serial)
        flow.client.post(f"/v1/registrations/{serial}/renewals", json=flow.sell_ticket(kind="renewal"))
        history = flow.client.get(f"/v1/contracts/{company['contract_number']}/history").json()
        types = [e["type"] for e in history["events"]]
        assert types == ["CompanyRegistered", "SiteAdded", "FaultContactAdded", "ContactChanged",
                         "TicketRegistered", "Renewed"]
        assert [e["version"] for e in history["events"]] == [1, 2, 3, 4, 5, 6]
        registered = history["events"][4]
        assert registered["data"]["serial"] == serial
        assert registered["data"]["period"] == {"start": "2025-12-01", "end": "2026-12-31"}
        assert history["events"][3]["data"]["changes"] == {"person": "田中"}
        assert all("+" in e["timestamp"] or e["timestamp"].endswith("Z") for e in history["events"])

    def test_history_of_an_unknown_contract_is_404(self, flow: Flow) -> None:
        assert_problem(flow.client.get("/v1/contracts/SU00000000/history"), 404, "CONTRACT_NOT_FOUND")


class TestConcurrentRegistrations:
    def test_T6_two_concurrent_registrations_of_one_ticket_give_one_success_and_one_409(self, flow: Flow) -> None:
        site_id = flow.ready_site()
        for _ in range(5):
            ticket = flow.sell_ticket()
            serials = [flow.ship(), flow.ship()]
            with ThreadPoolExecutor(2) as pool:
                answers = list(pool.map(
                    lambda s: flow.client.post(f"/v1/sites/{site_id}/registrations", json={**ticket, "serial": s}),
                    serials))
            assert sorted(a.status_code for a in answers) == [201, 409]
            assert [a.json()["code"] for a in answers if a.status_code == 409] == ["TICKET_ALREADY_REGISTERED"]

    def test_T7_two_concurrent_registrations_of_one_unit_give_one_success_and_one_409(self, flow: Flow) -> None:
        sites = [flow.ready_site(), flow.ready_site()]
        for _ in range(5):
            serial = flow.ship()
            tickets = [flow.sell_ticket(), flow.sell_ticket()]
            with ThreadPoolExecutor(2) as pool:
                answers = list(pool.map(
                    lambda pair: flow.client.post(f"/v1/sites/{pair[0]}/registrations", json={**pair[1], "serial": serial}),
                    zip(sites, tickets)))
            assert sorted(a.status_code for a in answers) == [201, 409]
            assert [a.json()["code"] for a in answers if a.status_code == 409] == ["UNIT_ALREADY_REGISTERED"]
