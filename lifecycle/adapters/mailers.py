"""Where rendered mails go: a real SMTP server, or a Maildir (the embedded default).

Both take an `OutgoingMail` whose bytes and Message-ID were fixed before the first attempt.
A `MailRefused` means the server answered the message with a refusal, so it certainly did
not take it; any other error (a dropped connection, a timeout) leaves it unknown whether
the server took the message, and the caller must send the very same bytes again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import smtplib
import socket
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

from lifecycle.ports import ClaimLost, Mailer, MailRefused, OutgoingMail

log = logging.getLogger(__name__)


class _Checked:
    """smtplib's sendmail with a last check between RCPT and DATA: `sendmail` calls `data`."""

    last_check: Callable[[], None] | None = None

    def data(self, msg: bytes) -> tuple[int, bytes]:  # type: ignore[override]
        if self.last_check is not None:
            self.last_check()
        return super().data(msg)  # type: ignore[misc]


class _SMTP(_Checked, smtplib.SMTP):
    pass


class _SMTP_SSL(_Checked, smtplib.SMTP_SSL):  # noqa: N801 - smtplib's name
    pass


class SmtpMailer(Mailer):
    """Real SMTP through smtplib: plain, STARTTLS or implicit TLS, with optional AUTH.

    Each worker thread keeps its connection open between mails (the sink benchmark sends
    thousands); a connection idle for a while is checked with NOOP before use, so that a
    server-side timeout is found before the message is sent rather than in the middle."""

    IDLE_CHECK_SECONDS = 2.0

    def __init__(
        self,
        host: str,
        port: int = 25,
        *,
        security: str = "none",
        username: str = "",
        password: str = "",
        timeout: float = 20.0,
        local_hostname: str | None = None,
        ca_file: str | Path | None = None,
    ) -> None:
        if security not in ("none", "starttls", "ssl"):
            raise ValueError(f"SMTP security must be none, starttls or ssl, not {security!r}")
        self.host, self.port, self.security = host, port, security
        self.username, self.password, self.timeout = username, password, timeout
        self.local_hostname = local_hostname or socket.getfqdn()
        self.ca_file = str(ca_file) if ca_file else None
        self._local = threading.local()
        self._all: list[smtplib.SMTP] = []
        self._lock = threading.Lock()
        # The last send's outcome in this process, for /v1/health: (outcome, when, error).
        self.last_result: tuple[str, datetime, str | None] | None = None

    def _connect(self) -> smtplib.SMTP:
        context = ssl.create_default_context(cafile=self.ca_file)
        connection: smtplib.SMTP
        if self.security == "ssl":
            connection = _SMTP_SSL(
                self.host, self.port, local_hostname=self.local_hostname, timeout=self.timeout, context=context
            )
        else:
            connection = _SMTP(self.host, self.port, local_hostname=self.local_hostname, timeout=self.timeout)
            if self.security == "starttls":
                connection.starttls(context=context)
        connection.ehlo_or_helo_if_needed()
        if self.username:
            connection.login(self.username, self.password)
        with self._lock:
            self._all.append(connection)
        return connection

    def _connection(self) -> smtplib.SMTP:
        connection: smtplib.SMTP | None = getattr(self._local, "connection", None)
        last_used: float = getattr(self._local, "last_used", 0.0)
        if connection is not None and time.monotonic() - last_used > self.IDLE_CHECK_SECONDS:
            try:
                connection.noop()
            except (smtplib.SMTPException, OSError):
                self._drop(connection)
                connection = None
        if connection is None:
            connection = self._connect()
            self._local.connection = connection
        return connection

    def _drop(self, connection: smtplib.SMTP) -> None:
        self._local.connection = None
        with self._lock:
            if connection in self._all:
                self._all.remove(connection)
        try:
            connection.close()
        except OSError:
            pass

    def send(self, mail: OutgoingMail, last_check: Callable[[], None] | None = None) -> tuple[str, ...]:
        try:
            accepted = self._send(mail, last_check)
        except ClaimLost:
            raise  # not the server's doing: says nothing about it
        except MailRefused as refusal:  # the server answered
            self.last_result = ("refused", datetime.now(UTC), str(refusal))
            raise
        except Exception as error:
            self.last_result = ("failed", datetime.now(UTC), f"{type(error).__name__}: {error}")
            raise
        self.last_result = ("sent", datetime.now(UTC), None)
        return accepted

    def _send(self, mail: OutgoingMail, last_check: Callable[[], None] | None) -> tuple[str, ...]:
        connection = self._connection()
        connection.last_check = last_check  # type: ignore[attr-defined]
        try:
            refused = connection.sendmail(mail.sender, list(mail.recipients), mail.data)
        except ClaimLost:
            self._reset(connection)  # the envelope given so far is dropped; the server has no message
            raise
        except smtplib.SMTPRecipientsRefused as error:
            self._reset(connection)
            raise MailRefused(f"every recipient was refused: {error.recipients}", permanent=True) from error
        except (smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as error:
            self._reset(connection)
            raise MailRefused(f"{error.smtp_code} {error.smtp_error!r}", permanent=error.smtp_code >= 500) from error
        except BaseException:
            # Unknown whether the server took it; this connection is no longer usable.
            self._drop(connection)
            raise
        finally:
            connection.last_check = None  # type: ignore[attr-defined]
        self._local.last_used = time.monotonic()
        if refused:
            # A count, not the refused addresses (which the refusal dict is keyed by).
            log.warning("mail %s: %d recipient(s) refused", mail.message_id, len(refused),
                        extra={"message_id": mail.message_id, "refused": len(refused)})
        return tuple(r for r in mail.recipients if r not in refused)

    def _reset(self, connection: smtplib.SMTP) -> None:
        try:
            connection.rset()
            self._local.last_used = time.monotonic()
        except (smtplib.SMTPException, OSError):
            self._drop(connection)

    def close(self) -> None:
        with self._lock:
            connections, self._all = self._all, []
        for connection in connections:
            try:
                connection.quit()
            except (smtplib.SMTPException, OSError):
                connection.close()


class MaildirMailer(Mailer):
    """Delivers into a Maildir (new/, cur/, tmp/) readable by any mail client.

    The file name is derived from the Message-ID, and delivery is write-to-tmp then rename:
    sending one notification again finds its file and delivers nothing twice."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        for sub in ("tmp", "new", "cur"):
            (self.path / sub).mkdir(parents=True, exist_ok=True)

    @staticmethod
    def unique_name(mail: OutgoingMail) -> str:
        return "lifecycle." + hashlib.sha256(mail.message_id.encode()).hexdigest()[:32]

    def delivered(self, mail: OutgoingMail) -> bool:
        name = self.unique_name(mail)
        if (self.path / "new" / name).exists():
            return True
        # A mail client moves read mail to cur/ as NAME:2,FLAGS.
        return any(entry.startswith(name) for entry in os.listdir(self.path / "cur"))

    def forget(self, values: Sequence[str]) -> int:
        """The Maildir is this service's own copy of what it sent (the embedded default): a
        message naming a forgotten subject, in its headers or its decoded text, is deleted."""
        wanted = [v.lower() for v in values if v]
        deleted = 0
        for folder in ("new", "cur", "tmp"):
            for path in (self.path / folder).iterdir():
                if any(value in _message_text(path.read_bytes()) for value in wanted):
                    path.unlink(missing_ok=True)
                    deleted += 1
        return deleted

    def send(self, mail: OutgoingMail, last_check: Callable[[], None] | None = None) -> tuple[str, ...]:
        if last_check is not None:
            last_check()
        if not self.delivered(mail):
            name = self.unique_name(mail)
            envelope = f"Return-Path: <{mail.sender}>\r\nDelivered-To: {', '.join(mail.recipients)}\r\n".encode()
            temporary = self.path / "tmp" / f"{name}.{os.getpid()}.{threading.get_ident()}"
            with open(temporary, "wb") as file:
                file.write(envelope + mail.data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.path / "new" / name)
        return mail.recipients


def _message_text(data: bytes) -> str:
    """A stored message as text, lower case: its raw bytes, its headers decoded and each
    text part decoded (base64, quoted-printable), so a value is found however it was encoded."""
    import email
    from email import policy

    message = email.message_from_bytes(data, policy=policy.default)
    parts = [data.decode("utf-8", "replace")]
    parts += [str(value) for value in message.values()]
    for part in message.walk():
        if part.get_content_maintype() == "text":
            try:
                parts.append(part.get_content())
            except (LookupError, ValueError):
                parts.append(part.get_payload(decode=True).decode("utf-8", "replace"))
    return "\n".join(parts).lower()
