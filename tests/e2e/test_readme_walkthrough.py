"""The README's walk-through, run as written against `lifecycle serve` on a fresh embedded
store: what it promises a new user (keys, a customer's session, refusals) must hold."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import httpx2 as httpx

from tests.mail_sink import free_port

ROOT = Path(__file__).resolve().parents[2]


def walkthrough_script() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## A walk through the seed's flow with curl"):]
    return re.search(r"```sh\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]


def test_the_readme_walkthrough_works_as_written(tmp_path: Path) -> None:
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIFECYCLE_")}
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen([str(ROOT / ".venv/bin/lifecycle"), "serve", "--port", str(port)],
                              cwd=tmp_path, env=env, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=2)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.3)
        script = walkthrough_script().replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        done = subprocess.run(["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=180)
        out = done.stdout
        assert done.returncode == 0, done.stderr[-3000:]
        served = (tmp_path / "serve.log").read_text()
    finally:
        server.terminate()
        server.wait(timeout=20)

    # The first start made an admin key and said how to make others.
    assert re.search(r"^\s+lk_[0-9a-f]{32}_\S{43}$", served, re.M), served[-2000:]
    assert "lifecycle keys create NAME --role ROLE" in served
    # The script's own keys, listed without their secrets.
    for name in ("shipping-desk", "call-center", "auditor"):
        assert re.search(rf"^\S+\s+{name}\s", out, re.M), out
    assert '"status":"active"' in out
    assert "仮ユーザー情報が登録されていません。" in out  # E1 on the second verify
    assert '"end":"2027-12-31"' in out  # the registration's first period (P-1)
    assert "出荷履歴にありません。" in out and "該当のシリアルは存在しません。" in out  # E4, E5
    assert '"code":"RENEWAL_WINDOW_CLOSED"' in out
    assert '"code":"FORBIDDEN"' in out and '"code":"UNAUTHENTICATED"' in out
    assert '"code":"SITE_NOT_FOUND"' in out
    assert '"actor":{"kind":"account"' in out and '"request_id":"' in out  # the customer made the changes
    assert "INTERNAL_ERROR" not in out and "Traceback" not in served
