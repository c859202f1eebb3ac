"""A real SMTP server on 127.0.0.1 (aiosmtpd) that keeps what it is sent, for the tests of
the mails; it can answer with a refusal, take its time, or call back while a message is
being taken (to kill the worker sending it) or when a transaction begins at MAIL FROM (to
freeze the worker before it has handed anything over)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default

import pytest
from aiosmtpd.controller import Controller

from tests.support import free_port


@dataclass(frozen=True)
class Received:
    mail_from: str
    recipients: tuple[str, ...]
    data: bytes

    @property
    def message(self) -> EmailMessage:
        return message_from_bytes(self.data, policy=default)  # type: ignore[return-value]

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    @property
    def body(self) -> str:
        return self.message.get_content()


class SmtpSink:
    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[Received] = []
        self.refuse_next = 0  # answer this many DATA commands with `refusal`
        self.refusal = "451 4.3.0 Try again later"
        self.delay = 0.0  # seconds to take over each message
        self.on_data: Callable[[Received], None] | None = None
        self.on_mail: Callable[[str], None] | None = None  # called at MAIL FROM, before anything is taken
        self._lock = threading.Lock()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_MAIL(self, server, session, envelope, address, mail_options) -> str:  # noqa: ANN001
        if self.on_mail is not None:
            self.on_mail(address)
        envelope.mail_from = address  # what aiosmtpd does without this hook
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: ANN001 - aiosmtpd's hook
        with self._lock:
            if self.refuse_next > 0:
                self.refuse_next -= 1
                return self.refusal
        received = Received(envelope.mail_from, tuple(envelope.rcpt_tos), bytes(envelope.original_content))
        with self._lock:
            self.received.append(received)
        if self.delay:
            time.sleep(self.delay)  # blocks this server's loop: one message at a time, like a slow relay
        if self.on_data is not None:
            self.on_data(received)
        return "250 2.0.0 OK: queued"

    # --- what a mailbox would show --------------------------------------------------------

    def snapshot(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            received = self.snapshot()
            if len(received) >= count:
                return received
            time.sleep(0.05)
        raise AssertionError(f"expected {count} mail(s), got {len(self.snapshot())}")

    def quiet_for(self, seconds: float) -> list[Received]:
        """Wait until nothing more arrives for `seconds`; answers everything received."""
        last = -1
        while True:
            received = self.snapshot()
            if len(received) == last:
                return received
            last = len(received)
            time.sleep(seconds)

    def copies_by_message_id(self) -> Counter[str]:
        return Counter(r.message_id for r in self.snapshot())


@pytest.fixture
def smtp_sink() -> Iterator[SmtpSink]:
    sink = SmtpSink()
    sink.controller.start()
    try:
        yield sink
    finally:
        sink.controller.stop()
