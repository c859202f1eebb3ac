"""Builders for the seed's flow over HTTP: reference data, account, company, site, contact."""

from __future__ import annotations

import itertools
import time
from typing import Any
from datetime import date
from uuid import UUID

from fastapi.testclient import TestClient

from lifecycle.aggregates.shipments import Ticket, Unit

_numbers = itertools.count(10_000_000)
PASSWORD = "secret123"  # every account the builders make has it

# A site and a fault contact as the HTTP bodies that add them...
SITE_BODY = {
    "name": "東京本社", "postal_code": "1000001", "street": "千代田1-1", "person": "佐藤 花子",
    "phone": "03-1234-5678", "email": "hanako@example.co.jp",
}
CONTACT_BODY = {
    "company": "株式会社サンプル", "postal_code": "1000001", "street": "千代田1-1", "person": "鈴木 一郎",
    "phone": "03-2345-6789", "mail1": "noc@example.co.jp", "mail2": "",
}
# ...and as the Contract aggregate's arguments (unit tests).
SITE_FIELDS = dict(name="本社", postal_code="1000001", prefecture="東京都", city="千代田区", street="1-1",
            building="", person="佐藤", phone="03-1234-5678", email="s@example.co.jp")
CONTACT_FIELDS = dict(company="C", postal_code="1000001", prefecture="東京都", city="千代田区", street="1",
               building="", person="p", phone="03-1234-5678", mail1="a@example.co.jp", mail2="")


def next_ticket_id() -> str:
    return str(next(_numbers))


def next_serial(prefix: str = "SN") -> str:
    return f"{prefix}{next(_numbers):014d}"[-16:]


class Flow:
    """A customer going through the seed's registration flow against one API."""

    def __init__(self, client: TestClient, app: Any) -> None:
        self.client = client
        self.app = app
        # Read-your-writes: remember the log position of every command answered and ask
        # each read to reflect at least that much, as a client of the service should.
        self.position = 0
        client.event_hooks = {
            "request": [*client.event_hooks["request"], self._read_at_least_what_was_written],
            "response": [*client.event_hooks["response"], self._remember_position],
        }

    def _remember_position(self, response: Any) -> None:
        reached = response.headers.get("X-Log-Position")
        if reached:
            self.position = max(self.position, int(reached))

    def _read_at_least_what_was_written(self, request: Any) -> None:
        is_read = request.method == "GET" or request.url.path.endswith("/check")
        if is_read and request.url.path.startswith("/v1/") and self.position:
            if "min_position" not in request.url.params:
                request.url = request.url.copy_merge_params({"min_position": self.position})

    def post(self, path: str, body: dict[str, Any], expect: int = 201, **headers: str) -> dict[str, Any]:
        response = self.client.post(path, json=body, headers=headers)
        assert response.status_code == expect, response.text
        return response.json()

    def ship(self, serial: str | None = None, code_no: str = "12345-01", model: str = "AT-x510-28GTX",
             shipped_on: str = "2026-11-02", bundle: dict[str, Any] | None = None) -> str:
        serial = serial or next_serial()
        body: dict[str, Any] = {"serial": serial, "code_no": code_no, "model": model, "shipped_on": shipped_on}
        if bundle is not None:
            body["bundle"] = bundle
        return self.post("/v1/shipments", body)["serial"]

    def sell_ticket(self, kind: str = "new", sold_on: str = "2026-11-10", term_years: int = 1,
                    code_no: str = "12345-99", service: str = "デリバリースタンダード",
                    verification_code: str = "AB12CD") -> dict[str, str]:
        ticket_id = next_ticket_id()
        self.post("/v1/tickets", {
            "ticket_id": ticket_id, "verification_code": verification_code, "code_no": code_no,
            "service": service, "term_years": term_years, "kind": kind, "sold_on": sold_on,
        })
        return {"ticket_id": ticket_id, "verification_code": verification_code}

    def active_account(self, email: str | None = None) -> str:
        email = email or f"user{next(_numbers)}@example.co.jp"
        account = self.post("/v1/accounts", {
            "email": email, "password": PASSWORD, "name": "山田 太郎", "company_name": "株式会社サンプル",
            "phone": "03-1234-5678", "agree_terms": True,
        })
        token = self.app.accounts.confirmation_token(UUID(account["account_id"]))
        self.post("/v1/accounts/verify", {"token": token}, expect=200)
        return account["account_id"]

    def company(self, account_id: str | None = None, name: str = "株式会社サンプル") -> dict[str, Any]:
        return self.post("/v1/companies", {"account_id": account_id or self.active_account(), "name": name})

    def site(self, company_id: str, **overrides: Any) -> dict[str, Any]:
        body = {
            "name": "東京本社", "postal_code": "100-0001", "prefecture": "東京都", "city": "千代田区",
            "street": "千代田1-1", "building": "サンプルビル3F", "person": "佐藤 花子",
            "phone": "03-1234-5678", "email": "hanako@example.co.jp", **overrides,
        }
        return self.post(f"/v1/companies/{company_id}/sites", body)

    def fault_contact(self, site_id: str, **overrides: Any) -> dict[str, Any]:
        body = {
            "company": "株式会社サンプル", "postal_code": "1000001", "street": "千代田1-1",
            "person": "鈴木 一郎", "phone": "03-2345-6789", "mail1": "noc@example.co.jp",
            "mail2": "ichiro@example.co.jp", **overrides,
        }
        return self.post(f"/v1/sites/{site_id}/fault-contacts", body)

    def ready_site(self) -> str:
        """A site of a fresh company, with a fault contact: ready for registrations."""
        company = self.company()
        site_id = self.site(company["company_id"])["site_id"]
        self.fault_contact(site_id)
        return site_id

    def company_with_site(self, account_id: str | None = None) -> tuple[str, str]:
        """(company_id, site_id) of a fresh company whose site 東京本社 has a fault contact."""
        company = self.company(account_id)
        site_id = self.site(company["company_id"])["site_id"]
        self.fault_contact(site_id)
        return company["company_id"], site_id

    def register(self, site_id: str, ticket: dict[str, str], serial: str, expect: int = 201) -> dict[str, Any]:
        return self.post(f"/v1/sites/{site_id}/registrations", {**ticket, "serial": serial}, expect=expect)


def service_key(settings: Any, application: Any, *roles: str, name: str | None = None) -> str:
    """An API key on the store of `settings` (every role when none is named), for tests
    that call a server process over HTTP."""
    from uuid import uuid4

    from lifecycle.bootstrap import build_access
    from lifecycle.domain.access import Role

    wanted = list(roles) or [role.value for role in Role]
    _, token = build_access(settings, application).create_key(name or f"test-{uuid4().hex[:8]}", wanted)
    return token


def authorized(client: Any, token: str) -> Any:
    client.headers["Authorization"] = f"Bearer {token}"
    return client


def log_in(client: Any, email: str, password: str = PASSWORD) -> str:
    """A customer's session token."""
    answer = client.post("/v1/sessions", json={"email": email, "password": password}, headers={"Authorization": ""})
    assert answer.status_code == 201, answer.text
    return answer.json()["token"]


def shipped(app: Any, count: int, prefix: str = "BK") -> list[tuple[str, str]]:
    """(serial, ticket ID) of `count` shipped units and sold new tickets, saved straight to the store."""
    base = int(time.time() * 1000) % 1_000_000
    pairs = [(f"{prefix}{base:06d}{n:08d}"[-16:], f"{(base * 1000 + n) % 100_000_000:08d}") for n in range(count)]
    for start in range(0, count, 1000):
        batch: list[Any] = []
        for serial, ticket_id in pairs[start:start + 1000]:
            batch.append(Unit(serial=serial, code_no="12345-01", model="AT-x510", shipped_on=date(2026, 11, 2),
                              bundle=None, bundle_serial=None))
            batch.append(Ticket(ticket_id=ticket_id, verification_code="AB12CD", code_no="12345-99",
                                service="デリバリースタンダード", term_years=1, kind="new", sold_on=date(2026, 11, 10)))
        app.save(*batch)
    return pairs
