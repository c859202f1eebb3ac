"""The seed's flow over HTTP, on SQLite and on PostgreSQL: every rule and every refusal."""

from __future__ import annotations

from datetime import datetime

from lifecycle.domain.dates import TOKYO
from tests.e2e.conftest import assert_problem
from tests.scenario import Flow, next_serial, next_ticket_id


class TestNewTicket:
    def test_P1_period_starts_the_month_after_the_sale_and_lasts_13_months(self, flow: Flow) -> None:
        site_id = flow.ready_site()
        serial = flow.ship()
        ticket = flow.sell_ticket(sold_on="2026-11-10", term_years=1)
        registration = flow.register(site_id, ticket, serial)
        assert registration["period"] == {"start": "2026-12-01", "end": "2027-12-31"}
        assert registration["serial"] == serial
        assert registration["ticket_id"] == ticket["ticket_id"]
        assert registration["model"] == "AT-x510-28GTX"

    def test_P1_five_year_ticket_lasts_63_months(self, flow: Flow) -> None:
        site_id = flow.ready_site()
        registration = flow.register(site_id, flow.sell_ticket(sold_on="2026-01-31", term_years=5), flow.ship())
        assert registration["period"] == {"start": "2026-02-01", "end": "2031-04-30"}

    def test_P2_late_registration_does_not_extend_the_period(self, flow: Flow, clock) -> None:  # noqa: ANN001
        site_id = flow.ready_site()
        ticket = flow.sell_ticket(sold_on="2026-03-15")
        clock.set(datetime(2026, 11, 20, 10, tzinfo=TOKYO))
        registration = flow.register(site_id, ticket, flow.ship())
        assert registration["period"] == {"start": "2026-04-01", "end": "2027-04-30"}
        assert registration["registered_on"] == "2026-11-20"

    def test_P4_ticket_whose_period_ended_can_be_registered_and_shows_expired(self, flow: Flow) -> None:
        site_id = flow.ready_site()
        registration = flow.register(site_id, flow.sell_ticket(sold_on="2025-08-20"), flow.ship())
        assert registration["period"]["end"] == "2026-09-30"
        assert registration["status"] == "expired_renewable"
        assert registration["renewal_open"] is True

    def test_T2_printed_serial_with_label_revision_and_full_width_is_accepted(self, flow: Flow) -> None:
        site_id = flow.ready_site()
        flow.ship(serial="A1B2C3D4E5F6G7H8")
        printed = "Ｓ/Ｎ:ａ1ｂ2c3d4e5f6g7h8 ＡＢ"
        registration = flow.register(site_id, flow.sell_ticket(), printed)
        assert registration["serial"] == "A1B2C3D4E5F6G7H8"

    def test_T3_unknown_serial_is_E5(self, flow: Flow) -> None:
        site_id = flow.ready_site()
        response = flow.client.post(
            f"/v1/sites/{site_id}/registrations", json={**flow.sell_ticket(), "serial": "NOSUCHSERIAL0001"}
        )
        assert_problem(response, 422, "SERIAL_NOT_FOUND", "該当のシリアルは存在しません。")

    def test_T3_unknown_ticket_is_E4(self, flow: Flow) -> None:
        site_id = flow.ready_site()
        response = flow.client.post(
            f"/v1/sites/{site_id}/registrations",
            json={"ticket_id": "99999999", "verification_code": "X", "serial": flow.ship()},
        )
        assert_problem(response, 422, "NOT_IN_SHIPMENT_HISTORY", "出荷履歴にありません。")

    def test_T3_wrong_verification_code_is_E4(self, flow: Flow) -> None:
        site_id = flow.ready_site()
        ticket = flow.sell_ticket()
        response = flow.client.post(
            f"/v1/sites/{site_id}/registrations",
            json={"ticket_id": ticket["ticket_id"], "verification_code": "WRONG", "serial": flow.ship()},
        )
        assert_problem(response, 422, "NOT_IN_SHIPMENT_HISTORY", "出荷履歴にありません。")

    def test_T4_ticket_for_another_product_is_refused(self, flow: Flow) -> None:
        site_id = flow.ready_site()
        serial = flow.ship(code_no="54321-01")
        ticket = flow.sell_ticket(code_no="12345-99")
        response = flow.client.post(f"/v1/sites/{site_id}/registrations", json={**ticket, "serial": serial})
        assert_problem(response, 422, "PRODUCT_CODE_MISMATCH")
        # Nothing was used up: the same ticket registers on its own product, and the unit
        # takes a ticket that fits it.
        own_product = flow.ship(code_no="12345-01")
        assert flow.register(site_id, ticket, own_product)["serial"] == own_product
        assert flow.register(site_id, flow.sell_ticket(code_no="54321-77"), serial)["serial"] == serial

    def test_T5_renewal_ticket_cannot_start_a_new_coverage(self, flow: Flow) -> None:
        site_id = flow.ready_site()
        response = flow.client.post(
            f"/v1/sites/{site_id}/registrations", json={**flow.sell_ticket(kind="renewal"), "serial": flow.ship()}
        )
        assert_problem(response, 422, "TICKET_KIND_MISMATCH")

    def test_T5_seven_year_or_other_service_is_not_a_new_ticket(self, flow: Flow) -> None:
        site_id = flow.ready_site()
        for ticket in (flow.sell_ticket(term_years=7), flow.sell_ticket(service="オンサイト")):
            response = flow.client.post(
                f"/v1/sites/{site_id}/registrations", json={**ticket, "serial": flow.ship()}
            )
            assert_problem(response, 422, "TICKET_NOT_ELIGIBLE")

    def test_T6_ticket_is_registered_once(self, flow: Flow) -> None:
        site_id = flow.ready_site()
        ticket = flow.sell_ticket()
        flow.register(site_id, ticket, flow.ship())
        response = flow.client.post(f"/v1/sites/{site_id}/registrations", json={**ticket, "serial": flow.ship()})
        assert_problem(response, 409, "TICKET_ALREADY_REGISTERED")

    def test_T6_no_route_reissues_a_used_ticket(self, flow: Flow) -> None:
        """Every write route that names a ticket, in its path or its body, either records a
        sale (refusing a ticket ID already recorded) or uses a ticket up (refusing a used
        one): a used ticket gets no second life through any route."""
        document = flow.client.get("/openapi.json").json()
        schemas = document["components"]["schemas"]

        def names_ticket(operation: dict, path: str) -> bool:
            ref = (operation.get("requestBody", {}).get("content", {}).get("application/json", {})
                   .get("schema", {}).get("$ref", ""))
            fields = schemas.get(ref.rsplit("/", 1)[-1], {}).get("properties", {}) if ref else {}
            return "ticket_id" in fields or "{ticket_id}" in path

        writes = sorted(
            (method.upper(), path)
            for path, item in document["paths"].items()
            for method, operation in item.items()
            if method in ("post", "put", "patch", "delete") and names_ticket(operation, path)
        )
        assert writes == [
            ("POST", "/v1/registrations/{serial}/renewals"),
            ("POST", "/v1/sites/{site_id}/registrations"),
            ("POST", "/v1/tickets"),
        ]
        site_id = flow.ready_site()
        used = flow.sell_ticket()
        flow.register(site_id, used, flow.ship())
        again = flow.client.post("/v1/tickets", json={
            "ticket_id": used["ticket_id"], "verification_code": "NEWCODE", "code_no": "12345-99",
            "service": "デリバリースタンダード", "term_years": 1, "kind": "new", "sold_on": "2026-11-10",
        })
        assert_problem(again, 409, "TICKET_ALREADY_RECORDED")
        assert_problem(flow.client.post(f"/v1/sites/{site_id}/registrations", json={**used, "serial": flow.ship()}),
                       409, "TICKET_ALREADY_REGISTERED")
        renewal = flow.sell_ticket(kind="renewal")
        covered = flow.ship()
        flow.register(site_id, flow.sell_ticket(sold_on="2025-11-10"), covered)  # ends 2026-12-31: renewable now
        assert flow.client.post(f"/v1/registrations/{covered}/renewals", json=renewal).status_code == 201
        assert_problem(flow.client.post(f"/v1/registrations/{covered}/renewals", json=renewal),
                       409, "TICKET_ALREADY_REGISTERED")

    def test_T7_unit_is_covered_at_one_site_at_a_time(self, flow: Flow) -> None:
        serial = flow.ship()
        flow.register(flow.ready_site(), flow.sell_ticket(), serial)
        other_site = flow.ready_site()
        response = flow.client.post(
            f"/v1/sites/{other_site}/registrations", json={**flow.sell_ticket(), "serial": serial}
        )
        assert_problem(response, 409, "UNIT_ALREADY_REGISTERED")

    def test_T8_every_product_needs_its_own_registration(self, flow: Flow) -> None:
        site_id = flow.ready_site()
        body = flow.ship(code_no="12345-01")
        module = flow.ship(code_no="12345-02", model="AT-StackXG")
        flow.register(site_id, flow.sell_ticket(), body)
        response = flow.client.get(f"/v1/registrations/{module}")
        assert_problem(response, 404, "NOT_REGISTERED")
        flow.register(site_id, flow.sell_ticket(), module)
        listed = flow.client.get(f"/v1/sites/{site_id}/registrations").json()["registrations"]
        assert sorted(r["serial"] for r in listed) == sorted([body, module])

    def test_S5_site_without_fault_contact_cannot_register(self, flow: Flow) -> None:
        company = flow.company()
        site_id = flow.site(company["company_id"])["site_id"]
        response = flow.client.post(
            f"/v1/sites/{site_id}/registrations", json={**flow.sell_ticket(), "serial": flow.ship()}
        )
        assert_problem(response, 409, "FAULT_CONTACT_REQUIRED")

    def test_S5_a_site_without_fault_contact_is_refused_before_its_serial_is_looked_up(self, flow: Flow) -> None:
        """S-5 comes first: a registration at a site with no fault contact is refused for that,
        whatever else is wrong with it (here a serial that was never shipped, E5)."""
        company = flow.company()
        site_id = flow.site(company["company_id"])["site_id"]
        unknown = next_serial()
        ticket = flow.client.post(f"/v1/sites/{site_id}/registrations", json={**flow.sell_ticket(), "serial": unknown})
        assert_problem(ticket, 409, "FAULT_CONTACT_REQUIRED")
        bundle = flow.client.post(f"/v1/sites/{site_id}/bundles", json={"serial": unknown, "option_serials": []})
        assert_problem(bundle, 409, "FAULT_CONTACT_REQUIRED")
        flow.fault_contact(site_id)  # the same request at a ready site: now the serial is what is wrong
        ticket = flow.client.post(f"/v1/sites/{site_id}/registrations", json={**flow.sell_ticket(), "serial": unknown})
        assert_problem(ticket, 422, "SERIAL_NOT_FOUND")

    def test_unknown_site_is_404(self, flow: Flow) -> None:
        response = flow.client.post(
            "/v1/sites/00000000-0000-0000-0000-000000000000/registrations",
            json={**flow.sell_ticket(), "serial": flow.ship()},
        )
        assert_problem(response, 404, "SITE_NOT_FOUND")


class TestBundles:
    def bundle(self, flow: Flow, options: int = 2, sold_on: str = "2026-10-05", term_years: int = 5) -> tuple[str, list[str]]:
        option_serials = [next_serial("OP") for _ in range(options)]
        serial = flow.ship(
            code_no="67890-01",
            model="AT-x930-28GTX",
            bundle={
                "service": "デリバリースタンダード",
                "term_years": term_years,
                "sold_on": sold_on,
                "ticket_model": "AT-x930-28GTX-NCD5",
                "options": [
                    {"serial": s, "code_no": "67890-10", "model": "AT-PWR1200"} for s in option_serials
                ],
            },
        )
        return serial, option_serials

    def test_B1_B3_bundle_is_registered_by_serial_and_shows_its_ticket_model(self, flow: Flow) -> None:
        site_id = flow.ready_site()
        serial, options = self.bundle(flow)
        registration = flow.post(f"/v1/sites/{site_id}/bundles", {"serial": serial, "option_serials": options})
        assert registration["kind"] == "bundle"
        assert registration["ticket_model"] == "AT-x930-28GTX-NCD5"
        assert registration["ticket_id"] is None
        assert sorted(registration["option_serials"]) == sorted(options)

    def test_P3_bundle_period_follows_its_sale_date_and_term(self, flow: Flow) -> None:
        site_id = flow.ready_site()
        serial, options = self.bundle(flow, sold_on="2026-10-05", term_years=5)
        registration = flow.post(f"/v1/sites/{site_id}/bundles", {"serial": serial, "option_serials": options})
        assert registration["period"] == {"start": "2026-11-01", "end": "2032-01-31"}

    def test_B1_unknown_serial_is_E5(self, flow: Flow) -> None:
        site_id = flow.ready_site()
        response = flow.client.post(f"/v1/sites/{site_id}/bundles", json={"serial": "NOSUCHBUNDLE0001"})
        assert_problem(response, 422, "SERIAL_NOT_FOUND", "該当のシリアルは存在しません。")

    def test_B1_unit_that_is_not_a_bundle_is_refused(self, flow: Flow) -> None:
        site_id = flow.ready_site()
        response = flow.client.post(f"/v1/sites/{site_id}/bundles", json={"serial": flow.ship()})
        assert_problem(response, 422, "NOT_A_BUNDLE")

    def test_B2_missing_option_serials_are_refused_by_name(self, flow: Flow) -> None:
        site_id = flow.ready_site()
        serial, options = self.bundle(flow)
        response = flow.client.post(
            f"/v1/sites/{site_id}/bundles", json={"serial": serial, "option_serials": options[:1]}
        )
        body = assert_problem(response, 422, "BUNDLE_OPTIONS_MISSING")
        assert body["serials"] == options[1:]
        assert options[1] in body["detail"]

    def test_B2_wrong_option_serials_are_refused_by_name(self, flow: Flow) -> None:
        site_id = flow.ready_site()
        serial, options = self.bundle(flow)
        stranger = flow.ship()
        response = flow.client.post(
            f"/v1/sites/{site_id}/bundles", json={"serial": serial, "option_serials": [options[0], stranger]}
        )
        body = assert_problem(response, 422, "BUNDLE_OPTIONS_INVALID")
        assert body["serials"] == [stranger]

    def test_B2_each_option_is_covered_and_found_by_its_own_serial(self, flow: Flow) -> None:
        site_id = flow.ready_site()
        serial, options = self.bundle(flow)
        flow.post(f"/v1/sites/{site_id}/bundles", {"serial": serial, "option_serials": options})
        found = flow.client.get(f"/v1/registrations/{options[1]}").json()
        assert found["serial"] == serial
        assert found["looked_up_serial"] == options[1]
        response = flow.client.post(
            f"/v1/sites/{flow.ready_site()}/registrations",
            json={**flow.sell_ticket(code_no="67890-99"), "serial": options[0]},
        )
        assert_problem(response, 409, "UNIT_ALREADY_REGISTERED")


class TestRenewal:
    def registered(self, flow: Flow, sold_on: str = "2025-11-10") -> tuple[str, str]:
        site_id = flow.ready_site()
        serial = flow.ship()
        flow.register(site_id, flow.sell_ticket(sold_on=sold_on), serial)  # 2025-12-01 … 2026-12-31
        return site_id, serial

    def renew(self, flow: Flow, serial: str, ticket: dict[str, str]):  # noqa: ANN201
        return flow.client.post(f"/v1/registrations/{serial}/renewals", json=ticket)

    def test_R3_renewal_continues_without_a_gap(self, flow: Flow) -> None:
        _, serial = self.registered(flow)
        response = self.renew(flow, serial, flow.sell_ticket(kind="renewal", term_years=1, sold_on="2026-11-01"))
        assert response.status_code == 201, response.text
        assert response.json()["period"] == {"start": "2027-01-01", "end": "2027-12-31"}
        assert flow.client.get(f"/v1/registrations/{serial}").json()["period"]["end"] == "2027-12-31"

    def test_R3_five_year_renewal_is_60_months(self, flow: Flow) -> None:
        _, serial = self.registered(flow)
        response = self.renew(flow, serial, flow.sell_ticket(kind="renewal", term_years=5))
        assert response.json()["period"] == {"start": "2027-01-01", "end": "2031-12-31"}

    def test_R2_window_opens_3_months_before_the_end(self, flow: Flow, clock) -> None:  # noqa: ANN001
        _, serial = self.registered(flow)
        clock.set(datetime(2026, 9, 30, 23, 59, tzinfo=TOKYO))
        assert_problem(self.renew(flow, serial, flow.sell_ticket(kind="renewal")), 409, "RENEWAL_WINDOW_CLOSED")
        clock.set(datetime(2026, 10, 1, 0, 0, tzinfo=TOKYO))
        assert self.renew(flow, serial, flow.sell_ticket(kind="renewal")).status_code == 201

    def test_R2_window_closes_90_days_after_the_end(self, flow: Flow, clock) -> None:  # noqa: ANN001
        _, serial = self.registered(flow)
        clock.set(datetime(2027, 4, 1, 0, 0, tzinfo=TOKYO))
        body = assert_problem(self.renew(flow, serial, flow.sell_ticket(kind="renewal")), 409, "RENEWAL_WINDOW_CLOSED")
        assert body["window"] == {"opens": "2026-10-01", "closes": "2027-03-31"}
        clock.set(datetime(2027, 3, 31, 23, 59, tzinfo=TOKYO))
        response = self.renew(flow, serial, flow.sell_ticket(kind="renewal"))
        assert response.status_code == 201, response.text
        assert response.json()["period"] == {"start": "2027-01-01", "end": "2027-12-31"}

    def test_R1_renewal_needs_a_renewal_ticket(self, flow: Flow) -> None:
        _, serial = self.registered(flow)
        assert_problem(self.renew(flow, serial, flow.sell_ticket(kind="new")), 422, "TICKET_KIND_MISMATCH")

    def test_R1_renewal_ticket_for_another_product_is_refused(self, flow: Flow) -> None:
        _, serial = self.registered(flow)
        ticket = flow.sell_ticket(kind="renewal", code_no="99999-01")
        assert_problem(self.renew(flow, serial, ticket), 422, "PRODUCT_CODE_MISMATCH")

    def test_R1_unknown_renewal_ticket_is_E4(self, flow: Flow) -> None:
        _, serial = self.registered(flow)
        response = self.renew(flow, serial, {"ticket_id": "99999998", "verification_code": "X"})
        assert_problem(response, 422, "NOT_IN_SHIPMENT_HISTORY", "出荷履歴にありません。")

    def test_R1_renewal_of_an_unknown_serial_is_E5(self, flow: Flow) -> None:
        response = self.renew(flow, "NOSUCHSERIAL0002", flow.sell_ticket(kind="renewal"))
        assert_problem(response, 404, "SERIAL_NOT_FOUND", "該当のシリアルは存在しません。")

    def test_R1_renewal_of_an_unregistered_unit_is_refused(self, flow: Flow) -> None:
        response = self.renew(flow, flow.ship(), flow.sell_ticket(kind="renewal"))
        assert_problem(response, 404, "NOT_REGISTERED")

    def test_R1_renewal_ticket_is_used_once(self, flow: Flow) -> None:
        _, serial = self.registered(flow)
        ticket = flow.sell_ticket(kind="renewal")
        assert self.renew(flow, serial, ticket).status_code == 201
        _, other = self.registered(flow)
        assert_problem(self.renew(flow, other, ticket), 409, "TICKET_ALREADY_REGISTERED")

    def test_P2_period_cannot_be_changed_by_any_command(self, flow: Flow) -> None:
        """No request body of any route has a period or a date of the coverage in it, and a
        body that tries one is refused without changing the registration."""
        document = flow.client.get("/openapi.json").json()
        period_words = ("period", "start", "end", "covered")

        def fields_of(schema: dict, seen: set[str]) -> set[str]:
            if "$ref" in schema:
                name = schema["$ref"].rsplit("/", 1)[-1]
                if name in seen:
                    return set()
                return fields_of(document["components"]["schemas"][name], seen | {name})
            found = set(schema.get("properties", {}))
            inner = [*schema.get("properties", {}).values(), *schema.get("anyOf", [])]
            for nested in inner + ([schema["items"]] if "items" in schema else []):
                found |= fields_of(nested, seen)
            return found

        request_fields = {
            (path, method): fields_of(body.get("schema", {}), set())
            for path, item in document["paths"].items()
            for method, operation in item.items()
            for body in operation.get("requestBody", {}).get("content", {}).values()
        }
        assert request_fields, "the scan found no request bodies"
        offending = {k: sorted(f for f in v if any(w in f for w in period_words)) for k, v in request_fields.items()}
        assert {k: v for k, v in offending.items() if v} == {}
        site_id, serial = self.registered(flow)
        before = flow.client.get(f"/v1/registrations/{serial}").json()["period"]
        flow.client.patch(f"/v1/sites/{site_id}", json={"name": "大阪支店"})
        response = flow.client.patch(f"/v1/sites/{site_id}", json={"period": {"start": "2020-01-01"}})
        assert_problem(response, 422, "VALIDATION_ERROR")
        assert flow.client.get(f"/v1/registrations/{serial}").json()["period"] == before


class TestShipmentHistory:
    def test_shipment_recorded_twice_is_409(self, flow: Flow) -> None:
        serial = flow.ship()
        response = flow.client.post(
            "/v1/shipments", json={"serial": serial, "code_no": "1", "model": "m", "shipped_on": "2026-01-01"}
        )
        assert_problem(response, 409, "SHIPMENT_ALREADY_RECORDED")

    def test_ticket_recorded_twice_is_409(self, flow: Flow) -> None:
        ticket_id = next_ticket_id()
        body = {"ticket_id": ticket_id, "verification_code": "C", "code_no": "12345-99",
                "service": "デリバリースタンダード", "term_years": 1, "kind": "new", "sold_on": "2026-11-10"}
        assert flow.client.post("/v1/tickets", json=body).status_code == 201
        assert_problem(flow.client.post("/v1/tickets", json=body), 409, "TICKET_ALREADY_RECORDED")

    def test_ticket_term_must_be_1_5_or_7_years(self, flow: Flow) -> None:
        body = {"ticket_id": next_ticket_id(), "verification_code": "C", "code_no": "12345-99",
                "service": "デリバリースタンダード", "term_years": 3, "kind": "new", "sold_on": "2026-11-10"}
        assert_problem(flow.client.post("/v1/tickets", json=body), 422, "INVALID_TICKET_TERM")

    def test_ticket_id_has_8_digits(self, flow: Flow) -> None:
        body = {"ticket_id": "1234", "verification_code": "C", "code_no": "12345-99",
                "service": "デリバリースタンダード", "term_years": 1, "kind": "new", "sold_on": "2026-11-10"}
        assert_problem(flow.client.post("/v1/tickets", json=body), 422, "INVALID_TICKET_ID")

    def test_shipment_with_an_empty_serial_is_refused(self, flow: Flow) -> None:
        response = flow.client.post(
            "/v1/shipments", json={"serial": "S/N:", "code_no": "1", "model": "m", "shipped_on": "2026-01-01"}
        )
        assert_problem(response, 422, "INVALID_SERIAL")


class TestServiceUpgrade:
    def test_Q12_service_upgrade_is_an_internal_command_recorded_as_an_event(self, flow: Flow) -> None:
        site_id = flow.ready_site()
        serial = flow.ship()
        registration = flow.register(site_id, flow.sell_ticket(), serial)
        response = flow.client.post(
            f"/v1/registrations/{serial}/service-upgrades", json={"service": "オンサイトスタンダード", "reason": "営業対応"}
        )
        assert response.status_code == 201, response.text
        assert response.json()["service"] == "オンサイトスタンダード"
        assert response.json()["period"] == registration["period"]  # P-2: the period stays
        history = flow.client.get(f"/v1/contracts/{registration['contract_number']}/history").json()["events"]
        assert history[-1]["type"] == "ServiceLevelUpgraded"
        assert history[-1]["data"] == {"serial": serial, "service": "オンサイトスタンダード", "reason": "営業対応"}

    def test_Q12_upgrade_of_an_unregistered_unit_is_refused(self, flow: Flow) -> None:
        response = flow.client.post(f"/v1/registrations/{flow.ship()}/service-upgrades", json={"service": "X"})
        assert_problem(response, 404, "NOT_REGISTERED")


class TestReadsSeeTheWritesBeforeThem:
    """A read waits (bounded) until its read models show every change committed before it
    arrived: register, then read at once, with no min_position, shows the registration."""

    def test_a_registration_is_read_at_once_without_min_position(self, flow: Flow) -> None:
        site_id = flow.ready_site()
        client = flow.client
        client.event_hooks = {"request": [], "response": []}  # a plain client: no min_position
        for _ in range(5):
            serial = next_serial()
            client.post("/v1/shipments", json={"serial": serial, "code_no": "12345-01", "model": "AT-x510",
                                               "shipped_on": "2026-11-02"}).raise_for_status()
            ticket = flow.sell_ticket()
            client.post(f"/v1/sites/{site_id}/registrations", json={**ticket, "serial": serial}).raise_for_status()
            looked_up = client.get(f"/v1/registrations/{serial}")
            assert looked_up.status_code == 200, looked_up.text
            assert looked_up.json()["ticket_id"] == ticket["ticket_id"]
            listed = client.get(f"/v1/sites/{site_id}/registrations").json()["registrations"]
            assert serial in {r["serial"] for r in listed}

    def test_a_shipped_unit_without_registration_is_NOT_REGISTERED_not_E5(self, flow: Flow) -> None:
        client = flow.client
        client.event_hooks = {"request": [], "response": []}
        serial = next_serial()
        client.post("/v1/shipments", json={"serial": serial, "code_no": "12345-01", "model": "AT-x510",
                                           "shipped_on": "2026-11-02"}).raise_for_status()
        assert_problem(client.get(f"/v1/registrations/{serial}"), 404, "NOT_REGISTERED")
        assert_problem(client.get(f"/v1/registrations/{next_serial()}"), 404, "SERIAL_NOT_FOUND")

    def test_eventual_consistency_does_not_wait_for_the_read_models(self, flow: Flow) -> None:
        site_id = flow.ready_site()
        assert flow.client.get(f"/v1/sites/{site_id}/registrations").status_code == 200  # the site is shown
        runtime = flow.client.app.state.runtime
        for runner in runtime.read_models.runners.values():
            runner.request_stop()
            runner.join(10)
        client = flow.client
        client.event_hooks = {"request": [], "response": []}
        serial = flow.ship()
        client.post(f"/v1/sites/{site_id}/registrations", json={**flow.sell_ticket(), "serial": serial})
        quick = client.get(f"/v1/sites/{site_id}/registrations", params={"consistency": "eventual"})
        assert quick.status_code == 200 and quick.json()["registrations"] == []  # the runners are stopped
        assert_problem(client.get(f"/v1/sites/{site_id}/registrations"), 503, "READ_MODEL_BEHIND")


class TestRenewalDates:
    def test_R3_a_renewal_at_0130_in_tokyo_shows_that_days_date(self, flow: Flow, clock) -> None:  # noqa: ANN001
        """01:30 in Tokyo is still the day before in UTC: the ticket list shows the Tokyo date."""
        site_id = flow.ready_site()
        serial = flow.ship()
        flow.register(site_id, flow.sell_ticket(sold_on="2025-11-10"), serial)  # ends 2026-12-31
        clock.set(datetime(2026, 11, 21, 1, 30, tzinfo=TOKYO))
        ticket = flow.sell_ticket(kind="renewal")
        renewed = flow.client.post(f"/v1/registrations/{serial}/renewals", json=ticket)
        assert renewed.status_code == 201, renewed.text
        tickets = flow.client.get(f"/v1/sites/{site_id}/registrations").json()["tickets"]
        renewal = next(t for t in tickets if t["ticket_id"] == ticket["ticket_id"])
        assert renewal["registered_on"] == "2026-11-21"
