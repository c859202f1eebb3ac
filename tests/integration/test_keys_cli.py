"""`lifecycle keys create/list/revoke` on the store the service uses: a script takes the key
from the last line, the service accepts it, and refuses it once revoked."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient

from api.app import create_app
from tests.conftest import settings_for


def lifecycle(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lifecycle", *args], env=env, capture_output=True, text=True,
                          timeout=60)


def test_keys_made_listed_and_revoked_from_the_command_line(tmp_path: Path) -> None:
    settings = settings_for("sqlite", tmp_path)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("LIFECYCLE_")},
           "LIFECYCLE_DATABASE_URL": settings.database_url, "LIFECYCLE_VAR_DIR": str(settings.var_dir),
           "LIFECYCLE_SECRET_KEY": settings.secret_key}
    made = lifecycle(env, "keys", "create", "order-desk", "--role", "reference-data", "--role", "dashboards")
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip().splitlines()[-1]
    assert token.startswith("lk_") and made.stdout.strip() == token  # alone on stdout's last line

    refused = lifecycle(env, "keys", "create", "root-key", "--role", "root")
    assert refused.returncode == 1 and "UNKNOWN_ROLE" not in refused.stderr and "root" in refused.stderr
    assert "Traceback" not in refused.stderr

    for name in ["order\tdesk", "x" * 101, ".leading-dot", "名前"]:  # the same names HTTP refuses
        odd = lifecycle(env, "keys", "create", name, "--role", "audit")
        assert odd.returncode == 1 and odd.stdout == "" and "Traceback" not in odd.stderr, odd.stderr
        assert odd.stderr.startswith("error: An API key's name is 1-100 letters") and len(odd.stderr.splitlines()) == 1

    listed = lifecycle(env, "keys", "list")
    assert "order-desk" in listed.stdout and "audit" not in listed.stdout and "dashboards,reference-data" in listed.stdout
    assert token.split("_")[-1] not in listed.stdout  # never the secret

    with TestClient(create_app(settings)) as client:
        auth = {"Authorization": f"Bearer {token}"}
        assert client.get("/v1/dashboards/expiry", headers=auth).status_code == 200
        assert client.get("/v1/admin/api-keys", headers=auth).status_code == 403
        assert lifecycle(env, "keys", "revoke", "order-desk").returncode == 0
        assert client.get("/v1/dashboards/expiry", headers=auth).status_code == 401
    assert "revoked" in lifecycle(env, "keys", "list").stdout
    unknown = lifecycle(env, "keys", "revoke", "nobody")
    assert unknown.returncode == 1 and "nobody" in unknown.stderr
