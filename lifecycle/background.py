"""A service that runs one daemon thread until it is stopped: the bulk sweeper, the timer
scheduler, the audit checkpoints."""

from __future__ import annotations

import threading


class BackgroundThread:
    """Runs `_loop` in a daemon thread named `thread_name` between start() and stop(). The
    subclass's constructor sets `_stopping` (an Event its loop watches) and `_thread` (None)."""

    thread_name: str
    join_seconds: float = 10
    _stopping: threading.Event
    _thread: threading.Thread | None

    def _loop(self) -> None:
        raise NotImplementedError

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name=self.thread_name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=self.join_seconds)
            self._thread = None
