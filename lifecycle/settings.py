"""All settings, from the environment (prefix LIFECYCLE_) or a .env file."""

from __future__ import annotations

import secrets
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from lifecycle.domain.periods import RenewalPolicy
from lifecycle.domain.terms import SupportTerms


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LIFECYCLE_", env_file=".env", extra="ignore")

    # The event store: sqlite:///PATH (embedded default) or postgresql://USER[:PASSWORD]@HOST:PORT/DB
    database_url: str = "sqlite:///./var/lifecycle.sqlite3"
    # A PostgreSQL schema of its own (created when missing); tests give each run one.
    database_schema: str = ""
    database_pool_size: int = 10
    # Signs confirmation tokens. Unset: a random key kept in var_dir, made on first start.
    secret_key: str = ""
    var_dir: Path = Path("./var")

    # Support terms (P-1, T-5, R-2): months of the first period per term in years, ...
    first_period_months: dict[int, int] = Field(default_factory=lambda: {1: 13, 5: 63, 7: 87})
    new_ticket_terms: list[int] = Field(default_factory=lambda: [1, 5])
    new_ticket_services: list[str] = Field(default_factory=lambda: ["デリバリースタンダード", "Delivery Standard"])
    # ... and the renewal window: from this many months before the end to this many days after.
    renewal_lead_months: int = 3
    renewal_grace_days: int = 90

    def support_terms(self) -> SupportTerms:
        return SupportTerms(
            first_period_months=dict(self.first_period_months),
            new_ticket_terms=frozenset(self.new_ticket_terms),
            new_ticket_services=tuple(self.new_ticket_services),
            renewal=RenewalPolicy(self.renewal_lead_months, self.renewal_grace_days),
        )

    def signing_key(self) -> str:
        if self.secret_key:
            return self.secret_key
        key_file = self.var_dir / "secret_key"
        if not key_file.exists():
            key_file.parent.mkdir(parents=True, exist_ok=True)
            key_file.write_text(secrets.token_hex(32))
            key_file.chmod(0o600)
        return key_file.read_text().strip()
