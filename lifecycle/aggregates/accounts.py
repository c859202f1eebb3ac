"""Accounts of the people who register (ユーザー登録者), A-1…A-3."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from lifecycle.domain.errors import ProvisionalUserNotFound

PROVISIONAL = "provisional"
ACTIVE = "active"


class Account(Aggregate):
    class SignedUp(Aggregate.Created):
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

    @property
    def is_active(self) -> bool:
        return self.status == ACTIVE

    def activate(self, now: datetime) -> None:
        """A-2: opening the confirmation URL again, or too late, answers E1."""
        if self.status != PROVISIONAL or now > self.confirmation_expires_at:
            raise ProvisionalUserNotFound("No provisional account is waiting for this token.")
        self._activated()

    class Activated(Aggregate.Event):
        pass

    @event(Activated)
    def _activated(self) -> None:
        self.status = ACTIVE

    def change_profile(self, changes: dict[str, Any]) -> None:
        changed = {k: v for k, v in changes.items() if getattr(self, k) != v}
        if changed:
            self._profile_changed(changed)

    class ProfileChanged(Aggregate.Event):
        changes: dict[str, Any]

    @event(ProfileChanged)
    def _profile_changed(self, changes: dict[str, Any]) -> None:
        for name, value in changes.items():
            setattr(self, name, value)

    # --- the confirmation mail (A-2) --------------------------------------------------

    def has_confirmation_mail(self, notification_id: UUID) -> bool:
        # Snapshots taken before mails were recorded lack the attribute.
        return str(notification_id) in self.__dict__.setdefault("confirmation_mails", {})

    class ConfirmationMailSent(Aggregate.Event):
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
        self.__dict__.setdefault("confirmation_mails", {})[str(notification_id)] = message_id
