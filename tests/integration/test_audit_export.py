"""The auditor's export: `lifecycle audit export` writes the log with a hash chain and
`lifecycle audit verify` passes it unaltered, and names the first bad position when one
event is altered, removed or moved, or the end is cut off."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lifecycle.bootstrap import build_application
from lifecycle.entrypoints.cli import cli
from lifecycle.settings import Settings
from tests.conftest import settings_for


@pytest.fixture
def exported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    settings: Settings = settings_for("sqlite", tmp_path)
    app = build_application(settings)
    for n in range(5):
        app.shipments.record_shipment(f"AUDIT{n:04d}", "12345-01", "AT-x510", date(2026, 1, 5))
    app.shipments.record_ticket_sale("40000001", "C", "12345-99", "デリバリースタンダード", 1, "new", date(2026, 1, 5))
    app.close()
    monkeypatch.setenv("LIFECYCLE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("LIFECYCLE_SECRET_KEY", "test-secret")
    monkeypatch.setenv("LIFECYCLE_VAR_DIR", str(tmp_path / "var"))
    output = tmp_path / "audit.jsonl"
    result = CliRunner().invoke(cli, ["audit", "export", "--output", str(output)])
    assert result.exit_code == 0, result.output
    return output.read_text(encoding="utf-8").splitlines()


def verify(tmp_path: Path, lines: list[str]) -> tuple[int, str]:
    path = tmp_path / "checked.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = CliRunner().invoke(cli, ["audit", "verify", str(path)])
    return result.exit_code, result.output


def position(line: str) -> int:
    return json.loads(line)["position"]


class TestAuditExport:
    def test_export_holds_every_event_in_order_and_verifies(self, exported: list[str], tmp_path: Path) -> None:
        events = exported[1:-1]
        assert [position(line) for line in events] == list(range(1, 7))
        assert json.loads(events[0])["state"]["serial"] == "AUDIT0000"
        assert json.loads(exported[-1])["count"] == 6
        code, output = verify(tmp_path, exported)
        assert code == 0 and "6 events" in output

    def test_an_altered_event_is_named(self, exported: list[str], tmp_path: Path) -> None:
        record = json.loads(exported[3])
        record["state"]["serial"] = "FORGED0001"
        code, output = verify(tmp_path, [*exported[:3], json.dumps(record, ensure_ascii=False), *exported[4:]])
        assert code == 1 and f"position {record['position']}" in output and "altered" in output

    def test_a_removed_event_is_named(self, exported: list[str], tmp_path: Path) -> None:
        code, output = verify(tmp_path, [*exported[:3], *exported[4:]])
        assert code == 1 and f"position {position(exported[4])}" in output

    def test_reordered_events_are_named(self, exported: list[str], tmp_path: Path) -> None:
        swapped = [*exported[:2], exported[3], exported[2], *exported[4:]]
        code, output = verify(tmp_path, swapped)
        assert code == 1 and f"position {position(exported[3])}" in output

    def test_events_cut_off_the_end_are_caught(self, exported: list[str], tmp_path: Path) -> None:
        code, output = verify(tmp_path, [*exported[:-2], exported[-1]])
        assert code == 1 and "missing at the end" in output
        code, _ = verify(tmp_path, exported[:-1])
        assert code == 1
