"""`lifecycle worker`: a production worker process. It takes notification ids from the
Redis broker with dramatiq worker threads and, unless told not to, runs the scheduler that
brings the timer table up to the log and enqueues what is due. Several such processes can
run side by side: the timer rows' claims keep any one mail to one sender at a time."""

from __future__ import annotations

import logging
import signal
import threading

import dramatiq

from lifecycle.bootstrap import build_application, build_bulk, build_notifications
from lifecycle.jobs import StalledJobSweeper
from lifecycle.settings import Settings
from lifecycle.startup import log_start
from workers.actors import declare_run_bulk_job, declare_send_notification

log = logging.getLogger(__name__)


class BrokerRequired(SystemExit):
    pass


def run_worker(settings: Settings, *, threads: int | None = None, scheduler: bool = True) -> None:
    if not settings.redis_url:
        raise BrokerRequired(
            "LIFECYCLE_REDIS_URL is not set: with the embedded default, `lifecycle serve` runs the worker itself."
        )
    log_start(settings, "worker")
    application = build_application(settings)
    notifications = build_notifications(settings, application)
    assert notifications.broker is not None
    declare_send_notification(notifications.broker, notifications.sender.deliver, settings.notification_claim_seconds)
    # K-1: bulk jobs; a job whose worker died is found by its lease and enqueued again.
    bulk = build_bulk(settings, application, notifications.broker, in_process=False)
    declare_run_bulk_job(notifications.broker, bulk.imports.run, time_limit_seconds=24 * 3600)
    sweeper = StalledJobSweeper(bulk.imports.resume_stalled, settings.bulk_sweep_seconds)
    worker = dramatiq.Worker(notifications.broker, worker_threads=threads or settings.worker_threads, worker_timeout=1000)
    # dramatiq's default prefetch (2 per thread) starves the threads between Redis round trips.
    worker.queue_prefetch = settings.worker_prefetch
    stopping = threading.Event()

    def stop(signum: int, _frame: object) -> None:
        log.info("worker: signal %d, stopping", signum)
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    worker.start()
    sweeper.start()
    if scheduler:
        notifications.scheduler.start()
    log.info("worker: %d threads on %s (scheduler %s)", worker.worker_threads, settings.redis_namespace,
             "on" if scheduler else "off")
    try:
        stopping.wait()
    finally:
        if scheduler:
            notifications.scheduler.stop()
        sweeper.stop()
        worker.stop(timeout=int(settings.notification_claim_seconds * 1000))
        notifications.close()
        application.close()
