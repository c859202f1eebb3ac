"""/docs (Swagger UI) and /redoc work with no internet (issue 11, deliverable 6): every script,
stylesheet and icon the pages load comes from the service itself (the files fastapi-offline
ships, under api.access.DOCS_ASSETS), and those files answer anyone, like the pages."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from api.access import DOCS_ASSETS, OPEN_DOCUMENTS
from lifecycle.settings import Settings
from tests.conftest import settings_for
from tests.e2e.conftest import assert_problem

PAGES = ("/docs", "/redoc")


@pytest.fixture
def store_settings(tmp_path: Path) -> Settings:
    """The pages do not depend on the store: SQLite only."""
    return settings_for("sqlite", tmp_path)


class Assets(HTMLParser):
    """The URLs a page makes the browser load: scripts, stylesheets, icons, images, frames."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str]] = []  # (what, url)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag in ("script", "img", "iframe") and found.get("src"):
            self.urls.append((tag, found["src"] or ""))
        if tag == "link" and found.get("href"):
            self.urls.append((f"link {found.get('rel')}", found["href"] or ""))


def assets_of(page: str) -> list[tuple[str, str]]:
    parser = Assets()
    parser.feed(page)
    return parser.urls


CONTENT_TYPES = {".js": "javascript", ".css": "text/css", ".png": "image/png"}


@pytest.mark.parametrize("page", PAGES)
def test_the_page_loads_every_script_and_stylesheet_from_the_service(anonymous: TestClient, page: str) -> None:
    answer = anonymous.get(page)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/html")
    html = answer.text
    # Nothing from another host: no CDN, no fonts, no absolute URL at all.
    assert not re.search(r"https?:|//[a-z]|cdn", html, re.I), html
    urls = assets_of(html)
    kinds = {what.split()[0] for what, _ in urls}
    assert "script" in kinds and "link" in kinds, urls
    if page == "/docs":
        assert any("stylesheet" in what for what, _ in urls), urls
    for what, url in urls:
        parts = urlsplit(url)
        assert not parts.scheme and not parts.netloc, f"{page}: {what} {url} is not on the service's origin"
        assert parts.path.startswith(f"{DOCS_ASSETS}/"), url
        served = anonymous.get(url)
        assert served.status_code == 200, f"{page}: {what} {url}: {served.status_code}"
        expected = CONTENT_TYPES[Path(parts.path).suffix]
        assert expected in served.headers["content-type"], (url, served.headers["content-type"])
        assert len(served.content) > 1000, url  # the file itself, not a placeholder


def test_swagger_ui_and_redoc_are_the_real_bundles_reading_the_service_s_openapi(anonymous: TestClient) -> None:
    docs = anonymous.get("/docs").text
    redoc = anonymous.get("/redoc").text
    scripts = {url for page in (docs, redoc) for what, url in assets_of(page) if what == "script"}
    bundles = {Path(url).name: anonymous.get(url).text for url in scripts}
    assert "SwaggerUIBundle" in bundles["swagger-ui-bundle.js"]
    assert "Redoc" in bundles["redoc.standalone.js"]
    # both pages read the service's own document
    [swagger_spec] = re.findall(r"url: '([^']+)'", docs)
    [redoc_spec] = re.findall(r'spec-url="([^"]+)"', redoc)
    assert swagger_spec == redoc_spec == "/openapi.json"
    assert anonymous.get(swagger_spec).json()["info"]["title"] == "Support contract lifecycle"
    # Swagger UI's validator badge would send the document's address to validator.swagger.io.
    assert '"validatorUrl": null' in docs


def test_the_pages_and_their_files_answer_anyone(client: TestClient) -> None:
    """Open documents: no credentials, a stale token, or an API key, all get the same pages."""
    files = sorted({url for page in PAGES for _, url in assets_of(client.get(page).text)})
    assert files
    for path in (*PAGES, "/openapi.json", "/docs/oauth2-redirect", *files):
        assert path in OPEN_DOCUMENTS or path.startswith(f"{DOCS_ASSETS}/"), path
        for headers in ({"Authorization": ""}, {"Authorization": "Bearer lk_stale"}, {}):
            answer = client.get(path, headers=headers)
            assert answer.status_code == 200, (path, headers, answer.status_code, answer.text[:200])


def test_an_unknown_file_or_a_write_to_the_files_is_a_problem_not_a_500(anonymous: TestClient) -> None:
    assert_problem(anonymous.get(f"{DOCS_ASSETS}/nothing-here.js"), 404, "NOT_FOUND")
    assert_problem(anonymous.get(f"{DOCS_ASSETS}/../core.py"), 404, "NOT_FOUND")  # nothing outside the folder
    refused = anonymous.post(f"{DOCS_ASSETS}/swagger-ui.css", content=b"x")
    assert_problem(refused, 405, "METHOD_NOT_ALLOWED")
    assert refused.headers["allow"] == "GET, HEAD"
