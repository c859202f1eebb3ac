"""`lifecycle privacy forget|disclose` as an operator runs them, and the key-encryption key
checked at start: a wrong LIFECYCLE_PRIVACY_KEY is one clear line and exit 2 (docs/privacy.md)."""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from uuid import UUID, uuid4

from lifecycle.bootstrap import build_application
from lifecycle.domain.privacy import ERASED
from lifecycle.settings import Settings
from tests.integration.test_startup_checks import assert_one_clear_line, lifecycle


def store(tmp_path: Path, kek: str) -> dict[str, str]:
    return {"LIFECYCLE_DATABASE_URL": f"sqlite:///{tmp_path / 'events.sqlite3'}", "LIFECYCLE_PRIVACY_KEY": kek}


def signed_up_account(tmp_path: Path, kek: str) -> UUID:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'events.sqlite3'}", privacy_key=kek,
                        var_dir=tmp_path / "var", secret_key="test-secret")
    application = build_application(settings)
    try:
        answer = application.accounts.sign_up("wasureru@example.jp", "secret123", "忘 れる子", "株式会社忘却",
                                              "03-1234-9876", True)
    finally:
        application.close()
    return answer["account_id"]


def test_APPI_a_wrong_key_encryption_key_stops_the_start_with_one_line(tmp_path: Path) -> None:
    kek = secrets.token_hex(32)
    signed_up_account(tmp_path, kek)
    wrong = lifecycle(tmp_path, "serve", "--port", "0", **store(tmp_path, secrets.token_hex(32)))
    assert_one_clear_line(wrong, "LIFECYCLE_PRIVACY_KEY", "not the key")
    malformed = lifecycle(tmp_path, "worker", **store(tmp_path, "not-hex"))
    assert_one_clear_line(malformed, "LIFECYCLE_PRIVACY_KEY", "64 hex digits")


def test_APPI_the_operator_discloses_then_forgets_an_account_from_the_command_line(tmp_path: Path) -> None:
    kek = secrets.token_hex(32)
    account_id = signed_up_account(tmp_path, kek)
    disclosed = lifecycle(tmp_path, "privacy", "disclose", "account", str(account_id), **store(tmp_path, kek))
    assert disclosed.returncode == 0, disclosed.stderr[-2000:]
    document = json.loads(disclosed.stdout)
    assert document["account"]["email"] == "wasureru@example.jp" and document["account"]["name"] == "忘 れる子"

    forgotten = lifecycle(tmp_path, "privacy", "forget", "account", str(account_id), "--reason", "本人の請求",
                          **store(tmp_path, kek))
    assert forgotten.returncode == 0, forgotten.stderr[-2000:]
    assert json.loads(forgotten.stdout)["key_destroyed"] is True
    again = lifecycle(tmp_path, "privacy", "disclose", "account", str(account_id), **store(tmp_path, kek))
    document = json.loads(again.stdout)
    assert document["account"]["email"] == ERASED and document["account"]["status"] == "erased"
    erased = [e for e in document["events"] if e["type"] == "PersonalDataErased"]
    assert erased[0]["data"]["reason"] == "本人の請求" and erased[0]["data"]["actor"]["id"] == "cli"
    assert b"wasureru@example.jp" not in (tmp_path / "events.sqlite3").read_bytes()

    twice = lifecycle(tmp_path, "privacy", "forget", "account", str(account_id), "--reason", "x", **store(tmp_path, kek))
    assert twice.returncode == 1 and "PERSONAL_DATA_ALREADY_ERASED" in twice.stderr
    unknown = lifecycle(tmp_path, "privacy", "disclose", "fault-contact", str(uuid4()), **store(tmp_path, kek))
    assert unknown.returncode == 1 and "DATA_SUBJECT_NOT_FOUND" in unknown.stderr
    bad_kind = lifecycle(tmp_path, "privacy", "disclose", "person", str(uuid4()), **store(tmp_path, kek))
    assert bad_kind.returncode == 1 and "site-person" in bad_kind.stderr


def test_APPI_the_key_encryption_key_is_rotated_and_the_data_still_opens_with_the_new_one_only(tmp_path: Path) -> None:
    old_kek, new_kek = secrets.token_hex(32), secrets.token_hex(32)
    account_id = signed_up_account(tmp_path, old_kek)
    rotated = lifecycle(tmp_path, "privacy", "rotate-key", "--new-key", new_kek, **store(tmp_path, old_kek))
    assert rotated.returncode == 0, rotated.stderr[-2000:]
    assert rotated.stdout.startswith("1 subjects' keys wrapped with the new key")
    disclosed = lifecycle(tmp_path, "privacy", "disclose", "account", str(account_id), **store(tmp_path, new_kek))
    assert disclosed.returncode == 0, disclosed.stderr[-2000:]
    assert json.loads(disclosed.stdout)["account"]["email"] == "wasureru@example.jp"
    stale = lifecycle(tmp_path, "privacy", "disclose", "account", str(account_id), **store(tmp_path, old_kek))
    assert_one_clear_line(stale, "LIFECYCLE_PRIVACY_KEY", "not the key")
