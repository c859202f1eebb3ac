"""The embedded default's worker: threads in the API process that send what the scheduler
dispatches, so `lifecycle serve` alone delivers mails (to the Maildir unless SMTP is set).

It runs the same `deliver` as the dramatiq actor; its queue lives in memory, which loses
nothing the timers do not keep: an id dropped at shutdown is still a pending row, and the
scheduler dispatches it again after `notification_requeue_seconds`."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Any
from uuid import UUID

log = logging.getLogger(__name__)


class InProcessWorker:
    def __init__(self, deliver: Callable[[Any], object], threads: int = 2, batch_size: int | None = None) -> None:
        """`deliver` takes one id, or with a `batch_size` a list of up to that many (the
        mails: what the queue holds when a thread is free)."""
        self.deliver = deliver
        self.threads = max(1, threads)
        self.batch_size = batch_size
        self._queue: queue.Queue[UUID | None] = queue.Queue()
        self._queued: set[UUID] = set()
        self._lock = threading.Lock()
        self._workers: list[threading.Thread] = []
        self._idle = threading.Condition(self._lock)
        self._busy = 0
        self._stopping = threading.Event()

    def dispatch(self, notification_ids: Sequence[UUID]) -> None:
        with self._lock:
            for notification_id in notification_ids:
                if notification_id not in self._queued:
                    self._queued.add(notification_id)
                    self._queue.put(notification_id)

    def _work(self) -> None:
        while True:
            batch = [self._queue.get()]
            while len(batch) < (self.batch_size or 1) and batch[-1] is not None:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            stop = batch[-1] is None or self._stopping.is_set()
            ids = [notification_id for notification_id in batch if notification_id is not None]
            if stop:
                return  # what is left in the queue is still pending in the timer table
            with self._lock:
                self._queued.difference_update(ids)
                self._busy += 1
            try:
                if self.batch_size is None:
                    self.deliver(ids[0])
                else:
                    self.deliver(ids)
            except Exception:
                log.exception("notifications %s: delivery failed; the scheduler will dispatch them again",
                              ", ".join(map(str, ids)))
            finally:
                with self._lock:
                    self._busy -= 1
                    self._idle.notify_all()

    def join(self, timeout: float = 30.0) -> bool:
        """Wait until everything dispatched so far has been handled (tests, benchmarks)."""
        with self._lock:
            return self._idle.wait_for(lambda: not self._queued and self._busy == 0, timeout)

    def start(self) -> None:
        self._stopping.clear()
        for index in range(self.threads):
            thread = threading.Thread(target=self._work, name=f"mail-worker-{index}", daemon=True)
            thread.start()
            self._workers.append(thread)

    def stop(self) -> None:
        self._stopping.set()
        for _ in self._workers:
            self._queue.put(None)
        for thread in self._workers:
            thread.join(timeout=30)
        self._workers = []
