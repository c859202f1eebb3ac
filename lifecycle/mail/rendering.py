"""The mails themselves: Japanese templates (Jinja2) in the voice of the seed's completion
mail (p.21, p.27, p.33), rendered into UTF-8 MIME messages with a Message-ID derived from
the notification, so that every attempt to send one notification is the same message."""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime
from typing import Any
from uuid import UUID

import jinja2

from lifecycle.aggregates.contract import Registration, Site
from lifecycle.domain.dates import TOKYO
from lifecycle.domain.periods import SupportPeriod
from lifecycle.ports import OutgoingMail


@dataclass(frozen=True)
class Vendor:
    """Who sends the mails and whom the customer calls (M-2): settings, not code."""

    name: str
    mail_from: str
    call_center_name: str
    call_center_phone: str
    call_center_mail: str
    call_center_hours: str
    contracts_desk_name: str
    contracts_desk_mail: str
    service_desk_names: Mapping[str, str] = field(default_factory=dict)

    @property
    def mail_domain(self) -> str:
        return self.mail_from.rpartition("@")[2] or "localhost"

    def desk_name(self, service: str) -> str:
        return self.service_desk_names.get(service, service)


def message_id_of(notification_id: UUID, vendor: Vendor) -> str:
    """Deterministic: a resent notification carries the same Message-ID, which lets any
    mail store recognise the copy (RFC 5322 3.6.4)."""
    return f"<{notification_id}@{vendor.mail_domain}>"


def _ymd(value: date | datetime) -> str:
    if isinstance(value, datetime):
        value = value.astimezone(TOKYO)
    return f"{value:%Y/%m/%d}"


def _ymd_hm(value: datetime) -> str:
    return f"{value.astimezone(TOKYO):%Y/%m/%d %H:%M}"


def site_address(site: Site) -> str:
    return site.postal_line()


def product_name(registration: Registration) -> str:
    """The seed's 製品名 of the product line: the model and the service with its term."""
    if registration.is_bundle and registration.ticket_model:
        return f"{registration.model} {registration.ticket_model}"
    return f"{registration.model} {registration.service}{registration.term_years}年保守"


_PLAIN_ADDRESS = re.compile(r"[!#-'*+\-/-9=?A-Z^-~.]+@[A-Za-z0-9.\-]+")


def _plain_addresses(addresses: Sequence[str]) -> bool:
    return all(_PLAIN_ADDRESS.fullmatch(address) for address in addresses)


def _encoded_words(text: str) -> str:
    """RFC 2047 base64 words of at most 45 bytes of UTF-8 each (a folded line stays under 78
    characters), split between characters; what the email package writes, without its
    general header folding, which cost more than the rest of a mail's rendering."""
    words, chunk, size = [], [], 0
    for character in text:
        length = len(character.encode())
        if size + length > 45:
            words.append("".join(chunk))
            chunk, size = [], 0
        chunk.append(character)
        size += length
    words.append("".join(chunk))
    return "\r\n ".join(f"=?utf-8?b?{base64.b64encode(word.encode()).decode()}?=" for word in words)


def _mime_text(from_header: str, subject: str, to: str, date_header: str, message_id: str, body: str) -> bytes:
    """A text/plain UTF-8 message, base64 body, CRLF lines: the same message the email
    package makes of it (tests/unit/test_mail_rendering.py reads it back with that package)."""
    content = b"\r\n".join(body.encode().splitlines()) + b"\r\n"
    encoded = base64.encodebytes(content).replace(b"\n", b"\r\n")
    to_lines = to.replace(", ", ",\r\n ") if len(to) > 72 else to
    head = (
        f"Subject: {_encoded_words(subject)}\r\n{from_header}To: {to_lines}\r\nDate: {date_header}\r\n"
        f"Message-ID: {message_id}\r\nContent-Type: text/plain; charset=\"utf-8\"\r\n"
        "Content-Transfer-Encoding: base64\r\nMIME-Version: 1.0\r\n\r\n"
    )
    return head.encode("ascii") + encoded


class MailComposer:
    def __init__(self, vendor: Vendor) -> None:
        self.vendor = vendor
        self.templates = jinja2.Environment(
            loader=jinja2.PackageLoader("lifecycle.mail", "templates"),
            autoescape=False,  # plain-text mails
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
        )
        self.templates.filters["ymd"] = _ymd
        self.templates.filters["ymd_hm"] = _ymd_hm

    def _compose(
        self, template: str, notification_id: UUID, recipients: Sequence[str], now: datetime, **context: Any
    ) -> OutgoingMail:
        module = self.templates.get_template(template).make_module({"vendor": self.vendor, **context})
        subject = str(module.subject).strip()  # type: ignore[attr-defined]
        body = str(module)
        message_id = message_id_of(notification_id, self.vendor)
        date_header = format_datetime(now.astimezone(TOKYO))
        if _plain_addresses([self.vendor.mail_from, *recipients]):
            data = _mime_text(self._from_header, subject, ", ".join(recipients), date_header, message_id, body)
        else:  # addresses beyond plain ASCII: the email package's own (slower) rules
            data = self._email_package_message(subject, recipients, date_header, message_id, body).as_bytes()
        return OutgoingMail(
            message_id=message_id,
            sender=self.vendor.mail_from,
            recipients=tuple(recipients),
            subject=subject,
            data=data,
        )

    @cached_property
    def _from_header(self) -> str:
        """The vendor's From line, folded once by the email package."""
        message = EmailMessage(policy=SMTP)
        message["From"] = Address(self.vendor.name, addr_spec=self.vendor.mail_from)
        return message["From"].fold(policy=SMTP)

    def _email_package_message(
        self, subject: str, recipients: Sequence[str], date_header: str, message_id: str, body: str
    ) -> EmailMessage:
        message = EmailMessage(policy=SMTP)
        message["Subject"] = subject
        message["From"] = Address(self.vendor.name, addr_spec=self.vendor.mail_from)
        message["To"] = ", ".join(recipients)
        message["Date"] = date_header
        message["Message-ID"] = message_id
        message.set_content(body, charset="utf-8", cte="base64")
        return message

    def service_in(
        self,
        notification_id: UUID,
        recipients: Sequence[str],
        now: datetime,
        *,
        contract_number: str,
        user_name: str,
        registration: Registration,
        site: Site,
    ) -> OutgoingMail:
        """The completion mail (サービスイン) of a new ticket, a bundle or a renewal (M-2)."""
        return self._compose(
            "service_in.txt.j2",
            notification_id,
            recipients,
            now,
            contract_number=contract_number,
            user_name=user_name,
            registration=registration,
            period=registration.period,
            product_name=product_name(registration),
            desk_name=self.vendor.desk_name(registration.service),
            site={"name": site.name, "address": site_address(site)},
        )

    def renewal_reminder(
        self,
        notification_id: UUID,
        recipients: Sequence[str],
        now: datetime,
        *,
        stage: str,
        contract_number: str,
        user_name: str,
        registration: Registration,
        site: Site,
        period: SupportPeriod,
        window: tuple[date, date],
    ) -> OutgoingMail:
        """M-3 and the optional later reminders, in the same voice."""
        return self._compose(
            "renewal_reminder.txt.j2",
            notification_id,
            recipients,
            now,
            stage=stage,
            contract_number=contract_number,
            user_name=user_name,
            registration=registration,
            period=period,
            window={"opens": window[0], "closes": window[1]},
            product_name=product_name(registration),
            site={"name": site.name, "address": site_address(site)},
        )

    def account_confirmation(
        self,
        notification_id: UUID,
        recipient: str,
        now: datetime,
        *,
        user_name: str,
        url: str,
        expires_at: datetime,
    ) -> OutgoingMail:
        """A-2: the confirmation URL, valid 24 hours."""
        return self._compose(
            "account_confirmation.txt.j2",
            notification_id,
            [recipient],
            now,
            user_name=user_name,
            url=url,
            expires_at=expires_at,
        )

    def email_change_confirmation(
        self,
        notification_id: UUID,
        recipient: str,
        now: datetime,
        *,
        user_name: str,
        current_email: str,
        url: str,
        expires_at: datetime,
    ) -> OutgoingMail:
        """A-3: to the new address, the URL that makes it the login ID, valid 24 hours."""
        return self._compose(
            "email_change_confirmation.txt.j2",
            notification_id,
            [recipient],
            now,
            user_name=user_name,
            current_email=current_email,
            new_email=recipient,
            url=url,
            expires_at=expires_at,
        )

    def password_reset(
        self,
        notification_id: UUID,
        recipient: str,
        now: datetime,
        *,
        user_name: str,
        url: str,
        expires_at: datetime,
    ) -> OutgoingMail:
        """A-4 (Q15): the single-use link to set a new password."""
        return self._compose(
            "password_reset.txt.j2",
            notification_id,
            [recipient],
            now,
            user_name=user_name,
            url=url,
            expires_at=expires_at,
        )

    def already_registered(
        self,
        notification_id: UUID,
        recipient: str,
        now: datetime,
        *,
        user_name: str,
        login_url: str,
        forgot_password_url: str,
        attempted_at: datetime,
    ) -> OutgoingMail:
        """A-4: someone signed up with this login ID; the owner is told here, not the caller."""
        return self._compose(
            "already_registered.txt.j2",
            notification_id,
            [recipient],
            now,
            user_name=user_name,
            login_url=login_url,
            forgot_password_url=forgot_password_url,
            attempted_at=attempted_at,
        )

    def email_changed(
        self, notification_id: UUID, recipient: str, now: datetime, *, user_name: str, changed_at: datetime
    ) -> OutgoingMail:
        """A-3: to the address the change replaced, when it changed and whom to call if it
        was not the owner (ASVS 6.3.7)."""
        return self._compose(
            "email_changed.txt.j2",
            notification_id,
            [recipient],
            now,
            user_name=user_name,
            old_email=recipient,
            changed_at=changed_at,
        )
