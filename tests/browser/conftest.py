"""The portal in a real browser: the service served as `lifecycle serve` on a free port
(SQLite, the Maildir mail transport, mailed links pointing at that port), driven by Playwright
through the system's chromium (scripts/test.sh installs Debian's `chromium` and
`fonts-noto-cjk`; nothing is downloaded at run time), with axe-core from
axe-playwright-python run inside the page.

One server and one browser for the whole session; each test gets fresh browser contexts (its
own cookies). Screenshots of every page a test visits go to var/screenshots/ (or
LIFECYCLE_SCREENSHOTS), named after the test and the step.
"""

from __future__ import annotations

import email
import email.policy
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import uuid4

import httpx2 as httpx
import pytest

from tests.support import free_port, stop, wait_until_up

CHROMIUM = os.environ.get("LIFECYCLE_CHROMIUM", "/usr/bin/chromium")
# No update checks, no sync, no field trials, nothing that phones home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--no-first-run",
    "--no-default-browser-check",
    "--metrics-recording-only",
    "--disable-features=Translate,OptimizationHints,MediaRouter,AutofillServerCommunication",
]
SCREENSHOTS = Path(os.environ.get("LIFECYCLE_SCREENSHOTS", "var/screenshots"))
PASSWORD = "portal2026pw"


@dataclass
class Served:
    url: str
    maildir: Path
    api_key: str  # every role: reference data (shipments, tickets), the clock aid
    env: dict[str, str] = field(default_factory=dict)

    def mails_to(self, address: str) -> list[email.message.EmailMessage]:
        found = []
        for path in sorted((self.maildir / "new").glob("*"), key=lambda p: p.stat().st_mtime):
            message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if address.lower() in str(message.get("To", "")).lower():
                found.append(message)
        return found

    def link_in_mail(self, address: str, page: str, timeout: float = 20) -> str:
        """The URL of the portal `page` (e.g. "signup/confirm") in the latest mail to `address`."""
        pattern = re.compile(re.escape(f"{self.url}/portal/{page}") + r"\?token=\S+")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for message in reversed(self.mails_to(address)):
                body = message.get_body(preferencelist=("plain",))
                found = pattern.search(body.get_content() if body else "")
                if found:
                    return found.group(0)
            time.sleep(0.2)
        raise AssertionError(f"no mail to {address} with a link to /portal/{page}")

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.api_key}", **kwargs.pop("headers", {})}
        return httpx.request(method, f"{self.url}{path}", headers=headers, timeout=30, **kwargs)


@pytest.fixture(scope="session")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("portal")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "LIFECYCLE_DATABASE_URL": f"sqlite:///{home}/lifecycle.sqlite3",
        "LIFECYCLE_VAR_DIR": str(home),
        "LIFECYCLE_MAILDIR": str(home / "mail"),
        "LIFECYCLE_PUBLIC_URL": url,
        "LIFECYCLE_SCHEDULER_INTERVAL_SECONDS": "0.3",
        "LIFECYCLE_ALLOW_CLOCK_OVERRIDE": "true",
        "LIFECYCLE_REDIS_URL": "",
        # One client (this machine) signs up and logs in a customer per test, faster than a
        # person could: the per-client limits (tested in tests/e2e) would turn a quick run away.
        "LIFECYCLE_SIGN_UP_LIMIT_PER_CLIENT": "1000/minute",
        "LIFECYCLE_LOGIN_LIMIT_PER_CLIENT": "1000/minute",
        "LIFECYCLE_PASSWORD_RESET_LIMIT_PER_CLIENT": "1000/minute",
        "LIFECYCLE_OPEN_ROUTE_LIMIT_PER_CLIENT": "10000/minute",
    }
    for name in [n for n in env if n.startswith("LIFECYCLE_") and n.endswith("_URL_BASE")]:
        del env[name]
    cli = [sys.executable, "-m", "lifecycle"]
    made = subprocess.run([*cli, "keys", "create", "browser-tests", *sum((["--role", r] for r in (
        "reference-data", "registrations", "callcenter", "audit", "dashboards", "admin")), [])],
        env=env, capture_output=True, text=True, check=True)
    api_key = made.stdout.strip().splitlines()[-1].strip()
    log = home / "server.log"
    process = subprocess.Popen([*cli, "serve", "--host", "127.0.0.1", "--port", str(port)],
                               env=env, stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    try:
        wait_until_up(url, process, timeout=60, log=log)
        yield Served(url, home / "mail", api_key, env)
    finally:
        stop(process, timeout=30)


# Package scope: sync_playwright keeps an event loop running in the main thread while it is open,
# and the suites collected after this one call asyncio.run (which refuses to run inside it).
@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/test.sh installs Debian's chromium (or set LIFECYCLE_CHROMIUM)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def new_page(browser: Any, served: Served, request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    """new_page(js=True, width=1280): a page in a context of its own (its own cookies)."""
    contexts = []

    def make(js: bool = True, width: int = 1280, height: int = 900) -> Any:
        context = browser.new_context(
            base_url=served.url, java_script_enabled=js, viewport={"width": width, "height": height},
            locale="ja-JP", timezone_id="Asia/Tokyo",
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def shot(request: pytest.FixtureRequest) -> Callable[[Any, str], Path]:
    """shot(page, "step"): a full-page screenshot under var/screenshots/<test>/NN-step.png."""
    folder = SCREENSHOTS / re.sub(r"[^\w.-]+", "_", request.node.name)
    folder.mkdir(parents=True, exist_ok=True)
    counter = iter(range(1, 1000))

    def take(page: Any, name: str) -> Path:
        path = folder / f"{next(counter):02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's serious and critical violations of the page as it is now."""
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [v for v in results.response["violations"] if v.get("impact") in ("serious", "critical")]


def assert_accessible(page: Any) -> None:
    """axe finds nothing serious or critical, and nothing scrolls sideways at this width."""
    violations = axe_violations(page)
    assert not violations, [(v["id"], v["help"], [n["target"] for n in v["nodes"]][:3]) for v in violations]
    overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{page.url} scrolls sideways by {overflow}px"


def unique_email(label: str = "user") -> str:
    return f"{label}-{uuid4().hex[:10]}@example.co.jp"


@dataclass
class Customer:
    email: str
    password: str


def sign_up_and_confirm(page: Any, served: Served, address: str | None = None, password: str = PASSWORD) -> Customer:
    """The seed's 1-1 and 1-2 through the pages, then the mailed link: an active account."""
    address = address or unique_email()
    page.goto("/portal/signup")
    page.get_by_role("button", name="同意する").click()
    page.get_by_label("メールアドレス").fill(address)
    page.get_by_label("パスワード", exact=True).fill(password)
    page.get_by_label("パスワード（確認）").fill(password)
    page.get_by_label("氏名").fill("山田 太郎")
    page.get_by_label("会社名").fill("株式会社サンプル")
    page.get_by_label("電話番号").fill("03-1234-5678")
    page.get_by_role("button", name="登録する").click()
    page.get_by_role("button", name="登録する").click()
    page.get_by_role("heading", name="確認メールを送信しました").wait_for()
    page.goto(served.link_in_mail(address, "signup/confirm"))
    page.get_by_role("heading", name="新規会員登録完了").wait_for()
    return Customer(address, password)


def log_in(page: Any, customer: Customer) -> None:
    page.goto("/portal/login")
    page.get_by_label("メールアドレス").fill(customer.email)
    page.get_by_label("パスワード").fill(customer.password)
    page.get_by_role("button", name="ログイン").click()
    page.get_by_role("heading", name="ユーザートップ").wait_for()


@pytest.fixture
def customer(served: Served, new_page: Callable[..., Any]) -> Customer:
    """A confirmed account (signed up through the pages in a browser of its own)."""
    return sign_up_and_confirm(new_page(), served)
