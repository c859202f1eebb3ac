"""What one process knows of its dependencies, for /v1/health and /v1/health/ready: the
event store (tried now), the broker (pinged now, when configured), the SMTP relay's last
result here, the read models' lag and failures, and who runs the timer scheduler.

Ready means able to serve: the event store answers. A broker or SMTP relay that is away
makes the service `degraded`, not unready: commands keep working and mails wait in their
timers (in the store) until they can go."""

from __future__ import annotations

import os
from typing import Any

from lifecycle.adapters.broker import ping
from lifecycle.adapters.dependencies import BadSetting, describe_broker, describe_mail, store_target
from lifecycle.adapters.mailers import SmtpMailer
from lifecycle.availability import describe
from lifecycle.bootstrap import Runtime

# A projection further behind the log than this is reported as lagging.
LAGGING_AFTER = 1000


def health_report(runtime: Runtime) -> dict[str, Any]:
    store = _store(runtime)
    projections: list[dict[str, Any]] = []
    if store["status"] == "up":
        try:
            projections = runtime.read_models.status()
        except Exception as error:  # noqa: BLE001 - the store went away in between
            store.update(status="down", error=describe(error))
    head = max((p["head"] for p in projections), default=0)
    lagging = any(p["lag"] > LAGGING_AFTER or p["last_error"] for p in projections)
    stopped = [p["name"] for p in projections if p.get("failed_event")]  # at an event it cannot apply
    dependencies = {
        "store": store,
        "broker": _broker(runtime),
        "smtp": _smtp(runtime),
        "read_models": {
            "status": "down" if store["status"] == "down" else "stopped" if stopped else "lagging" if lagging else "up",
            "max_lag": max((p["lag"] for p in projections), default=0),
            "failing": [p["name"] for p in projections if p["last_error"]],
            "stopped": stopped,
        },
        "scheduler": _scheduler(runtime),
    }
    if store["status"] == "down":
        status = "unavailable"
    elif stopped or dependencies["scheduler"]["timers"]["state"] == "stopped":
        status = "degraded"
    elif lagging:
        status = "lagging"
    elif dependencies["broker"]["status"] == "down" or dependencies["smtp"]["status"] == "down":
        status = "degraded"
    else:
        status = "ok"
    return {
        "status": status,
        "ready": store["status"] == "up",
        "process_id": os.getpid(),
        "log_head": head,
        "projections": projections,
        "dependencies": dependencies,
        "detail": store.get("error") if store["status"] == "down" else None,
    }


def is_up(runtime: Runtime) -> bool:
    """Whether this process can serve (the event store answers): all an anonymous caller is
    told. One query, no names of hosts, users or processes."""
    return _store(runtime)["status"] == "up"


def _store(runtime: Runtime) -> dict[str, Any]:
    availability = getattr(runtime.application.factory, "datastore", None)
    availability = getattr(availability, "availability", None)
    entry: dict[str, Any] = {"status": "up", "detail": _safe(lambda: str(store_target(runtime.settings))),
                             "since": None, "error": None}
    try:
        runtime.application.recorder.max_notification_id()
    except Exception as error:  # noqa: BLE001 - whatever it is, the store does not answer
        entry.update(status="down", error=describe(error))
    if availability is not None and not availability.is_up:
        entry.update(status="down", since=availability.down_since, error=availability.last_error)
    return entry


def _broker(runtime: Runtime) -> dict[str, Any]:
    broker = runtime.notifications.broker
    if broker is None:
        return {"status": "not_configured", "detail": describe_broker(runtime.settings), "error": None}
    try:
        ping(broker)
    except Exception as error:  # noqa: BLE001
        return {"status": "down", "detail": describe_broker(runtime.settings), "error": describe(error)}
    return {"status": "up", "detail": describe_broker(runtime.settings), "error": None}


def _smtp(runtime: Runtime) -> dict[str, Any]:
    mailer = runtime.notifications.mailer
    detail = describe_mail(runtime.settings)
    if not isinstance(mailer, SmtpMailer):
        return {"status": "not_configured", "detail": detail, "last_result": None, "last_at": None, "error": None}
    if runtime.notifications.in_process is None:
        detail += "; mails are sent by `lifecycle worker` processes, not this one"
    if mailer.last_result is None:
        return {"status": "unknown", "detail": detail, "last_result": None, "last_at": None, "error": None}
    outcome, at, error = mailer.last_result
    return {"status": "down" if outcome == "failed" else "up", "detail": detail, "last_result": outcome,
            "last_at": at, "error": error}


def _scheduler(runtime: Runtime) -> dict[str, Any]:
    scheduler = runtime.notifications.scheduler
    try:
        timers = runtime.notifications.projection.status()
    except Exception as error:  # noqa: BLE001 - the store went away: said under `store`
        timers = {"position": None, "state": "unknown", "failed_event": None, "error": describe(error)}
    return {
        "runs_here": scheduler.running_here,
        "leader": scheduler.running_here and scheduler.is_leader,
        "last_run_at": scheduler.last_run_at,
        "timers": timers,
    }


def _safe(describe_it: Any) -> str | None:
    try:
        return describe_it()
    except BadSetting:
        return None
