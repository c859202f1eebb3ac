"""Shared fixtures: a clock that stands still, and event stores on SQLite and on a real
PostgreSQL database of this run's own (dropped at the end)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from lifecycle.domain.dates import TOKYO
from lifecycle.settings import Settings
from tests.fakes import FixedClock

ADMIN_URL = os.environ.get("LIFECYCLE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def clock() -> FixedClock:
    """10:00 in Tokyo on Friday 2026-11-20, unless a test moves it."""
    return FixedClock(datetime(2026, 11, 20, 10, 0, tzinfo=TOKYO))


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A database of this test run's own; a missing server fails the tests, never skips them."""
    name = f"lifecycle_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    base = ADMIN_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def settings_for(store: str, tmp_path: Path, postgres_url: str | None = None, **overrides: object) -> Settings:
    """Settings for a store of this test's own: a SQLite file, or a fresh PostgreSQL schema."""
    common = {"var_dir": tmp_path / "var", "secret_key": "test-secret", **overrides}
    if store == "sqlite":
        return Settings(database_url=f"sqlite:///{tmp_path / 'events.sqlite3'}", **common)
    assert postgres_url is not None
    return Settings(database_url=postgres_url, database_schema=f"t_{uuid.uuid4().hex[:12]}", **common)


@pytest.fixture(params=["sqlite", "postgres"])
def store_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    if request.param == "postgres":
        return settings_for("postgres", tmp_path, request.getfixturevalue("postgres_url"))
    return settings_for("sqlite", tmp_path)
