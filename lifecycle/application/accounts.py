"""Sign-up, confirmation, profile edits, e-mail change and password reset (A-1…A-4)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from uuid import UUID

from lifecycle.aggregates.accounts import Account
from lifecycle.aggregates.index import Index, email_key
from lifecycle.application.commands import Answer, IdempotencyKey
from lifecycle.application.views import account_view
from lifecycle.domain.accounts import (
    CONFIRMATION_VALIDITY,
    EMAIL_CHANGE_VALIDITY,
    PASSWORD_RESET_VALIDITY,
    check_password_strength,
)
from lifecycle.domain.access import Caller, as_support
from lifecycle.domain.addresses import normalise_phone
from lifecycle.domain.errors import (
    AccountNotFound,
    DomainError,
    EmailAlreadyRegistered,
    EmailChangeNotFound,
    Forbidden,
    PasswordResetNotFound,
    ProvisionalUserNotFound,
    Refusal,
    TermsNotAccepted,
)

if TYPE_CHECKING:
    from lifecycle.application.app import LifecycleApplication


class Accounts:
    """Sign-up, confirmation, profile, e-mail change, password reset (A-1…A-4)."""

    def __init__(self, app: LifecycleApplication) -> None:
        self.app = app

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
        """A-4: a registered address is answered as a new one (the same status, body and
        work: one Argon2 hash, one save), and its owner is mailed instead ("you already have
        an account", SignUpRepeated), so the answer tells nobody whether it is registered."""

        def decide():  # noqa: ANN202
            if not agree_terms:
                raise TermsNotAccepted("Sign-up needs consent to the terms of use.")
            check_password_strength(password)
            normalised_phone = normalise_phone(phone)
            key = email_key(email)
            account = Account(
                email=email.strip(),
                password_hash=self.app.hash_password(password),
                name=name,
                company_name=company_name,
                phone=normalised_phone,
                confirmation_expires_at=self.app.clock.now() + CONFIRMATION_VALIDITY,
            )
            owner_id = self.app.indexed(key)
            owner = self.app.load(owner_id, Account) if owner_id is not None else None
            if owner_id is not None:
                # The new account is answered and never saved; the owner is told (if the
                # Index names an account at all: it always does).
                if owner is not None:
                    owner.note_sign_up_repeated(self.app.clock.now())
                return account_view(account), [owner] if owner is not None else []
            return account_view(account), [account, Index(key, account.id)]

        return self.app.execute(decide, idempotency)

    def confirmation_token(self, account_id: UUID) -> str:
        """The token of the confirmation URL mailed at sign-up; derived, never stored, so
        the log holds nothing that would activate an account."""
        account = self.account(account_id)
        return f"{account.id.hex}.{self._token_signature(account)}"

    def _token_signature(self, account: Account) -> str:
        message = f"confirm:{account.id}:{account.confirmation_expires_at.isoformat()}"
        return hmac.new(self.app.secret_key, message.encode(), hashlib.sha256).hexdigest()[:32]

    def verify_account(self, token: str, idempotency: IdempotencyKey | None = None) -> Answer:
        def decide():  # noqa: ANN202
            account = self._account_of_token(token)
            account.activate(self.app.clock.now())
            return account_view(account), [account]

        return self.app.execute(decide, idempotency)

    def _account_of_token(self, token: str) -> Account:
        unknown = ProvisionalUserNotFound("No provisional account is waiting for this token.")
        account_hex, _, signature = token.strip().partition(".")
        try:
            account_id = UUID(hex=account_hex)
        except ValueError:
            raise unknown from None
        account = self.app.load(account_id, Account)
        if account is None or not hmac.compare_digest(signature, self._token_signature(account)):
            raise unknown
        return account

    def account(self, account_id: UUID, *, kind: Refusal | None = None) -> Account:
        account = self.app.load(account_id, Account)
        if account is None:
            raise AccountNotFound(f"Account {account_id} is not registered.", kind=kind)
        return account

    def get_account(self, account_id: UUID) -> Answer:
        return account_view(self.account(account_id))

    def change_profile(
        self,
        account_id: UUID,
        changes: dict[str, Any],
        idempotency: IdempotencyKey | None = None,
        *,
        by: Caller | None = None,
    ) -> Answer:
        """A-3 for name, company name and phone. A new e-mail (the user ID) is only
        requested here: it takes effect through the confirmation mail to the new address,
        and only the owner's session or support (`by.may_change_login_of`) may ask for it:
        a service that edits profiles must not be able to take the account over."""
        if "email" in changes and by is not None and not by.may_change_login_of(account_id):
            raise Forbidden("Only the account's owner, or support with the admin role, may change its login e-mail.")
        if "email" in changes and by is not None and not by.is_owner_of(account_id):
            with as_support():
                return self._change_profile(account_id, changes, idempotency)
        return self._change_profile(account_id, changes, idempotency)

    def _change_profile(
        self, account_id: UUID, changes: dict[str, Any], idempotency: IdempotencyKey | None
    ) -> Answer:
        def decide():  # noqa: ANN202
            account = self.account(account_id)
            normalised = dict(changes)
            new_email = normalised.pop("email", None)
            if "phone" in normalised:
                normalised["phone"] = normalise_phone(normalised["phone"])
            account.change_profile(normalised)
            if new_email is not None and new_email.strip() != account.email:
                new_email = new_email.strip()
                owner = self.app.indexed(email_key(new_email))
                if owner is not None and owner != account.id:
                    raise EmailAlreadyRegistered("This e-mail address is already registered.")
                account.request_email_change(new_email, self.app.clock.now(), EMAIL_CHANGE_VALIDITY)
            return account_view(account), [account]

        return self.app.execute(decide, idempotency)

    # --- signed tokens: derived from what they are for, never stored ----------

    def _sign(self, message: str) -> str:
        return hmac.new(self.app.secret_key, message.encode(), hashlib.sha256).hexdigest()[:32]

    @staticmethod
    def _signed_token(
        account: Account, signature_of: Callable[[Account], str | None], missing: DomainError
    ) -> str:
        signature = signature_of(account)
        if signature is None:
            raise missing
        return f"{account.id.hex}.{signature}"

    # --- the e-mail change ---------------------------------------------------------

    def email_change_token(self, account_id: UUID) -> str:
        """The token of the URL mailed to the new address: bound to that address and the
        instant of the request, derived, never stored. A later request, or the change
        itself, makes it worthless."""
        missing = EmailChangeNotFound(f"Account {account_id} has no e-mail change waiting.")
        return self._signed_token(self.account(account_id), self._email_change_signature, missing)

    def _email_change_signature(self, account: Account) -> str | None:
        pending = account.email_change()
        if pending is None:
            return None
        return self._sign(f"email-change:{account.id}:{pending['email']}:{pending['requested_at'].isoformat()}")

    def confirm_email_change(self, token: str, idempotency: IdempotencyKey | None = None) -> Answer:
        """Applies the change: EmailChanged, the new address claimed in the Index. The old
        address stays claimed by this account (the Index is never released), so nobody else
        can sign up with an ID that the account's history and mails still name; the
        account may take it back. The password must then be set again (Q17)."""

        def decide():  # noqa: ANN202
            unknown = EmailChangeNotFound("No e-mail change is waiting for this token.")
            account = self._account_of_signed_token(token, self._email_change_signature, unknown)
            pending = account.email_change()
            assert pending is not None
            account.confirm_email_change(self.app.clock.now())
            key = email_key(pending["email"])
            owner = self.app.indexed(key)
            if owner is not None and owner != account.id:
                raise EmailAlreadyRegistered("This e-mail address is already registered.")
            claimed = [Index(key, account.id)] if owner is None else []
            return account_view(account), [account, *claimed]

        return self.app.execute(decide, idempotency)

    # --- the forgotten password ----------------------------------------------------

    def request_password_reset(self, email: str, idempotency: IdempotencyKey | None = None) -> Answer:
        """Records PasswordResetRequested for an active account whose login ID this is;
        any other address is silently ignored. The answer is the same either way, and is
        given before anything is looked up (AfterAnswer), so it takes the same time too."""
        self.app.after_answer.run("a password-reset request", lambda: self._request_password_reset(email, idempotency))
        return {}

    def _request_password_reset(self, email: str, idempotency: IdempotencyKey | None) -> Answer:
        def decide():  # noqa: ANN202
            owner = self.app.indexed(email_key(email))
            account = self.app.load(owner, Account) if owner is not None else None
            if account is None or not account.is_active or email_key(account.email) != email_key(email):
                return {}, []
            account.request_password_reset(self.app.clock.now(), PASSWORD_RESET_VALIDITY)
            return {}, [account]

        self.app.execute(decide, idempotency)
        return {}

    def password_reset_token(self, account_id: UUID) -> str:
        """The token of the reset link: bound to the request and to the current password
        hash, so it works once (the change replaces both) and a newer request voids it."""
        missing = PasswordResetNotFound(f"Account {account_id} has no password reset waiting.")
        return self._signed_token(self.account(account_id), self._password_reset_signature, missing)

    def _password_reset_signature(self, account: Account) -> str | None:
        pending = account.password_reset()
        if pending is None:
            return None
        return self._sign(f"password-reset:{account.id}:{pending['requested_at'].isoformat()}:{account.password_hash}")

    def reset_password(self, token: str, password: str, idempotency: IdempotencyKey | None = None) -> Answer:
        def decide():  # noqa: ANN202
            unknown = PasswordResetNotFound("No password reset is waiting for this token.")
            account = self._account_of_signed_token(token, self._password_reset_signature, unknown)
            check_password_strength(password)
            account.reset_password(self.app.hash_password(password), self.app.clock.now())
            return account_view(account), [account]

        return self.app.execute(decide, idempotency)

    def _account_of_signed_token(
        self, token: str, signature_of: Callable[[Account], str | None], unknown: DomainError
    ) -> Account:
        account_hex, _, signature = token.strip().partition(".")
        try:
            account_id = UUID(hex=account_hex)
        except ValueError:
            raise unknown from None
        account = self.app.load(account_id, Account)
        expected = signature_of(account) if account is not None else None
        if account is None or expected is None or not hmac.compare_digest(signature.encode(), expected.encode()):
            raise unknown
        return account
