"""Personal data forgotten (APPI art. 35; docs/privacy.md), proven on SQLite and PostgreSQL:
a customer goes through the whole flow (sign-up, company, site, fault contacts, a ticket, the
mails sent), each kind of data subject is forgotten, and then every personal value of theirs,
in UTF-8, JSON-escaped and base64, is looked for in every table of the store (events,
snapshots, keys, read models, timers and their outbox), in the audit export, the Maildir, the
logs and Redis: none is found. Every read still answers with the marker, the mails go on for
the others, and the audit export taken before still verifies and is the start of one taken after."""

from __future__ import annotations

import base64
import io
import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
import pytest
import redis
from fastapi.testclient import TestClient

from api.app import create_app
from lifecycle.audit import export_log, verify_log
from tests.fakes import FixedClock
from lifecycle.domain.privacy import ERASED, SubjectKind
from tests.conftest import settings_for
from tests.e2e.conftest import api_key, assert_problem, bearer
from tests.scenario import Flow

REDIS_URL = "redis://127.0.0.1:6379/0"


def encodings(value: str) -> list[bytes]:
    """A value as it could sit anywhere: UTF-8, JSON-escaped (ASCII \\u escapes), base64."""
    return [
        value.encode(),
        json.dumps(value)[1:-1].encode(),
        base64.b64encode(value.encode()),
        base64.b64encode(value.encode()).rstrip(b"="),
    ]


def hits(blobs: list[tuple[str, bytes]], values: list[str]) -> list[tuple[str, str]]:
    return [(where, value) for value in values for where, blob in blobs
            if any(form in blob for form in encodings(value))]


def as_bytes(cell: Any) -> bytes:
    if isinstance(cell, (bytes, bytearray, memoryview)):
        return bytes(cell)
    return str(cell).encode()


def store_rows(settings: Any) -> list[tuple[str, bytes]]:
    """Every cell of every table of the store (events, snapshots, keys, read models, timers,
    sessions, uploads...), each as bytes."""
    rows: list[tuple[str, bytes]] = []
    if settings.database_url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(settings.database_url.removeprefix("sqlite:///")) as conn:
            tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            for table in tables:
                for row in conn.execute(f'SELECT * FROM "{table}"'):
                    rows += [(table, as_bytes(cell)) for cell in row if cell is not None]
    else:
        with psycopg.connect(settings.database_url) as conn:
            tables = [r[0] for r in conn.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (settings.database_schema,))]
            assert tables
            for table in tables:
                for row in conn.execute(f'SELECT * FROM "{settings.database_schema}"."{table}"'):
                    rows += [(table, as_bytes(cell)) for cell in row if cell is not None]
    return rows


def redis_contents(namespace: str) -> list[tuple[str, bytes]]:
    """Every Redis key of this test's namespaces, with what it holds."""
    client = redis.Redis.from_url(REDIS_URL)
    found = []
    for key in client.scan_iter(match=f"*{namespace}*"):
        kind = client.type(key)
        if kind == b"string":
            value = client.get(key) or b""
        elif kind == b"list":
            value = b"\n".join(client.lrange(key, 0, -1))
        elif kind == b"hash":
            value = b"\n".join(k + b"=" + v for k, v in client.hgetall(key).items())
        elif kind == b"zset":
            value = b"\n".join(client.zrange(key, 0, -1))
        elif kind == b"set":
            value = b"\n".join(client.smembers(key))
        else:
            value = b""
        found.append((key.decode(), key + b"\n" + value))
    assert found, "the test's Redis namespace holds nothing: the limits and the broker did not use it"
    return found


def files_under(path: Path) -> list[tuple[str, bytes]]:
    return [(str(p), p.read_bytes()) for p in path.rglob("*") if p.is_file()]


@pytest.fixture(params=["sqlite", "postgres"])
def service(request: pytest.FixtureRequest, tmp_path: Path, clock: FixedClock) -> Iterator[Any]:
    namespace = f"privacy-{uuid.uuid4().hex[:10]}"
    postgres_url = request.getfixturevalue("postgres_url") if request.param == "postgres" else None
    settings = settings_for(
        request.param, tmp_path, postgres_url,
        allow_clock_override=True, scheduler_interval_seconds=3600,
        redis_url=REDIS_URL, redis_namespace=namespace,
    )
    with TestClient(create_app(settings, clock=clock)) as client:
        client.headers.update(bearer(api_key(client)))
        client.settings = settings  # type: ignore[attr-defined]
        client.namespace = namespace  # type: ignore[attr-defined]
        yield client
    redis_client = redis.Redis.from_url(REDIS_URL)
    for key in redis_client.scan_iter(match=f"*{namespace}*"):
        redis_client.delete(key)


class Customer:
    """One customer with values of their own (nothing shared with any other party)."""

    def __init__(self, client: TestClient, tag: str) -> None:
        self.client = client
        self.flow = Flow(client, client.app.state.application)
        n = uuid.uuid4().int % 9000 + 1000
        self.account = {"email": f"wasure{tag}{n}@example.jp", "name": f"忘 太郎{tag}{n}",
                        "phone": f"03-7{n % 1000:03d}-{n}"}
        self.site = {"person": f"拠点 花子{tag}{n}", "phone": f"03-6{n % 1000:03d}-{n}",
                     "email": f"kyoten{tag}{n}@example.jp", "street": f"忘却町{n}-{tag}",
                     "building": f"消去ビル{n}{tag}"}
        self.contact = {"company": f"忘却商事{tag}{n}", "person": f"障害 次郎{tag}{n}",
                        "phone": f"03-5{n % 1000:03d}-{n}", "mail1": f"noc{tag}{n}@example.jp",
                        "mail2": f"jiro{tag}{n}@example.jp", "street": f"障害通{n}-{tag}",
                        "building": f"連絡ハイツ{n}{tag}"}
        self.kept_contact = {"mail1": f"keep{tag}{n}@example.jp", "mail2": f"keep2{tag}{n}@example.jp",
                             "person": f"残る 三郎{tag}{n}"}

    def sign_up_and_register(self, admin: Any) -> None:
        created = self.flow.post("/v1/accounts", {**self.account, "password": "secret123",
                                                  "company_name": "株式会社忘却", "agree_terms": True})
        self.account_id = created["account_id"]
        admin.run_timers("2026-11-20T10:00:00+09:00")  # the confirmation mail
        token = self.client.app.state.application.accounts.confirmation_token(UUID(self.account_id))
        self.flow.post("/v1/accounts/verify", {"token": token}, expect=200)
        company = self.flow.company(self.account_id)
        self.contract_number = company["contract_number"]
        self.site_id = self.flow.site(company["company_id"], **self.site)["site_id"]
        self.contact_id = self.flow.fault_contact(self.site_id, **self.contact)["contact_id"]
        self.kept_contact_id = self.flow.fault_contact(self.site_id, **self.kept_contact)["contact_id"]
        self.serial = self.flow.ship()
        self.flow.register(self.site_id, self.flow.sell_ticket(sold_on="2026-11-10"), self.serial)

    def values(self) -> list[str]:
        return [*self.account.values(), *self.site.values(), *self.contact.values()]


class Admin:
    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.runtime = client.app.state.runtime

    def run_timers(self, as_of: str) -> list[dict[str, Any]]:
        """Fires the timers due (the ids go through the Redis broker) and delivers them as
        a worker would."""
        response = self.client.post("/v1/admin/timers/run", json={"as_of": as_of})
        assert response.status_code == 200, response.text
        fired = response.json()["fired"]
        for timer in fired:
            self.runtime.notifications.sender.deliver(UUID(timer["notification_id"]))
        return fired

    def forget(self, kind: str, subject_id: str, force: bool = False) -> Any:
        return self.client.post("/v1/admin/personal-data/forget", json={
            "kind": kind, "subject_id": subject_id, "reason": "本人からの削除請求 (APPI 35)", "force": force})

    def export(self) -> str:
        out = io.StringIO()
        export_log(self.runtime.application.recorder, out)
        return out.getvalue()


def test_APPI_forgotten_subjects_leave_no_personal_value_anywhere_and_everything_else_goes_on(
    service: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    admin = Admin(service)
    forgotten, other = Customer(service, "a"), Customer(service, "b")
    forgotten.sign_up_and_register(admin)
    other.sign_up_and_register(admin)
    # Login attempts are counted in Redis, keyed by the address (hashed).
    assert service.post("/v1/sessions", json={"email": forgotten.account["email"], "password": "secret123"}
                        ).status_code == 201
    service_in = admin.run_timers("2026-11-24T10:00:00+09:00")
    assert sorted(t["kind"] for t in service_in) == ["service_in", "service_in"]
    maildir = service.settings.mail_directory()
    assert any(f.encode() in blob for _, blob in files_under(maildir) for f in [forgotten.contact["mail1"]])
    before = admin.export()
    assert verify_log(before.splitlines()).ok

    # Forget each kind of subject; the account still has live coverage: refused unless forced.
    assert_problem(admin.forget("account", forgotten.account_id), 409, "ACCOUNT_HAS_LIVE_COVERAGE")
    assert admin.forget("site-person", forgotten.site_id).status_code == 200
    assert admin.forget("fault-contact", forgotten.contact_id).status_code == 200
    answer = admin.forget("account", forgotten.account_id, force=True)
    assert answer.status_code == 200, answer.text
    assert answer.json()["key_destroyed"] is True
    assert_problem(admin.forget("fault-contact", forgotten.contact_id), 409, "PERSONAL_DATA_ALREADY_ERASED")

    # The mails go on for the others: the reminder reaches the remaining fault contact, and
    # the timer records who was left out and why.
    reminders = admin.run_timers("2027-10-01T10:00:00+09:00")
    mine = [t for t in reminders if t["serial"] == forgotten.serial]
    assert [t["kind"] for t in mine] == ["renewal_reminder"]
    row = admin.runtime.notifications.store.get(UUID(mine[0]["notification_id"]))
    assert row is not None and row.state == "sent"
    assert sorted(row.recipients) == sorted([forgotten.kept_contact["mail1"], forgotten.kept_contact["mail2"]])
    assert "personal data erased" in (row.last_error or "") and forgotten.contact_id in row.last_error
    theirs = [t for t in reminders if t["serial"] == other.serial]
    other_row = admin.runtime.notifications.store.get(UUID(theirs[0]["notification_id"]))
    assert other_row is not None and other.account["email"] in other_row.recipients

    # Every read answers, with the marker where the forgotten data was.
    history = service.get(f"/v1/contracts/{forgotten.contract_number}/history")
    assert history.status_code == 200
    assert "PersonalDataErased" in [e["type"] for e in history.json()["events"]]
    added = next(e for e in history.json()["events"] if e["type"] == "SiteAdded")
    assert added["data"]["site"]["person"] == ERASED and added["data"]["site"]["city"] == "千代田区"
    as_of = service.get(f"/v1/contracts/{forgotten.contract_number}", params={"as_of": added["timestamp"]})
    assert as_of.status_code == 200 and as_of.json()["sites"][0]["street"] == ERASED
    site = service.get(f"/v1/sites/{forgotten.site_id}")
    assert site.status_code == 200 and site.json()["person"] == ERASED and site.json()["prefecture"] == "東京都"
    contact = service.get(f"/v1/fault-contacts/{forgotten.contact_id}")
    assert contact.status_code == 200 and contact.json()["mail1"] == ERASED
    account = service.get(f"/v1/accounts/{forgotten.account_id}")
    assert account.status_code == 200 and account.json()["email"] == ERASED and account.json()["status"] == "erased"
    lookup = service.get(f"/v1/registrations/{forgotten.serial}")
    assert lookup.status_code == 200, lookup.text
    for path in ("/v1/dashboards/expiry", "/v1/dashboards/service-in", f"/v1/sites/{forgotten.site_id}/registrations",
                 f"/v1/companies?account_id={forgotten.account_id}"):
        assert service.get(path).status_code == 200, path
    assert service.get(f"/v1/sites/{other.site_id}").json()["person"] == other.site["person"]
    # The forgotten customer can no longer log in; the other still can.
    assert service.post("/v1/sessions", json={"email": forgotten.account["email"], "password": "secret123"}
                        ).status_code == 401
    assert service.post("/v1/sessions", json={"email": other.account["email"], "password": "secret123"}
                        ).status_code == 201

    # The audit chain is whole: both exports verify, and the one taken before is the start of
    # the one taken after (the stored events were not changed by the erasure).
    after = admin.export()
    assert verify_log(after.splitlines()).ok
    old_records = [json.loads(line) for line in before.splitlines()[1:-1]]
    new_records = [json.loads(line) for line in after.splitlines()[1:-1]]
    assert new_records[: len(old_records)] == old_records
    new_types = [r["topic"].rsplit(".", 1)[-1] for r in new_records[len(old_records):]]
    assert new_types.count("PersonalDataErased") == 3

    # Nowhere: the store's tables (events, snapshots, read models, timers and outbox, keys),
    # both exports, the Maildir, the logs, Redis.
    places = [
        *store_rows(service.settings),
        ("export before", before.encode()),
        ("export after", after.encode()),
        *files_under(maildir),
        ("logs", "\n".join(r.getMessage() for r in caplog.records).encode()),
        *redis_contents(service.namespace),
    ]
    assert hits(places, forgotten.values()) == []
    # ...while the other customer's values are still there (the search itself works).
    assert hits(places, [other.account["email"], other.contact["mail1"]])


def test_APPI_a_customer_downloads_everything_held_about_them_decrypted(service: TestClient) -> None:
    admin = Admin(service)
    customer, other = Customer(service, "c"), Customer(service, "d")
    customer.sign_up_and_register(admin)
    other.sign_up_and_register(admin)
    session = service.post("/v1/sessions", json={"email": customer.account["email"], "password": "secret123"}).json()
    mine = service.get("/v1/accounts/me/personal-data", headers=bearer(session["token"]))
    assert mine.status_code == 200, mine.text
    body = mine.json()
    assert body["account"]["email"] == customer.account["email"] and body["account"]["phone"] == customer.account["phone"]
    [company] = body["companies"]
    assert company["contract_number"] == customer.contract_number
    assert company["sites"][0]["person"] == customer.site["person"]
    assert {c["mail1"] for c in company["fault_contacts"]} == {customer.contact["mail1"], customer.kept_contact["mail1"]}
    assert company["registrations"][0]["serial"] == customer.serial
    types = [e["type"] for e in body["events"]]
    assert {"SignedUp", "Activated", "ConfirmationMailSent", "CompanyRegistered", "SiteAdded", "TicketRegistered"} <= set(types)
    signed_up = next(e for e in body["events"] if e["type"] == "SignedUp")
    assert signed_up["data"]["name"] == customer.account["name"] and "password_hash" in signed_up["data"]
    assert other.account["email"] not in mine.text and other.site["person"] not in mine.text

    # Without a session: 401; an internal service's key is not a customer: 403.
    assert_problem(service.get("/v1/accounts/me/personal-data", headers={"Authorization": ""}), 401, "UNAUTHENTICATED")
    # An admin discloses any subject.
    site = service.get(f"/v1/admin/personal-data/site-person/{customer.site_id}")
    assert site.status_code == 200 and site.json()["site"]["street"] == customer.site["street"]
    assert {e["type"] for e in site.json()["events"]} == {"SiteAdded"}
    assert_problem(service.get(f"/v1/admin/personal-data/fault-contact/{uuid.uuid4()}"), 404, "DATA_SUBJECT_NOT_FOUND")
    # After forgetting, the download shows the markers.
    assert admin.forget("site-person", customer.site_id).status_code == 200
    again = service.get("/v1/accounts/me/personal-data", headers=bearer(session["token"])).json()
    assert again["companies"][0]["sites"][0]["person"] == ERASED
    assert next(e for e in again["events"] if e["type"] == "SiteAdded")["data"]["site"]["person"] == ERASED


def test_APPI_a_provisional_account_never_confirmed_is_erased_after_the_retention_days(service: TestClient) -> None:
    """Retention: the timer made at sign-up is due 30 days later (the default); it erases the
    account's personal data and says what it erased. A confirmed account's is cancelled."""
    admin = Admin(service)
    unconfirmed, confirmed = Customer(service, "e"), Customer(service, "f")
    created = unconfirmed.flow.post("/v1/accounts", {**unconfirmed.account, "password": "secret123",
                                                     "company_name": "株式会社忘却", "agree_terms": True})
    confirmed.sign_up_and_register(admin)
    assert [t["kind"] for t in admin.run_timers("2026-12-19T23:59:00+09:00")] == ["service_in"]  # not yet due
    fired = admin.run_timers("2026-12-20T10:00:00+09:00")  # 30 days after the sign-up
    assert [(t["kind"], t["aggregate_id"]) for t in fired] == [("account_retention", created["account_id"])]
    row = admin.runtime.notifications.store.get(UUID(fired[0]["notification_id"]))
    assert row is not None and row.state == "sent"
    assert row.last_error.startswith(f"erased the name, e-mail address and phone of provisional account {created['account_id']}")
    account = service.get(f"/v1/accounts/{created['account_id']}").json()
    assert (account["email"], account["name"], account["status"]) == (ERASED, ERASED, "erased")
    history = admin.runtime.privacy.disclose(SubjectKind.ACCOUNT, UUID(created["account_id"]))
    [erased] = [e for e in history["events"] if e["type"] == "PersonalDataErased"]
    assert erased["data"]["reason"].startswith("retention")
    assert hits(store_rows(service.settings), list(unconfirmed.account.values())) == []
    assert service.get(f"/v1/accounts/{confirmed.account_id}").json()["email"] == confirmed.account["email"]
