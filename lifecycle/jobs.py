"""The background side of bulk-registration jobs (K-1): a thread that looks, every few
seconds, for jobs whose worker died (their lease ran out in the database) and hands them to
a worker again. The database, not the broker, is what remembers an unfinished job."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from uuid import UUID

from lifecycle.availability import OutageLog, is_outage
from lifecycle.background import BackgroundThread

log = logging.getLogger(__name__)


class StalledJobSweeper(BackgroundThread):
    thread_name = "bulk-sweeper"

    def __init__(self, resume_stalled: Callable[[], list[UUID]], interval_seconds: float) -> None:
        self.resume_stalled = resume_stalled
        self.interval = interval_seconds
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def _loop(self) -> None:
        outage = OutageLog(log, "bulk sweeper")
        while not self._stopping.is_set():
            try:
                resumed = self.resume_stalled()
                outage.succeeded()
                if resumed:
                    log.info("bulk: resuming %d stalled job(s)", len(resumed))
            except Exception as error:
                if is_outage(error):  # the store away: one line, not a traceback every turn
                    outage.failed(error)
                else:
                    log.exception("bulk: looking for stalled jobs failed; trying again")
            self._stopping.wait(self.interval)

