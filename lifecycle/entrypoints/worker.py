"""`lifecycle worker`: a production worker process. It takes notification ids and bulk jobs
from the Redis broker with dramatiq worker threads and, unless told not to, runs the
scheduler that brings the timer table up to the log and enqueues what is due. Several such
processes can run side by side: the timer rows' claims keep any one mail to one sender at a
time. What it runs is assembled by lifecycle.bootstrap.bootstrap_worker."""

from __future__ import annotations

import logging
import signal
import threading

from lifecycle.bootstrap import bootstrap_worker
from lifecycle.logs import log_start
from lifecycle.settings import Settings

log = logging.getLogger(__name__)


class BrokerRequired(SystemExit):
    pass


def run_worker(settings: Settings, *, threads: int | None = None, scheduler: bool = True) -> None:
    if not settings.redis_url:
        raise BrokerRequired(
            "LIFECYCLE_REDIS_URL is not set: with the embedded default, `lifecycle serve` runs the worker itself."
        )
    log_start(settings, "worker")
    runtime = bootstrap_worker(settings, threads=threads, scheduler=scheduler)
    stopping = threading.Event()

    def stop(signum: int, _frame: object) -> None:
        log.info("worker: signal %d, stopping", signum)
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    runtime.start()
    log.info("worker: %d threads on %s (scheduler %s)", runtime.worker.worker_threads, settings.redis_namespace,
             "on" if scheduler else "off")
    try:
        stopping.wait()
    finally:
        runtime.stop()
