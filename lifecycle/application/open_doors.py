"""The service's open doors, for every entry point (the API's routes, the portal's pages):
what anyone may do without credentials, each attempt counted against its rate limits per
client address (and per address asked about) before the application is called. One place,
so a second entry point cannot forget a limit."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lifecycle.aggregates.index import email_key

if TYPE_CHECKING:
    from lifecycle.application.access import Access
    from lifecycle.application.accounts import Accounts
    from lifecycle.application.commands import Answer, IdempotencyKey
    from lifecycle.ports import AttemptCounter


class OpenDoors:
    def __init__(self, accounts: Accounts, access: Access, limits: AttemptCounter) -> None:
        self.accounts = accounts
        self.access = access
        self.limits = limits

    def knock(self, client: str | None) -> None:
        """Any open route or page, by a caller without an API key (429 RATE_LIMITED beyond)."""
        self.limits.check("open_route", client=client)

    def sign_up(self, client: str | None, email: str, password: str, name: str, company_name: str, phone: str,
                agree_terms: bool, idempotency: IdempotencyKey | None = None) -> Answer:
        self.limits.check("sign_up", address=email_key(email), client=client)
        return self.accounts.sign_up(email, password, name, company_name, phone, agree_terms, idempotency)

    def request_password_reset(
        self, client: str | None, email: str, idempotency: IdempotencyKey | None = None
    ) -> Answer:
        self.limits.check("password_reset", address=email_key(email), client=client)
        return self.accounts.request_password_reset(email, idempotency)

    def log_in(self, client: str | None, email: str, password: str) -> dict[str, Any]:
        """Login attempts per client address, then the login with its throttling (Access.login)."""
        self.limits.check("login", client=client)
        return self.access.login(email, password, client)
