"""Issue 11, deliverable 6: the commands that walk the whole log (`audit export`,
`projections rebuild`, `timers rebuild`) report their progress in log positions read against
the log's head, and draw it as a rich bar on stderr only when stderr is a terminal: piped,
stdout and stderr are what they were."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from lifecycle.audit import export_log
from lifecycle.bootstrap import build_application, build_notifications, build_read_models
from lifecycle.settings import Settings
from tests.conftest import settings_for

BAR = "━"  # rich's bar
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def seen(stderr: str) -> str:
    """What the terminal shows, without rich's colour and cursor codes."""
    return ANSI.sub("", stderr)


def fill(settings: Settings, shipments: int = 12) -> int:
    """A log with shipments, a sold ticket and an account (whose confirmation mail makes a
    timer); answers the log's head."""
    app = build_application(settings)
    try:
        for n in range(shipments):
            app.shipments.record_shipment(f"PROG{n:04d}", "12345-01", "AT-x510", date(2026, 1, 5))
        app.shipments.record_ticket_sale("40000001", "C", "12345-99", "デリバリースタンダード", 1, "new", date(2026, 1, 5))
        app.accounts.sign_up("progress@example.co.jp", "secret123", "山田", "会社", "03-1234-5678", True)
        return app.recorder.max_notification_id()
    finally:
        app.close()


class Heard:
    """A progress callback that keeps what it was told."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, int]] = []

    def __call__(self, done: int, total: int) -> None:
        self.calls.append((done, total))

    def assert_reached(self, head: int, *, steps: int = 2) -> None:
        assert self.calls, "no progress reported"
        done = [d for d, _ in self.calls]
        assert done == sorted(done), self.calls  # never backwards
        assert {t for _, t in self.calls} == {head}, self.calls  # measured against the log's head
        assert self.calls[-1] == (head, head), self.calls
        assert len(self.calls) >= steps, self.calls


def test_export_and_rebuilds_report_positions_read_up_to_the_head(tmp_path: Path) -> None:
    settings = settings_for("sqlite", tmp_path)
    head = fill(settings)
    app = build_application(settings)
    try:
        heard = Heard()
        out = io.StringIO()
        assert export_log(app.recorder, out, batch_size=4, progress=heard) == head
        heard.assert_reached(head, steps=head // 4)  # a step per batch, not only the start and the end

        read_models = build_read_models(settings, app)
        for name in read_models.runners:
            heard = Heard()
            assert read_models.rebuild(name, batch_size=2, progress=heard) == head
            heard.assert_reached(head)

        notifications = build_notifications(settings, app)
        try:
            notifications.projection.batch_size = 1  # a batch per event the timers handle
            heard = Heard()
            assert notifications.admin.rebuild(heard) >= 1  # the account's confirmation mail
            heard.assert_reached(head)
        finally:
            notifications.close()
    finally:
        app.close()


def run(tmp_path: Path, *args: str, terminal: bool) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("LIFECYCLE_") and key not in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE")}
    env.update({"LIFECYCLE_DATABASE_URL": f"sqlite:///{tmp_path / 'events.sqlite3'}",
                "LIFECYCLE_VAR_DIR": str(tmp_path / "var"), "LIFECYCLE_SECRET_KEY": "test-secret"})
    if terminal:
        env.update({"TTY_COMPATIBLE": "1", "COLUMNS": "120"})  # rich: treat the pipe as a terminal
    completed = subprocess.run([sys.executable, "-m", "lifecycle", *args], env=env, cwd=tmp_path,
                               capture_output=True, text=True, timeout=120, check=False)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed


@pytest.fixture
def log_head(tmp_path: Path) -> int:
    return fill(settings_for("sqlite", tmp_path))


def without_export_time(text: str) -> list[str]:
    return text.splitlines()[1:]  # the first line says when it was exported


def test_audit_export_piped_is_unchanged_and_a_terminal_sees_the_bar_reach_the_head(
    tmp_path: Path, log_head: int
) -> None:
    piped = run(tmp_path, "audit", "export", terminal=False)
    assert piped.stderr == f"exported {log_head} events\n"  # no bar drawn on a pipe
    assert len(without_export_time(piped.stdout)) == log_head + 1  # every event and the closing line

    shown = run(tmp_path, "audit", "export", terminal=True)
    assert without_export_time(shown.stdout) == without_export_time(piped.stdout)  # stdout untouched
    assert BAR not in shown.stdout
    assert f"{log_head}/{log_head} events" in seen(shown.stderr), shown.stderr[-2000:]


def test_projections_and_timers_rebuild_keep_stdout_and_draw_to_the_head_on_a_terminal(
    tmp_path: Path, log_head: int
) -> None:
    for command in (["projections", "rebuild"], ["timers", "rebuild"]):
        piped = run(tmp_path, *command, terminal=False)
        shown = run(tmp_path, *command, terminal=True)
        assert shown.stdout == piped.stdout, command
        assert BAR not in piped.stderr and BAR not in piped.stdout and BAR not in shown.stdout
        assert f"{log_head}/{log_head} events" in seen(shown.stderr), shown.stderr[-2000:]
    assert piped.stdout.startswith("applied ")
    rebuilt = run(tmp_path, "projections", "rebuild", terminal=False).stdout.splitlines()
    names = ("parties", "coverage", "service_in", "audit_tree")
    assert rebuilt == [f"{name}: rebuilt up to log position {log_head}" for name in names]
