"""Accounts of the people who register (ユーザー登録者), A-1…A-4."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from lifecycle.aggregates.audited import AuditedCreated, AuditedEvent
from lifecycle.domain.privacy import ERASED, PERSONAL_FIELDS, SubjectKind
from lifecycle.domain.errors import (
    AccountNotActive,
    AlreadyForgotten,
    EmailChangeNotFound,
    PasswordResetNotFound,
    ProvisionalUserNotFound,
)

PROVISIONAL = "provisional"
ACTIVE = "active"
ERASED_ACCOUNT = "erased"  # its personal data forgotten (docs/privacy.md): it can no longer log in


class Account(Aggregate):
    class SignedUp(AuditedCreated):
        email: str
        password_hash: str
        name: str
        company_name: str
        phone: str
        confirmation_expires_at: datetime

    @event(SignedUp)
    def __init__(
        self,
        email: str,
        password_hash: str,
        name: str,
        company_name: str,
        phone: str,
        confirmation_expires_at: datetime,
    ) -> None:
        self.email = email
        self.password_hash = password_hash
        self.name = name
        self.company_name = company_name
        self.phone = phone
        self.confirmation_expires_at = confirmation_expires_at
        self.status = PROVISIONAL
        # the change waiting for its confirmation mail {"email", "requested_at", "expires_at"}.
        self.pending_email_change: dict[str, Any] | None = None
        # Q17: after the e-mail (the user ID) changed, the password must be set again.
        self.must_set_password = False
        # the reset waiting for its mailed link {"requested_at", "expires_at"}.
        self.pending_password_reset: dict[str, Any] | None = None
        # M-4: notification id -> Message-ID of each mail recorded as sent.
        self.confirmation_mails: dict[str, str] = {}
        self.account_mails: dict[str, str] = {}
        # Sessions started before a password or e-mail change end with it: they carry the
        # epoch of their login, and each change moves it on.
        self.credentials_epoch = 0
        # The address each e-mail change replaced, by the change's event version: the notice
        # to the old address (ASVS 6.3.7) is mailed there.
        self.replaced_emails: dict[int, str] = {}

    @property
    def is_active(self) -> bool:
        return self.status == ACTIVE

    @property
    def is_erased(self) -> bool:
        return self.status == ERASED_ACCOUNT

    class PersonalDataErased(AuditedEvent):
        """The account's personal data forgotten (APPI): its key destroyed, so every earlier
        copy of its name, e-mail and phone reads as erased. Holds no personal data: who asked
        is the event's actor, when its timestamp, and why the reason."""

        reason: str

    def erase_personal_data(self, reason: str) -> None:
        if self.is_erased:
            raise AlreadyForgotten(f"Account {self.id} is already forgotten.")
        self._personal_data_erased(reason)

    @event(PersonalDataErased)
    def _personal_data_erased(self, reason: str) -> None:
        for name in PERSONAL_FIELDS[SubjectKind.ACCOUNT]:
            setattr(self, name, ERASED)
        self.status = ERASED_ACCOUNT
        self.pending_email_change = None
        self.pending_password_reset = None
        self.credentials_epoch += 1  # its sessions end

    def activate(self, now: datetime) -> None:
        """A-2: opening the confirmation URL again, or too late, answers E1."""
        if self.status != PROVISIONAL or now > self.confirmation_expires_at:
            raise ProvisionalUserNotFound("No provisional account is waiting for this token.")
        self._activated()

    class Activated(AuditedEvent):
        pass

    @event(Activated)
    def _activated(self) -> None:
        self.status = ACTIVE

    def change_profile(self, changes: dict[str, Any]) -> None:
        changed = {k: v for k, v in changes.items() if getattr(self, k) != v}
        if changed:
            self._profile_changed(changed)

    class ProfileChanged(AuditedEvent):
        changes: dict[str, Any]

    @event(ProfileChanged)
    def _profile_changed(self, changes: dict[str, Any]) -> None:
        for name, value in changes.items():
            setattr(self, name, value)

    # --- the confirmation mail (A-2) --------------------------------------------------

    def has_confirmation_mail(self, notification_id: UUID) -> bool:
        return str(notification_id) in self.confirmation_mails

    class ConfirmationMailSent(AuditedEvent):
        notification_id: UUID
        recipients: list[str]
        message_id: str
        sent_at: datetime

    def record_confirmation_mail_sent(
        self, notification_id: UUID, recipients: list[str], message_id: str, sent_at: datetime
    ) -> None:
        if not self.has_confirmation_mail(notification_id):
            self._confirmation_mail_sent(notification_id, list(recipients), message_id, sent_at)

    @event(ConfirmationMailSent)
    def _confirmation_mail_sent(
        self, notification_id: UUID, recipients: list[str], message_id: str, sent_at: datetime
    ) -> None:
        self.confirmation_mails[str(notification_id)] = message_id

    # --- the e-mail change (A-3) ------------------------------------------------------

    def email_change(self) -> dict[str, Any] | None:
        """The pending change: {"email", "requested_at", "expires_at"}, or None."""
        return self.pending_email_change

    @property
    def password_reset_required(self) -> bool:
        """Q17: after the e-mail (the user ID) changed, the password must be set again."""
        return self.must_set_password

    class EmailChangeRequested(AuditedEvent):
        new_email: str
        requested_at: datetime
        expires_at: datetime

    def request_email_change(self, new_email: str, now: datetime, validity: timedelta) -> None:
        if self.status != ACTIVE:
            raise AccountNotActive("Only an active account can change its e-mail address.")
        self._email_change_requested(new_email, now, now + validity)

    @event(EmailChangeRequested)
    def _email_change_requested(self, new_email: str, requested_at: datetime, expires_at: datetime) -> None:
        self.pending_email_change = {"email": new_email, "requested_at": requested_at, "expires_at": expires_at}

    class EmailChanged(AuditedEvent):
        email: str
        previous_email: str
        changed_at: datetime | None  # the service's clock; None on events stored before v2

        class_version = 2

        @staticmethod
        def upcast_v1_v2(state: dict[str, Any]) -> None:
            state["changed_at"] = None

    def confirm_email_change(self, now: datetime) -> None:
        """A-3: applies the pending change once, within its 24 hours."""
        pending = self.email_change()
        if pending is None or now > pending["expires_at"]:
            raise EmailChangeNotFound("No e-mail change is waiting for this token.")
        self._email_changed(pending["email"], self.email, now)

    @event(EmailChanged)
    def _email_changed(self, email: str, previous_email: str, changed_at: datetime | None) -> None:
        self.replaced_emails[self.version + 1] = previous_email  # this event's version
        self.email = email
        self.pending_email_change = None
        self.must_set_password = True
        self.credentials_epoch += 1

    # --- the forgotten password (A-4) -------------------------------------------------

    def password_reset(self) -> dict[str, Any] | None:
        """The pending reset: {"requested_at", "expires_at"}, or None."""
        return self.pending_password_reset

    class PasswordResetRequested(AuditedEvent):
        requested_at: datetime
        expires_at: datetime

    def request_password_reset(self, now: datetime, validity: timedelta) -> None:
        self._password_reset_requested(now, now + validity)

    @event(PasswordResetRequested)
    def _password_reset_requested(self, requested_at: datetime, expires_at: datetime) -> None:
        self.pending_password_reset = {"requested_at": requested_at, "expires_at": expires_at}

    class PasswordChanged(AuditedEvent):
        password_hash: str

    def reset_password(self, password_hash: str, now: datetime) -> None:
        """A-4: the link works once, within its validity; Q17's requirement is met."""
        pending = self.password_reset()
        if pending is None or now > pending["expires_at"]:
            raise PasswordResetNotFound("No password reset is waiting for this token.")
        self._password_changed(password_hash)

    def change_password(self, password_hash: str) -> None:
        """A logged-in customer sets a new password (the profile page; Q17 after an e-mail change)."""
        if self.status != ACTIVE:
            raise AccountNotActive("Only an active account can change its password.")
        self._password_changed(password_hash)

    @event(PasswordChanged)
    def _password_changed(self, password_hash: str) -> None:
        self.password_hash = password_hash
        self.pending_password_reset = None
        self.must_set_password = False
        self.credentials_epoch += 1

    # --- the mails of A-3 and A-4 -----------------------------------------------------

    def has_mail(self, notification_id: UUID) -> bool:
        return str(notification_id) in self.account_mails

    class EmailChangeMailSent(AuditedEvent):
        notification_id: UUID
        recipients: list[str]
        message_id: str
        sent_at: datetime

    def record_email_change_mail_sent(
        self, notification_id: UUID, recipients: list[str], message_id: str, sent_at: datetime
    ) -> None:
        if not self.has_mail(notification_id):
            self._email_change_mail_sent(notification_id, list(recipients), message_id, sent_at)

    @event(EmailChangeMailSent)
    def _email_change_mail_sent(
        self, notification_id: UUID, recipients: list[str], message_id: str, sent_at: datetime
    ) -> None:
        self.account_mails[str(notification_id)] = message_id

    class PasswordResetMailSent(AuditedEvent):
        notification_id: UUID
        recipients: list[str]
        message_id: str
        sent_at: datetime

    def record_password_reset_mail_sent(
        self, notification_id: UUID, recipients: list[str], message_id: str, sent_at: datetime
    ) -> None:
        if not self.has_mail(notification_id):
            self._password_reset_mail_sent(notification_id, list(recipients), message_id, sent_at)

    @event(PasswordResetMailSent)
    def _password_reset_mail_sent(
        self, notification_id: UUID, recipients: list[str], message_id: str, sent_at: datetime
    ) -> None:
        self.account_mails[str(notification_id)] = message_id

    # --- what the owner is told (sign-up of a registered address, an e-mail change) -----

    class SignUpRepeated(AuditedEvent):
        """Someone signed up again with this account's login ID (A-4: the answer was as for a
        new address; the owner is mailed "you already have an account")."""

        attempted_at: datetime

    def note_sign_up_repeated(self, now: datetime) -> None:
        self._sign_up_repeated(now)

    @event(SignUpRepeated)
    def _sign_up_repeated(self, attempted_at: datetime) -> None:
        pass

    class NoticeMailSent(AuditedEvent):
        """A notice to the owner was sent: "you already have an account", or "your login ID
        was changed" to the old address."""

        notification_id: UUID
        kind: str
        recipients: list[str]
        message_id: str
        sent_at: datetime

    def record_notice_mail_sent(
        self, notification_id: UUID, kind: str, recipients: list[str], message_id: str, sent_at: datetime
    ) -> None:
        if not self.has_mail(notification_id):
            self._notice_mail_sent(notification_id, kind, list(recipients), message_id, sent_at)

    @event(NoticeMailSent)
    def _notice_mail_sent(
        self, notification_id: UUID, kind: str, recipients: list[str], message_id: str, sent_at: datetime
    ) -> None:
        self.account_mails[str(notification_id)] = message_id
