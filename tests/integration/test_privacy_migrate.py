"""A store written before personal fields were sealed (docs/privacy.md): `lifecycle privacy
migrate` copies its log into a new store with every personal field sealed, each event read
back and compared with the old one; in the new store forgetting works as for new data."""

from __future__ import annotations

import secrets
from datetime import date
from pathlib import Path
from typing import Any
from uuid import UUID

from eventsourcing.persistence import Mapper

from lifecycle.aggregates.shipments import Ticket, Unit
from lifecycle.bootstrap import build_application
from lifecycle.domain.privacy import ERASED
from lifecycle.settings import Settings
from tests.integration.test_startup_checks import lifecycle

PERSONAL = ["legacy@example.jp", "旧 データ子", "03-4444-5555", "拠点 旧子", "旧町1-2-3", "noc-legacy@example.jp"]


def without_sealing(app: Any) -> Any:
    """The application as it was before sealing: the library's plain mapper everywhere."""
    plain = Mapper(app.mapper.transcoder)
    app.mapper = app.events.mapper = app.snapshots.mapper = plain
    return app


def legacy_store(path: Path, kek: str) -> dict[str, Any]:
    settings = Settings(database_url=f"sqlite:///{path}", privacy_key=kek, secret_key="k")
    app = without_sealing(build_application(settings, password_hasher=lambda p: "h"))
    account = app.accounts.sign_up(PERSONAL[0], "secret123", PERSONAL[1], "株式会社旧", PERSONAL[2], True)
    app.accounts.verify_account(app.accounts.confirmation_token(account["account_id"]))
    company = app.companies.register_company(account["account_id"], "株式会社旧")
    site = app.companies.add_site(company["company_id"], {
        "name": "本社", "postal_code": "1000001", "prefecture": "東京都", "city": "千代田区", "street": PERSONAL[4],
        "building": "", "person": PERSONAL[3], "phone": "03-1234-5678", "email": "site-legacy@example.jp"})
    contact = app.companies.add_fault_contact(site["site_id"], {
        "company": "株式会社旧", "postal_code": "1000001", "prefecture": "東京都", "city": "千代田区",
        "street": "千代田1-1", "building": "", "person": "鈴木", "phone": "03-2345-6789",
        "mail1": PERSONAL[5], "mail2": ""})
    app.save(Unit("LEGACY0001", "1234501", "AT-x510", date(2026, 11, 2), None, None),
             Ticket("77777777", "AB12CD", "1234599", "デリバリースタンダード", 1, "new", date(2026, 11, 10)))
    app.registrations.register_ticket(site["site_id"], "77777777", "AB12CD", "LEGACY0001")
    contract = app.companies.company(company["company_id"])
    # Recorded as class version 1 was, before mails named their recipients' subjects: read
    # back, its upcaster leaves them unknown and the migration finds them from the contract.
    from lifecycle.aggregates.contract import Contract

    Contract.ServiceInNotified.class_version = 1
    try:
        app.mail_records.record_contract_mail_sent(contract.id, lambda c: c.record_service_in_notified(
            UUID(int=1), "LEGACY0001", [PERSONAL[0], PERSONAL[5]], "<m@example.com>", app.clock.now()))
    finally:
        Contract.ServiceInNotified.class_version = 2
    app.close()
    return {"account_id": account["account_id"], "site_id": site["site_id"], "contact_id": contact["contact_id"]}


def test_APPI_a_store_from_before_sealing_is_copied_sealed_and_verified_then_forgetting_works(tmp_path: Path) -> None:
    old, new = tmp_path / "old.sqlite3", tmp_path / "new.sqlite3"
    kek = secrets.token_hex(32)
    ids = legacy_store(old, kek)
    assert PERSONAL[0].encode() in old.read_bytes()  # what the issue is about: in clear before
    env = {"LIFECYCLE_DATABASE_URL": f"sqlite:///{old}", "LIFECYCLE_PRIVACY_KEY": kek}

    done = lifecycle(tmp_path, "privacy", "migrate", "--to", f"sqlite:///{new}", **env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "each read back and compared" in done.stdout and "1 mails' recipients assigned" in done.stdout
    raw = new.read_bytes()
    assert not [value for value in PERSONAL if value.encode() in raw]
    again = lifecycle(tmp_path, "privacy", "migrate", "--to", f"sqlite:///{new}", **env)
    assert again.returncode == 1 and "not empty" in again.stderr

    settings = Settings(database_url=f"sqlite:///{new}", privacy_key=kek, var_dir=tmp_path / "var", secret_key="k")
    app = build_application(settings)
    try:
        account = app.accounts.get_account(UUID(str(ids["account_id"])))
        assert (account["email"], account["name"]) == (PERSONAL[0], PERSONAL[1])
        contract = app.companies.contract_of_site(UUID(str(ids["site_id"])))
        assert contract.site(UUID(str(ids["site_id"]))).person == PERSONAL[3]
        [mail] = [e for e in app.events.get(contract.id) if type(e).__name__ == "ServiceInNotified"]
        assert mail.recipients == [PERSONAL[0], PERSONAL[5]]
        assert mail.recipient_subjects == [UUID(str(ids["account_id"])), UUID(str(ids["contact_id"]))]
        app.personal_keys.destroy(str(ids["contact_id"]), app.clock.now())
        app.personal_keys.destroy(str(ids["account_id"]), app.clock.now())
        [mail] = [e for e in app.events.get(contract.id) if type(e).__name__ == "ServiceInNotified"]
        assert mail.recipients == [ERASED, ERASED]
        assert app.accounts.get_account(UUID(str(ids["account_id"])))["email"] == ERASED
        assert app.companies.contract_of_site(UUID(str(ids["site_id"]))).site(UUID(str(ids["site_id"]))).person \
            == PERSONAL[3]
    finally:
        app.close()
