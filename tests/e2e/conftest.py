from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from lifecycle.clock import FixedClock
from lifecycle.settings import Settings
from tests.scenario import Flow


@pytest.fixture
def client(store_settings: Settings, clock: FixedClock) -> Iterator[TestClient]:
    with TestClient(create_app(store_settings, clock=clock)) as client:
        yield client


@pytest.fixture
def flow(client: TestClient) -> Flow:
    return Flow(client, client.app.state.application)


def assert_problem(response, status: int, code: str, message_ja: str | None = None) -> dict:  # noqa: ANN001
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == code
    assert body["status"] == status
    assert body["title"] and body["detail"] and body["message_ja"]
    if message_ja is not None:
        assert body["message_ja"] == message_ja
    return body
