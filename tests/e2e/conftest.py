from __future__ import annotations

from collections.abc import Iterator
from uuid import uuid4

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from lifecycle.domain.access import Role
from lifecycle.settings import Settings
from tests.fakes import FixedClock
from tests.scenario import Flow

ALL_ROLES = [role.value for role in Role]


def api_key(client: TestClient, *roles: str, name: str | None = None) -> str:
    """A new API key of the running app with these roles (all when none are named)."""
    wanted = list(roles) or ALL_ROLES
    _, token = client.app.state.runtime.access.create_key(name or f"test-{'-'.join(wanted)}-{uuid4().hex[:6]}", wanted)
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def anonymous(store_settings: Settings, clock: FixedClock) -> Iterator[TestClient]:
    """The app with no credentials on the client."""
    with TestClient(create_app(store_settings, clock=clock)) as client:
        yield client


@pytest.fixture
def client(anonymous: TestClient) -> TestClient:
    """The app, called with an API key that has every role (an internal service's view)."""
    anonymous.headers.update(bearer(api_key(anonymous, name="tests-all-roles")))
    return anonymous


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
