"""Work that a command does after its answer has gone (OWASP ASVS 6.3.x: an anonymous caller
must not learn from the answer's timing whether an address is registered). The answer of a
password-reset request is the same for every address; whether anything is recorded for it
is decided here, on one background thread per process, in the request's context (its actor
and request id are recorded on the event as usual).

It starts `delay` seconds after it is handed over: started at once, it would share the
process (and Python's GIL) with the answer still being written, and slow that answer down
only when there is work to do (measured: 2.7 against 2.1 ms), which is the very difference
to hide.

The work is not durable: a process that stops between the answer and the work loses the
request, and the person asks again (the answer promised nothing else)."""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for

log = logging.getLogger(__name__)


class AfterAnswer:
    def __init__(self, delay: float = 0.05) -> None:
        self.delay = delay
        self._executor: ThreadPoolExecutor | None = None
        self._pending: set[Future[None]] = set()
        self._lock = threading.Lock()

    def run(self, what: str, work: Callable[[], object]) -> None:
        """Runs `work` after the caller returns; a failure is logged (`what` names it)."""
        context = contextvars.copy_context()
        due = time.monotonic() + self.delay

        def task() -> None:
            time.sleep(max(0.0, due - time.monotonic()))
            try:
                context.run(work)
            except Exception:  # noqa: BLE001 - nobody waits for it: say it in the log
                log.exception("%s failed after its answer was sent", what)

        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="after-answer")
            future = self._executor.submit(task)
            self._pending.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: Future[None]) -> None:
        with self._lock:
            self._pending.discard(future)

    def wait(self, timeout: float | None = 10.0) -> None:
        """Until the work handed over so far is done (tests; stopping)."""
        with self._lock:
            pending = set(self._pending)
        wait_for(pending, timeout=timeout)

    def close(self) -> None:
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)
