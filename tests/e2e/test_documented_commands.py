"""Every shell block of the documentation works when pasted in order on a fresh clone.

The convention (also in docs/README.md): a ```bash block in README.md or in any docs/*.md is
run; a ```text block is not (output, answers, commands that cannot run here such as Docker).
For each file that has bash blocks (a file added to docs/ is found by itself) the test copies
the repository into an empty directory (the tracked and untracked files, not ignored ones; the
venv linked, as scripts/install.sh would find it), runs the file's blocks in order in one bash
with `set -eo pipefail`, and checks what a reader would: status 0, no traceback, no
INTERNAL_ERROR, and what the file promises (EXPECTED below).

Rewritten before the run, and only these: port 8000 becomes a free port (the documents write it
out: `--port 8000`, `127.0.0.1:8000`; `scripts/serve.sh` gets `--port 8000` first); `bash
scripts/test.sh` with no arguments, the whole suite that holds this very test, gets
`--collect-only -q`. PostgreSQL gets a schema of this test's own (LIFECYCLE_DATABASE_SCHEMA),
dropped afterwards. Where dates matter the documents move time with the timer aid, relative to
today. Servers a document starts in the background are stopped with its process group.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
import uuid
from datetime import date, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.conftest import ADMIN_URL
from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BASH_BLOCK = re.compile(r"^```bash\n(.*?)^```", re.S | re.M)

def _first_period_end(today: date) -> date:
    """P-1 for a 1-year ticket sold this month: the 1st of next month + 13 months - 1 day."""
    months = today.year * 12 + today.month - 1 + 1 + 13  # the month after the period's last
    return date(months // 12, months % 12 + 1, 1) - timedelta(days=1)


FIRST_PERIOD_END = _first_period_end(date.today())  # the walk's `date +%Y-%m-01`, the same clock

# What each document shows a reader, beyond a clean run (a document not listed: the clean run).
EXPECTED: dict[str, list[str]] = {
    "README.md": [
        '"prefecture":"東京都"', "未定義の住所が入力されました。",  # S-3, E2
        '"serial":"A1B2C3D4E5F6G7H8"', '"status":"provisional"', "tests collected",
    ],
    "docs/walk-through.md": [
        '"status":"active"',
        "仮ユーザー情報が登録されていません。",  # E1 on the second verify
        f'"end":"{FIRST_PERIOD_END}"',  # the registration's first period (P-1), from a sale this month
        "出荷履歴にありません。", "該当のシリアルは存在しません。",  # E4, E5
        '"code":"RENEWAL_WINDOW_CLOSED"',  # the window opens 10 months after the sale
        '"code":"FORBIDDEN"', '"code":"UNAUTHENTICATED"',
        '"code":"SITE_NOT_FOUND"',
        '"actor":{"kind":"account"', '"request_id":"',  # the customer made the changes
    ],
    "docs/mails-and-timers.md": ['"kind":"service_in"', '"period":{"start":"2026-12-01","end":"2027-12-31"}'],
    "docs/bulk.md": ['"status":"done"', '"registered":1', '"refused":1', "exit status 1: rows refused"],
    "docs/operating.md": ["store: ok", '"process_id"'],
}


def bash_blocks(document: Path) -> list[str]:
    return BASH_BLOCK.findall(document.read_text(encoding="utf-8"))


def name_of(document: Path) -> str:
    return document.relative_to(ROOT).as_posix()


def as_run_here(script: str, port: int) -> str:
    script = re.sub(r"scripts/serve\.sh(?! --port)", "scripts/serve.sh --port 8000", script)
    script = re.sub(r"\b8000\b", str(port), script)
    return re.sub(r"bash scripts/test\.sh *$", "bash scripts/test.sh --collect-only -q", script, flags=re.M)


def fresh_clone(target: Path) -> Path:
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    (target / ".venv").symlink_to(ROOT / ".venv")
    return target


def still_running(group: int, grace: float = 10) -> list[str]:
    """The command lines of the processes of `group` alive after `grace` seconds."""
    deadline = time.monotonic() + grace
    while True:
        alive = []
        for proc in Path("/proc").iterdir():
            try:
                if proc.name.isdigit() and os.getpgid(int(proc.name)) == group:
                    alive.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
            except (OSError, ProcessLookupError):
                continue
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.2)


def stop_group(group: int) -> None:
    try:
        os.killpg(group, signal.SIGTERM)
    except ProcessLookupError:
        return
    still_running(group, grace=40)


def drop_schema(schema: str) -> None:
    url = ADMIN_URL.rsplit("/", 1)[0] + "/lifecycle"
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    except psycopg.OperationalError:  # no such database: the document did not make one
        pass


def test_every_document_is_found_and_every_expectation_names_one() -> None:
    names = {name_of(document) for document in DOCUMENTS}
    assert {"README.md", "docs/README.md", "docs/walk-through.md", "docs/rules.md"} <= names
    assert set(EXPECTED) <= names
    assert all(bash_blocks(ROOT / name) for name in EXPECTED), "an expectation for a document without bash blocks"


def run_pasted(clone: Path, script: str, tmp_path: Path) -> tuple[int, str, str, list[str]]:
    """`script` in one bash at the clone's root, as a reader pastes it: (status, stdout, stderr,
    what it left running). Anything left running is stopped; its schema dropped."""
    schema = f"docs_{uuid.uuid4().hex[:10]}"
    env = {key: value for key, value in os.environ.items() if not key.startswith("LIFECYCLE_")}
    env["LIFECYCLE_DATABASE_SCHEMA"] = schema
    out, err = tmp_path / f"stdout-{schema}", tmp_path / f"stderr-{schema}"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        run = subprocess.Popen(["bash", "-c", "set -eo pipefail\n" + script], cwd=clone, env=env, stdout=stdout,
                               stderr=stderr, start_new_session=True)
        try:
            status = run.wait(timeout=420)
            left_running = still_running(run.pid)
        finally:
            stop_group(run.pid)  # a server the document left running
            drop_schema(schema)
    return status, out.read_text(errors="replace"), err.read_text(errors="replace"), left_running


def assert_ran_cleanly(name: str, clone: Path, status: int, printed: str, said: str, left_running: list[str]) -> None:
    logs = "".join(log.read_text(errors="replace") for log in (clone / "var").rglob("*.log"))
    assert status == 0, f"{name} stopped with {status}:\n{said[-3000:]}\n{printed[-2000:]}"
    assert not left_running, f"{name} leaves processes running: {left_running}"
    for text in (printed, said, logs):
        assert "Traceback" not in text, text[-3000:]
        assert "INTERNAL_ERROR" not in text
    for promised in EXPECTED.get(name, []):
        assert promised in printed, f"{name} does not show {promised!r}:\n{printed[-3000:]}"


@pytest.mark.postgres
@pytest.mark.parametrize("document", [d for d in DOCUMENTS if bash_blocks(d)], ids=name_of)
def test_the_bash_blocks_of_the_document_work_pasted_in_order_on_a_fresh_clone(tmp_path: Path, document: Path) -> None:
    clone = fresh_clone(tmp_path / "clone")
    port = free_port()
    script = "\n".join(as_run_here(block, port) for block in bash_blocks(document))
    assert_ran_cleanly(name_of(document), clone, *run_pasted(clone, script, tmp_path))


def test_the_walk_through_runs_again_on_the_same_clone(tmp_path: Path) -> None:
    """Pasted a second time in the same directory, the walk starts afresh (its own store,
    var/walk) and shows the same answers: no 401s or 404s from the first run's leftovers."""
    document = ROOT / "docs/walk-through.md"
    clone = fresh_clone(tmp_path / "clone")
    port = free_port()
    script = "\n".join(as_run_here(block, port) for block in bash_blocks(document))
    assert_ran_cleanly("first walk", clone, *run_pasted(clone, script, tmp_path))
    assert_ran_cleanly(name_of(document), clone, *run_pasted(clone, script, tmp_path))


def test_the_walk_through_s_service_printed_its_first_admin_key_once(tmp_path: Path) -> None:
    """The walk's first start made an admin key and said how to make others (from its log)."""
    document = ROOT / "docs/walk-through.md"
    first = bash_blocks(document)[0]
    assert "serve --port 8000" in first and "serve.log" in first
    clone = fresh_clone(tmp_path / "clone")
    port = free_port()
    script = "set -eo pipefail\n" + as_run_here(first, port) + "\nkill $SERVER; wait $SERVER || true\n"
    env = {key: value for key, value in os.environ.items() if not key.startswith("LIFECYCLE_")}
    run = subprocess.run(["bash", "-c", script], cwd=clone, env=env, capture_output=True, text=True, timeout=180,
                         start_new_session=True)
    assert run.returncode == 0, run.stderr[-3000:]
    served = (clone / "var/walk/serve.log").read_text()
    assert re.search(r"^\s+lk_[0-9a-f]{32}_\S{43}$", served, re.M), served[-2000:]
    assert "lifecycle keys create NAME --role ROLE" in served
