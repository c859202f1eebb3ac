"""Whether a dependency (the event store, the broker) answers, as this process last saw it,
and how the service behaves while one does not (issue 11's outages).

- A request that needs a dependency that is away fails fast with `DependencyDown` (the API
  answers 503 with Retry-After) instead of waiting out timeouts and retries: threads are
  not held, so answers stay quick under load.
- Background loops (projection runners, the scheduler, the LISTEN thread) keep running
  through an outage and log one line when they lose a dependency and one when they resume
  (`OutageLog`), never a traceback per poll.

The adapters decide what "away" means (lifecycle/adapters/event_store.py probes PostgreSQL;
lifecycle/adapters/broker.py turns Redis errors into `BrokerDown`); nothing here does I/O.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from eventsourcing.persistence import InterfaceError, OperationalError


class DependencyDown(Exception):
    """A dependency does not answer now; nothing was done. Try again later."""

    dependency = "dependency"


class EventStoreDown(DependencyDown):
    dependency = "store"


class EventStoreBusy(EventStoreDown):
    """The store answers but not in time (no pooled connection free, a lock or statement
    timeout): also retried by the client, not by us (a retry would wait the timeout again)."""


class BrokerDown(DependencyDown):
    dependency = "broker"


def is_outage(error: BaseException) -> bool:
    """An error that means a dependency is away (or too slow), not a bug."""
    return isinstance(error, (DependencyDown, OperationalError, InterfaceError))


class Availability:
    """One dependency's state as this process sees it: up, or down since when and why.
    Listeners run when it answers again (to wake background loops at once)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.down_since: datetime | None = None
        self.last_error: str | None = None
        self._down_at = 0.0  # monotonic
        self._lock = threading.Lock()
        self._up = threading.Event()
        self._up.set()
        self.recovery_listeners: list[Callable[[], None]] = []

    @property
    def is_up(self) -> bool:
        return self._up.is_set()

    def mark_down(self, error: BaseException | str) -> bool:
        """Answers True when this is news (the dependency was up)."""
        with self._lock:
            self.last_error = error if isinstance(error, str) else describe(error)
            if not self._up.is_set():
                return False
            self._up.clear()
            self.down_since = datetime.now(UTC)
            self._down_at = time.monotonic()
            return True

    def mark_up(self) -> float | None:
        """Answers how long it was down (None when it was up)."""
        with self._lock:
            if self._up.is_set():
                return None
            self._up.set()
            self.down_since = None
            lasted = time.monotonic() - self._down_at
        for listener in list(self.recovery_listeners):
            try:
                listener()
            except Exception:  # noqa: BLE001 - a listener must not keep the others from running
                logging.getLogger(__name__).debug("recovery listener failed", exc_info=True)
        return lasted

    def wait_until_up(self, timeout: float) -> bool:
        return self._up.wait(timeout)

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": "up" if self.is_up else "down",
            "since": self.down_since.isoformat() if self.down_since else None,
            "error": None if self.is_up else self.last_error,
        }


def describe(error: BaseException) -> str:
    """One line: the class and the first line of the message (psycopg's run over lines)."""
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class OutageLog:
    """For a background loop: one warning when it starts failing for want of a dependency,
    one line when it works again; the failures in between are counted, not logged."""

    def __init__(self, log: logging.Logger, what: str) -> None:
        self.log = log
        self.what = what
        self.failures = 0
        self._since = 0.0

    def failed(self, error: BaseException) -> None:
        if self.failures == 0:
            self._since = time.monotonic()
            self.log.warning("%s: paused, a dependency is unavailable (%s); retrying until it answers",
                             self.what, describe(error))
        self.failures += 1

    def succeeded(self) -> None:
        if self.failures:
            self.log.info("%s: resumed after %.1fs (%d failed attempts)",
                             self.what, time.monotonic() - self._since, self.failures)
            self.failures = 0
