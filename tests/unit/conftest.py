from __future__ import annotations

from datetime import datetime

import pytest

from lifecycle.application import LifecycleApplication
from lifecycle.bootstrap import build_application
from lifecycle.domain.dates import TOKYO
from lifecycle.settings import Settings
from tests.fakes import IN_MEMORY_STORE, FakePostalCodes, FixedClock, fake_hash


@pytest.fixture
def application() -> LifecycleApplication:
    """The application as bootstrap assembles it, on the in-memory store (eventsourcing's POPO
    recorder), with fakes of the clock, the postal directory and the password hasher."""
    return build_application(
        Settings(secret_key="k"),
        clock=FixedClock(datetime(2026, 11, 20, 10, tzinfo=TOKYO)),
        postal_codes=FakePostalCodes(),
        password_hasher=fake_hash,
        store_env=IN_MEMORY_STORE,
    )
