"""The log that proves itself, from the command line (issue 21): an auditor holding the verifier
key (`lifecycle audit key`), a signed checkpoint (`audit checkpoint`) and one event with its
proof (`audit prove`) checks the event's inclusion offline; an export is checked against the
checkpoint; a byte changed in a stored event is named by its leaf index (`audit verify
--store`); and a rewritten log is caught by the consistency proof and located against an
earlier export."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lifecycle.bootstrap import build_application, build_audit_log, build_read_models
from lifecycle.entrypoints.cli import cli
from lifecycle.settings import Settings

EVENTS = 11


def use_store(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIFECYCLE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("LIFECYCLE_DATABASE_SCHEMA", settings.database_schema)
    monkeypatch.setenv("LIFECYCLE_SECRET_KEY", "test-secret")
    monkeypatch.setenv("LIFECYCLE_VAR_DIR", str(settings.var_dir))


def record(settings: Settings, count: int, prefix: str = "AUD") -> None:
    app = build_application(settings)
    for n in range(count):
        app.shipments.record_shipment(f"{prefix}{n:05d}", "12345-01", "AT-x510", date(2026, 1, 5))
    app.close()


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.output


def tamper(settings: Settings, position: int) -> None:
    """Changes one byte of the stored event at `position`, in the database itself."""
    app = build_application(settings)
    datastore = app.recorder.datastore
    table = app.recorder.events_table_name
    try:
        if settings.database_url.startswith("sqlite"):
            with datastore.transaction(commit=True) as cursor:
                cursor.execute(f"SELECT state FROM {table} WHERE rowid = ?", (position,))
                state = bytes(cursor.fetchone()[0])
                cursor.execute(f"UPDATE {table} SET state = ? WHERE rowid = ?", (state.replace(b"AUD", b"AUX", 1), position))
        else:
            table = f'"{datastore.schema}".{table}'
            with datastore.transaction(commit=True) as cursor:
                cursor.execute(f"SELECT state FROM {table} WHERE notification_id = %s", (position,))
                state = bytes(cursor.fetchone()["state"])
                cursor.execute(f"UPDATE {table} SET state = %s WHERE notification_id = %s",
                               (state.replace(b"AUD", b"AUX", 1), position))
    finally:
        app.close()


@pytest.fixture
def audited(store_settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, Path]:
    """A log of EVENTS events, the verifier key, a checkpoint of it and an export."""
    record(store_settings, EVENTS)
    use_store(store_settings, monkeypatch)
    files = {name: tmp_path / name for name in ("key", "checkpoint", "export.jsonl")}
    code, key = run("audit", "key")
    assert code == 0, key
    files["key"].write_text(key)
    code, note = run("audit", "checkpoint")
    assert code == 0, note
    files["checkpoint"].write_text(note)
    code, output = run("audit", "export", "--output", str(files["export.jsonl"]))
    assert code == 0, output
    return files


def test_audit_key_is_a_c2sp_verifier_key_and_the_checkpoint_a_signed_note(audited):
    name, key_id, key = audited["key"].read_text().strip().split("+", 2)
    assert name == "lifecycle.example/audit" and len(bytes.fromhex(key_id)) == 4
    lines = audited["checkpoint"].read_text().split("\n")
    assert lines[:2] == [name, str(EVENTS)] and lines[3] == "" and lines[4].startswith(f"— {name} ")


def test_audit_event_inclusion_is_proved_offline_with_the_key_only(audited, tmp_path):
    code, document = run("audit", "prove", "4")
    assert code == 0, document
    proof = tmp_path / "proof.json"
    proof.write_text(document)
    code, output = run("audit", "verify", "--key", str(audited["key"]), "--proof", str(proof))
    assert code == 0, output
    assert "leaf index 4" in output and f"tree of {EVENTS} events" in output
    forged = json.loads(document)
    forged["event"]["state"]["serial"] = "FORGED"
    proof.write_text(json.dumps(forged, ensure_ascii=False))
    code, output = run("audit", "verify", "--key", str(audited["key"]), "--proof", str(proof))
    assert code == 1 and "does not hash to the proof's leaf at index 4" in output


def test_audit_export_matches_the_checkpoint_and_its_chain_still_verifies(audited):
    code, output = run("audit", "verify", str(audited["export.jsonl"]), "--key", str(audited["key"]),
                       "--checkpoint", str(audited["checkpoint"]))
    assert code == 0, output
    assert "hash chain intact" in output and f"first {EVENTS} events give the checkpoint's root" in output


def test_audit_a_checkpoint_with_an_altered_byte_fails_its_signature(audited):
    note = audited["checkpoint"].read_text()
    audited["checkpoint"].write_text(note.replace(f"\n{EVENTS}\n", f"\n{EVENTS - 1}\n", 1))
    code, output = run("audit", "verify", "--key", str(audited["key"]), "--checkpoint", str(audited["checkpoint"]))
    assert code == 1 and "does not verify" in output


def test_audit_a_byte_changed_in_a_stored_event_is_named_by_its_index(audited, store_settings):
    code, output = run("audit", "verify", "--store", "--key", str(audited["key"]))
    assert code == 0, output
    tamper(store_settings, position=6)  # the 6th event: leaf index 5
    code, output = run("audit", "verify", "--store", "--key", str(audited["key"]))
    assert code == 1
    assert "leaf index 5 (log position 6) was changed" in output
    assert f"checkpoint {EVENTS}: the log's first {EVENTS} events no longer give its signed root" in output


def test_audit_a_rewritten_log_does_not_extend_the_earlier_checkpoint(audited, store_settings, tmp_path):
    """The operator changes an event and rebuilds the tree, so the tree is self-consistent again,
    then signs anew: the consistency proof fails, and the new export against the earlier one
    names the first index that differs."""
    tamper(store_settings, position=3)
    code, output = run("projections", "rebuild", "audit_tree")
    assert code == 0, output
    record(store_settings, 3, prefix="NEW")
    code, note = run("audit", "checkpoint")
    assert code == 0, note
    later = tmp_path / "later"
    later.write_text(note)
    settings = Settings(database_url=store_settings.database_url, database_schema=store_settings.database_schema,
                        var_dir=store_settings.var_dir, secret_key="test-secret")
    app = build_application(settings)
    try:
        audit = build_audit_log(settings, app, build_read_models(settings, app))
        proof = audit.consistency(EVENTS, EVENTS + 3).as_dict()
    finally:
        app.close()
    (tmp_path / "consistency.json").write_text(json.dumps(proof))
    code, output = run("audit", "verify", "--key", str(audited["key"]), "--checkpoint", str(audited["checkpoint"]),
                       "--checkpoint", str(later), "--consistency", str(tmp_path / "consistency.json"))
    assert code == 1 and f"does not extend the one of {EVENTS}" in output
    code, output = run("audit", "export", "--output", str(tmp_path / "later.jsonl"))
    code, output = run("audit", "verify", str(tmp_path / "later.jsonl"), "--earlier", str(audited["export.jsonl"]),
                       "--key", str(audited["key"]), "--checkpoint", str(audited["checkpoint"]))
    assert code == 1
    assert "leaf index 2 differs from the earlier export" in output
    assert "do not give the checkpoint's root" in output


def test_audit_an_untouched_log_extends_its_earlier_checkpoint(audited, store_settings, tmp_path):
    record(store_settings, 5, prefix="MORE")
    code, note = run("audit", "checkpoint")
    later = tmp_path / "later"
    later.write_text(note)
    app = build_application(store_settings)
    try:
        audit = build_audit_log(store_settings, app, build_read_models(store_settings, app))
        (tmp_path / "c.json").write_text(json.dumps(audit.consistency(EVENTS, EVENTS + 5).as_dict()))
    finally:
        app.close()
    code, output = run("audit", "verify", "--key", str(audited["key"]), "--checkpoint", str(audited["checkpoint"]),
                       "--checkpoint", str(later), "--consistency", str(tmp_path / "c.json"))
    assert code == 0, output
    assert f"checkpoint of {EVENTS + 5} events extends the one of {EVENTS}" in output


def test_audit_an_auditor_with_an_exported_event_an_api_proof_and_a_checkpoint_proves_inclusion(
    audited, store_settings, tmp_path
):
    """From outside: one line of an export (leaf index = its line number after the header), the
    inclusion proof the API answers for it, the checkpoint and the verifier key."""
    lines = audited["export.jsonl"].read_text(encoding="utf-8").splitlines()
    index = 7
    event = json.loads(lines[1 + index])
    app = build_application(store_settings)
    try:
        audit = build_audit_log(store_settings, app, build_read_models(store_settings, app))
        proof = audit.inclusion(index, EVENTS).as_dict()
    finally:
        app.close()
    document = tmp_path / "from-outside.json"
    document.write_text(json.dumps({"event": event, "proof": proof}, ensure_ascii=False))
    code, output = run("audit", "verify", "--key", str(audited["key"]), "--checkpoint", str(audited["checkpoint"]),
                       "--proof", str(document))
    assert code == 0, output
    assert f"leaf index {index}" in output


def test_audit_tree_kept_batch_by_batch_equals_the_tree_of_all_leaves(tmp_path):
    """Small batches, and a batch applied then rolled back (as when a commit fails): the stored
    tree still gives, at every size, the root of the leaves recomputed from the log."""
    from lifecycle import merkle
    from lifecycle.audit import leaf_of
    from lifecycle.projections.audit_tree import AuditTree, TreeReader
    from lifecycle.projections.read_models import ReadModels
    from tests.conftest import settings_for

    settings = settings_for("sqlite", tmp_path)
    record(settings, 70)
    app = build_application(settings)
    try:
        runner = ReadModels(app, projections=[AuditTree], batch_size=7).runners["audit_tree"]
        runner.catch_up(until=20)
        ahead = app.recorder.select_notifications(start=20, limit=9, inclusive_of_start=False)
        runner._apply(ahead)  # applied, never committed
        runner._abandon()
        runner.catch_up()
        hashes = [merkle.leaf_hash(leaf_of(n)) for n in app.recorder.select_notifications(start=1, limit=1000)]
        tree = TreeReader(runner.view)
        assert tree.size() == len(hashes) == 70
        assert tree.leaf_hashes(0, 70) == hashes
        for size in (1, 2, 3, 7, 8, 20, 29, 33, 64, 70):
            assert tree.root(size) == merkle.root_of(hashes[:size]), size
    finally:
        app.close()
