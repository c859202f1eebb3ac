"""Who is calling: internal services' API keys (created and revoked as events) and
customers' sessions (a login answers a bearer token). Every request's credentials are
checked against the store, so a revocation, a logout or a password change takes effect at
once in every process.

Tokens name what they are: `lk_<key id>_<secret>` for an API key, `ls_<secret>` for a
session; only their SHA-256 is stored (each secret is 32 random bytes)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import KW_ONLY, dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

from lifecycle.aggregates.accounts import Account
from lifecycle.aggregates.api_keys import ApiKey, KeyRing
from lifecycle.aggregates.index import email_key
from lifecycle.application.views import account_view
from lifecycle.domain.access import Actor, Caller, Role
from lifecycle.domain.accounts import check_password_strength
from lifecycle.domain.errors import (
    AccountNotActive,
    ApiKeyNotFound,
    InvalidCredentials,
    Unauthenticated,
    UnknownRole,
)
from lifecycle.ports import CredentialStore, LoginThrottling

if TYPE_CHECKING:
    from lifecycle.application.app import LifecycleApplication

KEY_PREFIX, SESSION_PREFIX = "lk_", "ls_"
# Last use and idle time are written at most this often per key or session and process.
TOUCH_EVERY_SECONDS = 60.0


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(eq=False)
class Access:
    app: LifecycleApplication
    store: CredentialStore
    _: KW_ONLY
    verify_password: Callable[[str, str], bool]
    throttle: LoginThrottling | None = None
    session_idle: timedelta = timedelta(minutes=30)
    session_lifetime: timedelta = timedelta(hours=12)
    touched_max: int = 10_000  # last-use times kept before they are emptied

    def __post_init__(self) -> None:
        # Checked when the address is unknown, so that it costs what a wrong password does.
        self._dummy_hash = self.app.hash_password(secrets.token_urlsafe(16))
        self._touched: dict[str, float] = {}  # emptied when it holds touched_max
        self._touched_lock = threading.Lock()

    # --- API keys -------------------------------------------------------------------------

    def create_key(self, name: str, roles: Iterable[str]) -> tuple[dict[str, Any], str]:
        """A new key: answers its description and the token, which is shown this once."""
        wanted = sorted(set(roles))
        unknown = [r for r in wanted if r not in {role.value for role in Role}]
        if unknown or not wanted:
            raise UnknownRole(
                f"Roles are {', '.join(r.value for r in Role)}; not {', '.join(unknown) or 'none'}.",
                known=[r.value for r in Role],
            )
        secret = secrets.token_urlsafe(32)

        def decide():  # noqa: ANN202
            ring = self.app.load(KeyRing.ID, KeyRing) or KeyRing()
            key = ApiKey(name=name, roles=wanted, secret_hash=_digest(secret), created_at=self.app.clock.now())
            ring.add(name, key.id)
            return self._key_view(key), [ring, key]

        answer = self.app.execute(decide, None)
        return answer, f"{KEY_PREFIX}{UUID(str(answer['key_id'])).hex}_{secret}"

    def _key_view(self, key: ApiKey, last_used: datetime | None = None) -> dict[str, Any]:
        return {
            "key_id": key.id,
            "name": key.name,
            "roles": list(key.roles),
            "created_at": key.created_at,
            "revoked_at": key.revoked_at,
            "last_used_at": last_used,
        }

    def keys(self) -> list[dict[str, Any]]:
        ring = self.app.load(KeyRing.ID, KeyRing)
        if ring is None:
            return []
        used = self.store.keys_last_used()
        found = [self.app.load(UUID(key_id), ApiKey) for key_id in ring.keys.values()]
        return [self._key_view(key, used.get(str(key.id))) for key in found if key is not None]

    def has_keys(self) -> bool:
        return self.app.load(KeyRing.ID, KeyRing) is not None

    def revoke_key(self, name_or_id: str) -> dict[str, Any]:
        def decide():  # noqa: ANN202
            key = self._key_named(name_or_id)
            key.revoke(self.app.clock.now())
            return self._key_view(key), [key]

        return self.app.execute(decide, None)

    def _key_named(self, name_or_id: str) -> ApiKey:
        ring = self.app.load(KeyRing.ID, KeyRing)
        key_id = ring.keys.get(name_or_id) if ring is not None else None
        if key_id is None:
            try:
                key_id = str(UUID(name_or_id))
            except ValueError:
                key_id = None
        key = self.app.load(UUID(key_id), ApiKey) if key_id else None
        if key is None:
            raise ApiKeyNotFound(f"No API key is named or numbered {name_or_id!r}.")
        return key

    # --- customers' sessions ----------------------------------------------------------------

    def login(self, email: str, password: str, client: str | None) -> dict[str, Any]:
        """A bearer token for an active account's login ID and password. An unknown address
        and a wrong password get the same refusal after the same work (one Argon2 check).
        Wrong passwords slow down the (login ID, client address) pair and the client that
        sends them (LoginThrottle), never the account: its owner elsewhere is let in.
        `client` (the caller's address, or None when there is none) is required, so that no
        entry point forgets it: without it every caller would share one count."""
        address = email_key(email)
        if self.throttle is not None:
            self.throttle.check(address, client)
        try:
            answer = self._login(email, password)
        except InvalidCredentials:
            if self.throttle is not None:
                self.throttle.failed(address, client)
            raise
        if self.throttle is not None:
            self.throttle.succeeded(address, client)
        return answer

    def _login(self, email: str, password: str) -> dict[str, Any]:
        owner = self.app.indexed(email_key(email))
        account = self.app.load(owner, Account) if owner is not None else None
        if account is not None and email_key(account.email) != email_key(email):
            account = None  # an address the account has since changed from
        valid = self.verify_password(account.password_hash if account else self._dummy_hash, password)
        if account is None or not valid:
            raise InvalidCredentials("The e-mail address or the password is not correct.")
        if not account.is_active:
            raise AccountNotActive(f"Account {account.id} has not confirmed its e-mail address.")
        secret = secrets.token_urlsafe(32)
        now = self.app.clock.now()
        self.store.start_session(_digest(secret), str(account.id), account.credentials_epoch, now)
        return {
            "token": f"{SESSION_PREFIX}{secret}",
            "token_type": "bearer",
            "account_id": account.id,
            "expires_at": now + self.session_lifetime,
            "idle_timeout_seconds": int(self.session_idle.total_seconds()),
        }

    def change_password(self, caller: Caller, current_password: str, new_password: str) -> dict[str, Any]:
        """The customer's new password, given the current one (A-1's rule). Every session of
        the account ends with it (its epoch moves on), this one too: log in again."""
        account = self.app.load(UUID(str(caller.account_id)), Account)
        if account is None or not self.verify_password(account.password_hash, current_password):
            raise InvalidCredentials("The current password is not correct.")
        check_password_strength(new_password)

        def decide():  # noqa: ANN202
            fresh = self.app.load(account.id, Account)
            fresh.change_password(self.app.hash_password(new_password))
            return account_view(fresh), [fresh]

        return self.app.execute(decide, None)

    def logout(self, caller: Caller) -> None:
        if caller.session_id is not None:
            self.store.end_session(caller.session_id, self.app.clock.now())

    # --- checking a request's credentials ------------------------------------------------------

    def authenticate(self, token: str) -> Caller:
        if token.startswith(KEY_PREFIX):
            return self._key_caller(token)
        if token.startswith(SESSION_PREFIX):
            return self._session_caller(token)
        raise Unauthenticated("The bearer token is not an API key or a session token.")

    def _key_caller(self, token: str) -> Caller:
        key_hex, _, secret = token.removeprefix(KEY_PREFIX).partition("_")
        try:
            key_id = UUID(hex=key_hex)
        except ValueError:
            raise Unauthenticated("Unknown API key.") from None
        key = self.app.load(key_id, ApiKey)
        if key is None or not hmac.compare_digest(key.secret_hash, _digest(secret)):
            raise Unauthenticated("Unknown API key.")
        if key.is_revoked:
            raise Unauthenticated("This API key has been revoked.")
        if self._due(f"key:{key_id}"):
            self.store.key_used(str(key_id), self.app.clock.now())
        return Caller(Actor("api_key", str(key_id), key.name), frozenset(Role(r) for r in key.roles))

    def _session_caller(self, token: str) -> Caller:
        token_hash = _digest(token.removeprefix(SESSION_PREFIX))
        session = self.store.session(token_hash)
        now = self.app.clock.now()
        if (
            session is None
            or session.ended_at is not None
            or now - session.created_at > self.session_lifetime
            or now - session.last_seen_at > self.session_idle
        ):
            raise Unauthenticated("The session has ended or expired; log in again.")
        account = self.app.load(UUID(session.account_id), Account)
        if account is None or not account.is_active or account.credentials_epoch != session.epoch:
            raise Unauthenticated("The session has ended (the password or e-mail changed); log in again.")
        if self._due(f"session:{token_hash}"):
            self.store.seen(token_hash, now)
        return Caller(Actor("account", session.account_id), account_id=session.account_id, session_id=token_hash)

    def _due(self, what: str) -> bool:
        """Whether this key's or session's last use is worth writing again from this process."""
        now = time.monotonic()
        with self._touched_lock:
            if now - self._touched.get(what, -TOUCH_EVERY_SECONDS) < TOUCH_EVERY_SECONDS:
                return False
            if len(self._touched) >= self.touched_max:
                self._touched.clear()
            self._touched[what] = now
            return True

