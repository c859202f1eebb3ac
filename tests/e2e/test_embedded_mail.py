"""The embedded default as a new user runs it: `lifecycle serve` alone, on SQLite under
var/, with no Redis and no SMTP server: the registration's service-in mail lands in the
Maildir when it is due."""

from __future__ import annotations

import mailbox
import os
import subprocess
import sys
import time
from email import message_from_binary_file
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from uuid import UUID

import httpx2 as httpx

from lifecycle.bootstrap import build_application
from lifecycle.settings import Settings
from tests.mail_sink import free_port
from tests.scenario import Flow, authorized, service_key


def test_M1_lifecycle_serve_alone_delivers_the_service_in_mail_to_the_maildir(tmp_path: Path) -> None:
    var = tmp_path / "var"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("LIFECYCLE_")},
        "LIFECYCLE_VAR_DIR": str(var),
        "LIFECYCLE_DATABASE_URL": f"sqlite:///{var / 'lifecycle.sqlite3'}",
        "LIFECYCLE_SECRET_KEY": "test-secret",
        # Due at once rather than the next business day at 10:00, so the test need not wait.
        "LIFECYCLE_SERVICE_IN_BUSINESS_DAYS": "0",
        "LIFECYCLE_SCHEDULER_INTERVAL_SECONDS": "0.3",
    }
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    server = subprocess.Popen([sys.executable, "-m", "lifecycle", "serve", "--port", str(port)],
                              env=env, stdout=log, stderr=log)
    try:
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10)
        deadline = time.monotonic() + 30
        while True:
            assert server.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                client.get("/openapi.json")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.2)
        application = build_application(Settings(_env_file=None, var_dir=var, secret_key="test-secret",
                                                 database_url=env["LIFECYCLE_DATABASE_URL"]))
        settings = Settings(_env_file=None, var_dir=var, secret_key="test-secret",
                            database_url=env["LIFECYCLE_DATABASE_URL"])
        authorized(client, service_key(settings, application))
        flow = Flow(client, application)  # type: ignore[arg-type]
        site_id = flow.ready_site()
        serial = flow.ship()
        flow.register(site_id, flow.sell_ticket(sold_on=time.strftime("%Y-%m-01")), serial)
        application.close()

        def maildir() -> list[EmailMessage]:
            return list(mailbox.Maildir(var / "mail", factory=lambda f: message_from_binary_file(f, policy=default)))

        deadline = time.monotonic() + 30
        while not any("登録完了のご連絡" in m["Subject"] for m in maildir()):
            assert time.monotonic() < deadline, [m["Subject"] for m in maildir()]
            time.sleep(0.2)
        [message] = [m for m in maildir() if "登録完了のご連絡" in m["Subject"]]
        assert f"シリアル番号：{serial}" in message.get_content()
        assert "noc@example.co.jp" in message["To"] and "ichiro@example.co.jp" in message["To"]
        assert UUID(message["Message-ID"].strip("<>").split("@")[0])
    finally:
        server.terminate()
        server.wait(timeout=20)
