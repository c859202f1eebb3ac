"""The service's log lines: text or JSON lines on stderr (LIFECYCLE_LOG_FORMAT), and the
start line each process writes (issue 11, deliverable 6)."""

from __future__ import annotations

import logging
import sys

from lifecycle.adapters.dependencies import BadSetting, describe_broker, describe_mail, store_target
from lifecycle.settings import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# LogRecord attributes that are not the line's fields: the library's list, and uvicorn's
# ANSI-coloured copy of its message.
_NOT_FIELDS = ("color_message",)


def json_formatter() -> logging.Formatter:
    """One JSON object per line: time (ISO 8601, UTC), level, logger, message, then the
    fields the call passed with `extra=` as keys of their own (and exc_info, a traceback)."""
    from pythonjsonlogger.core import RESERVED_ATTRS
    from pythonjsonlogger.json import JsonFormatter

    return JsonFormatter(
        ["levelname", "name", "message"],
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp="time",
        reserved_attrs=[*RESERVED_ATTRS, "taskName", *_NOT_FIELDS],
        json_ensure_ascii=False,
    )


def log_format_setting() -> str:
    """LIFECYCLE_LOG_FORMAT for a command that has not read its settings: text while the
    settings do not load (the command itself then says why)."""
    try:
        return Settings().log_format
    except Exception:  # noqa: BLE001 - any bad setting: reported by the command, not here
        return "text"


def configure_logging(log_format: str | None = None) -> None:
    """INFO lines of the service (its start line, requests, mails, outages) on stderr, as text
    or as JSON lines (LIFECYCLE_LOG_FORMAT), unless something configured logging already.
    uvicorn's and dramatiq's loggers propagate to this one handler (uvicorn is started
    without a logging config of its own)."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(sys.stderr)
        chosen = log_format or log_format_setting()
        handler.setFormatter(json_formatter() if chosen == "json" else logging.Formatter(TEXT_FORMAT))
        root.addHandler(handler)
        root.setLevel(logging.INFO)
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)  # a line per reconnection attempt otherwise


def log_start(settings: Settings, what: str) -> None:
    """The start line: which store, broker and mail transport (never a password); and a
    warning while the clock-override test aid is on."""
    log = logging.getLogger("lifecycle")
    try:
        store = str(store_target(settings))
    except BadSetting:
        store = "?"
    broker, mail = describe_broker(settings), describe_mail(settings)
    log.info("%s: store %s; broker %s; mail %s", what, store, broker, mail,
             extra={"command": what, "store": store, "broker": broker, "mail_transport": mail})
    if settings.allow_clock_override:
        log.warning("%s: LIFECYCLE_ALLOW_CLOCK_OVERRIDE is on: POST /v1/admin/timers/run fires timers as of any "
                    "instant. A test aid: never in production.", what,
                    extra={"command": what, "setting": "LIFECYCLE_ALLOW_CLOCK_OVERRIDE"})
