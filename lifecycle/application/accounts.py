"""Sign-up, confirmation and profile edits (A-1, A-2, A-3)."""

from __future__ import annotations

import hashlib
import hmac
import re
from datetime import timedelta
from typing import Any
from uuid import UUID

from lifecycle.aggregates.accounts import Account
from lifecycle.aggregates.index import Index, email_key
from lifecycle.application.base import Answer, IdempotencyKey, LifecycleApplicationBase
from lifecycle.application.views import account_view
from lifecycle.domain.addresses import normalise_phone
from lifecycle.domain.errors import (
    AccountNotFound,
    EmailAlreadyRegistered,
    ProvisionalUserNotFound,
    Refusal,
    TermsNotAccepted,
    WeakPassword,
)

CONFIRMATION_VALIDITY = timedelta(hours=24)


def check_password_strength(password: str) -> None:
    """A-1: letters and digits, at least 8 characters."""
    if len(password) < 8 or not re.search(r"[A-Za-z]", password) or not re.search(r"\d", password):
        raise WeakPassword("The password needs at least 8 characters with both letters and digits.")


class AccountCommands(LifecycleApplicationBase):
    def sign_up(
        self,
        email: str,
        password: str,
        name: str,
        company_name: str,
        phone: str,
        agree_terms: bool,
        idempotency: IdempotencyKey | None = None,
    ) -> Answer:
        def decide():  # noqa: ANN202
            if not agree_terms:
                raise TermsNotAccepted("Sign-up needs consent to the terms of use.")
            check_password_strength(password)
            normalised_phone = normalise_phone(phone)
            key = email_key(email)
            if self._exists(Index.create_id(key)):
                raise EmailAlreadyRegistered(f"{email} is already registered.")
            account = Account(
                email=email.strip(),
                password_hash=self.hash_password(password),
                name=name,
                company_name=company_name,
                phone=normalised_phone,
                confirmation_expires_at=self.clock.now() + CONFIRMATION_VALIDITY,
            )
            return account_view(account), [account, Index(key, account.id)]

        return self._execute(decide, idempotency)

    def confirmation_token(self, account_id: UUID) -> str:
        """The token of the confirmation URL mailed at sign-up; derived, never stored, so
        the log holds nothing that would activate an account."""
        account = self.account(account_id)
        return f"{account.id.hex}.{self._token_signature(account)}"

    def _token_signature(self, account: Account) -> str:
        message = f"confirm:{account.id}:{account.confirmation_expires_at.isoformat()}"
        return hmac.new(self.secret_key, message.encode(), hashlib.sha256).hexdigest()[:32]

    def verify_account(self, token: str, idempotency: IdempotencyKey | None = None) -> Answer:
        def decide():  # noqa: ANN202
            account = self._account_of_token(token)
            account.activate(self.clock.now())
            return account_view(account), [account]

        return self._execute(decide, idempotency)

    def _account_of_token(self, token: str) -> Account:
        unknown = ProvisionalUserNotFound("No provisional account is waiting for this token.")
        account_hex, _, signature = token.strip().partition(".")
        try:
            account_id = UUID(hex=account_hex)
        except ValueError:
            raise unknown from None
        account = self._load(account_id, Account)
        if account is None or not hmac.compare_digest(signature, self._token_signature(account)):
            raise unknown
        return account

    def account(self, account_id: UUID, *, kind: Refusal | None = None) -> Account:
        account = self._load(account_id, Account)
        if account is None:
            raise AccountNotFound(f"Account {account_id} is not registered.", kind=kind)
        return account

    def get_account(self, account_id: UUID) -> Answer:
        return account_view(self.account(account_id))

    def change_profile(
        self, account_id: UUID, changes: dict[str, Any], idempotency: IdempotencyKey | None = None
    ) -> Answer:
        """A-3 for name, company name and phone; the e-mail (the user ID) is changed only
        through a confirmation mail to the new address."""

        def decide():  # noqa: ANN202
            account = self.account(account_id)
            normalised = dict(changes)
            if "phone" in normalised:
                normalised["phone"] = normalise_phone(normalised["phone"])
            account.change_profile(normalised)
            return account_view(account), [account]

        return self._execute(decide, idempotency)
