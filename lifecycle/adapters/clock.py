"""The real clock (the port `lifecycle.ports.Clock`); tests pass tests.fakes.FixedClock."""

from __future__ import annotations

from datetime import datetime, timezone


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(timezone.utc)
