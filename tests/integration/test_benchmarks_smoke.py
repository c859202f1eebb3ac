"""Benchmarks that cannot rot: every script in benchmarks/ runs at its `--smoke` size, on the
real PostgreSQL and Redis of the suite, and must finish with exit 0 having printed figures.
A new script is picked up by its file name, so it is covered from the day it lands."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ADMIN_URL

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
SCRIPTS = sorted(p.name for p in BENCHMARKS.glob("*.py") if p.name != "smoke.py")
# Scripts with more than one mode run once per mode.
MODES = {"mail_reminders.py": [["--mode", "redis"], ["--mode", "embedded"]]}
RUNS = [(name, extra) for name in SCRIPTS for extra in MODES.get(name, [[]])]


def test_every_benchmark_script_is_run_here() -> None:
    """The list above is read from the folder: a script that is not a benchmark must not hide there."""
    assert {"registrations_http.py", "projections.py", "mail_reminders.py", "bulk_import.py"} <= set(SCRIPTS)


@pytest.mark.postgres
@pytest.mark.parametrize(("script", "extra"), RUNS, ids=[f"{n}{' '.join(e)}" for n, e in RUNS])
def test_benchmark_runs_at_smoke_size(script: str, extra: list[str], tmp_path: Path) -> None:
    env = {
        **os.environ,
        "LIFECYCLE_TEST_POSTGRES_URL": ADMIN_URL,
        "LIFECYCLE_BENCH_POSTGRES_URL": ADMIN_URL,
        "LIFECYCLE_BENCH_REDIS_URL": "redis://127.0.0.1:6379/14",
    }
    args = [sys.executable, str(BENCHMARKS / script), "--smoke", *extra]
    if script in {"contract_growth.py", "registrations_http.py", "bulk_in_process.py", "bulk_import.py"}:
        args += ["--admin-url", ADMIN_URL]
    run = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, f"{script} exited {run.returncode}\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    assert re.search(r"\d+(\.\d+)? ?(ms|s\b|/s|rows/s|mails/s|TPS)", run.stdout), run.stdout[-2000:]
