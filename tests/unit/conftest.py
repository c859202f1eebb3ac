from __future__ import annotations

from datetime import datetime

import pytest

from lifecycle.application import LifecycleApplication
from lifecycle.clock import TOKYO, FixedClock
from lifecycle.domain.terms import SupportTerms
from tests.fakes import FakePostalCodes, fake_hash


@pytest.fixture
def application() -> LifecycleApplication:
    """The application on the in-memory store (eventsourcing's POPO recorder), with fakes."""
    return LifecycleApplication(
        clock=FixedClock(datetime(2026, 11, 20, 10, tzinfo=TOKYO)),
        postal_codes=FakePostalCodes(),
        terms=SupportTerms(),
        secret_key="k",
        password_hasher=fake_hash,
        env={"PERSISTENCE_MODULE": "eventsourcing.popo"},
    )
