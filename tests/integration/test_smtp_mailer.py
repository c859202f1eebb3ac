"""The SMTP adapter against a real SMTP server on 127.0.0.1: STARTTLS with AUTH, implicit
TLS, refusals told apart from unknown outcomes, and one connection kept per thread."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Iterator
from pathlib import Path
from uuid import uuid4

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from lifecycle.adapters.mailers import MailRefused, SmtpMailer
from lifecycle.mail.rendering import OutgoingMail
from lifecycle.ports import ClaimLost
from tests.mail_sink import SmtpSink, free_port, smtp_sink  # noqa: F401 - the fixture

USER, PASSWORD = "lifecycle", "s3cret-pass"


def mail(*recipients: str) -> OutgoingMail:
    message_id = f"<{uuid4()}@example.com>"
    data = (f"Message-ID: {message_id}\r\nSubject: test\r\nFrom: support@example.com\r\n"
            f"To: {', '.join(recipients)}\r\n\r\nbody\r\n").encode()
    return OutgoingMail(message_id, "support@example.com", recipients, "test", data)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> Path:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


def authenticate(server, session, envelope, mechanism, auth_data) -> AuthResult:  # noqa: ANN001
    ok = auth_data.login == USER.encode() and auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok)


@pytest.fixture
def tls_sink(ca: trustme.CA, request: pytest.FixtureRequest) -> Iterator[SmtpSink]:
    """The sink behind STARTTLS (or implicit TLS) that takes mail only after AUTH."""
    implicit = getattr(request, "param", "starttls") == "ssl"
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_context)
    sink = SmtpSink()
    options = {"authenticator": authenticate, "auth_required": True, "auth_require_tls": True}
    if implicit:
        # aiosmtpd counts only STARTTLS as TLS for AUTH; the whole session is encrypted here.
        sink.controller = Controller(sink, hostname="127.0.0.1", port=sink.port, ssl_context=server_context,
                                     **{**options, "auth_require_tls": False})
    else:
        sink.controller = Controller(sink, hostname="127.0.0.1", port=sink.port, tls_context=server_context,
                                     require_starttls=True, **options)
    sink.controller.start()
    yield sink
    sink.controller.stop()


def test_M4_starttls_with_auth_delivers_to_every_recipient(tls_sink: SmtpSink, ca_file: Path) -> None:
    mailer = SmtpMailer("127.0.0.1", tls_sink.port, security="starttls", username=USER, password=PASSWORD,
                        ca_file=ca_file, timeout=5)
    try:
        sent = mail("a@example.jp", "b@example.jp")
        assert mailer.send(sent) == ("a@example.jp", "b@example.jp")
    finally:
        mailer.close()
    [received] = tls_sink.wait_for(1)
    assert received.recipients == ("a@example.jp", "b@example.jp")
    assert received.message_id == sent.message_id


# aiosmtpd warns because it sees no STARTTLS; the whole session is TLS here.
@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
@pytest.mark.parametrize("tls_sink", ["ssl"], indirect=True)
def test_M4_implicit_tls_delivers(tls_sink: SmtpSink, ca_file: Path) -> None:
    mailer = SmtpMailer("127.0.0.1", tls_sink.port, security="ssl", username=USER, password=PASSWORD,
                        ca_file=ca_file, timeout=5)
    try:
        mailer.send(mail("a@example.jp"))
    finally:
        mailer.close()
    assert len(tls_sink.wait_for(1)) == 1


def test_M4_a_wrong_password_is_an_error_and_nothing_is_taken(tls_sink: SmtpSink, ca_file: Path) -> None:
    mailer = SmtpMailer("127.0.0.1", tls_sink.port, security="starttls", username=USER, password="wrong",
                        ca_file=ca_file, timeout=2)
    with pytest.raises(smtplib.SMTPException):
        mailer.send(mail("a@example.jp"))
    assert tls_sink.snapshot() == []


def test_M4_a_certificate_from_an_unknown_ca_is_refused(tls_sink: SmtpSink) -> None:
    mailer = SmtpMailer("127.0.0.1", tls_sink.port, security="starttls", username=USER, password=PASSWORD, timeout=5)
    with pytest.raises(ssl.SSLCertVerificationError):
        mailer.send(mail("a@example.jp"))


def test_M4_a_refusal_says_whether_it_is_permanent_and_keeps_the_connection(smtp_sink: SmtpSink) -> None:  # noqa: F811
    mailer = SmtpMailer("127.0.0.1", smtp_sink.port, timeout=5)
    try:
        smtp_sink.refuse_next, smtp_sink.refusal = 1, "451 4.3.0 Try again later"
        with pytest.raises(MailRefused) as temporary:
            mailer.send(mail("a@example.jp"))
        assert not temporary.value.permanent
        smtp_sink.refuse_next, smtp_sink.refusal = 1, "554 5.7.1 Rejected"
        with pytest.raises(MailRefused) as permanent:
            mailer.send(mail("a@example.jp"))
        assert permanent.value.permanent
        mailer.send(mail("a@example.jp"))
        mailer.send(mail("b@example.jp"))
    finally:
        mailer.close()
    assert len(smtp_sink.wait_for(2)) == 2


def test_M4_a_server_that_is_gone_is_an_unknown_outcome_not_a_refusal() -> None:
    mailer = SmtpMailer("127.0.0.1", free_port(), timeout=2)
    with pytest.raises(OSError):
        mailer.send(mail("a@example.jp"))


def test_M4_a_last_check_that_fails_before_DATA_delivers_nothing_and_the_next_mail_goes(
    smtp_sink: SmtpSink,  # noqa: F811
) -> None:
    """The sender's last check (its claim still held) runs after MAIL and RCPT, before the
    message: when it fails the server gets no message, and the transaction is reset so that
    the next mail goes."""
    mailer = SmtpMailer("127.0.0.1", smtp_sink.port, timeout=5)
    envelopes: list[str] = []
    smtp_sink.on_mail = envelopes.append

    def lost() -> None:
        raise ClaimLost("held up past its claim")

    try:
        with pytest.raises(ClaimLost):
            mailer.send(mail("a@example.jp"), lost)
        assert envelopes == ["support@example.com"]  # the transaction had begun
        sent = mail("b@example.jp")
        assert mailer.send(sent, lambda: None) == ("b@example.jp",)
    finally:
        mailer.close()
    assert [m.message_id for m in smtp_sink.quiet_for(0.3)] == [sent.message_id]
