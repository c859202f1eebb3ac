"""All settings, from the environment (prefix LIFECYCLE_) or a .env file."""

from __future__ import annotations

import secrets
from datetime import time
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from lifecycle.domain.limits import BULK_MAX_BYTES, BULK_MAX_ROWS
from lifecycle.domain.periods import ENDING_SOON_DAYS, RENEWAL_GRACE_DAYS, RENEWAL_LEAD_MONTHS, RenewalPolicy
from lifecycle.domain.terms import FIRST_PERIOD_MONTHS, NEW_TICKET_SERVICES, NEW_TICKET_TERMS, SupportTerms


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LIFECYCLE_", env_file=".env", extra="ignore")

    # The event store: sqlite:///PATH (embedded default) or postgresql://USER[:PASSWORD]@HOST:PORT/DB
    database_url: str = "sqlite:///./var/lifecycle.sqlite3"
    # A PostgreSQL schema of its own (created when missing); tests give each run one.
    database_schema: str = ""
    database_pool_size: int = Field(default=10, ge=1, le=1000)
    # Outages (PostgreSQL): a request waits at most this long for a pooled connection, and a
    # statement or a lock at most these; a new connection gives up after the connect timeout
    # (libpq: whole seconds, at least 2). With the database away, requests answer 503
    # STORE_UNAVAILABLE at once and the store is tried again every quarter second.
    database_pool_timeout_seconds: float = Field(default=1.5, gt=0)
    database_connect_timeout_seconds: int = Field(default=2, ge=2)
    database_statement_timeout_seconds: float = Field(default=5.0, ge=0)  # 0: none
    database_lock_timeout_seconds: int = Field(default=2, ge=0)  # whole seconds (the library's); 0: none
    # What each process keeps in memory, at most (docs/operating.md: what each holds, and the
    # memory it takes). Contracts (each use still reads what was saved since; also the event
    # feed's contract numbers); 0: none.
    contract_cache_size: int = Field(default=1000, ge=0)
    # Bulk registration jobs (each read still reads the batches recorded since); 0: none.
    job_cache_size: int = Field(default=100, ge=0)
    # Index entries found (a site, a fault contact, a login ID... -> the aggregate it names).
    index_cache_size: int = Field(default=50_000, ge=0)
    # Data subjects' keys read (each trusted for 30 s, then read again).
    personal_key_cache_size: int = Field(default=50_000, ge=1)
    # API keys and sessions whose last use this process wrote (written again after a minute).
    credential_cache_size: int = Field(default=10_000, ge=1)
    # Signs confirmation tokens. Unset: a random key kept in var_dir, made on first start.
    secret_key: str = ""
    # The key-encryption key of the data subjects' keys (docs/privacy.md): 64 hex digits.
    # Unset: a random key kept in var_dir, made on first start. Keep it with the database's
    # backups but never in them: without it no personal field can be read.
    privacy_key: str = ""
    var_dir: Path = Path("./var")
    # --- the audit log (docs/audit.md) ------------------------------------------------------
    # Signs the checkpoints: an Ed25519 key as the base64 of its 32-byte seed. Unset: a random
    # key kept in var_dir/audit_signing_key, made on first start (like the secret key).
    audit_signing_key: str = ""
    # The checkpoints' origin line and the signature's key name (C2SP tlog-checkpoint).
    audit_origin: str = Field(default="lifecycle.example/audit", min_length=1, max_length=200, pattern=r"^[^\s+]+$")
    # A checkpoint is signed when the tree has grown by this many events since the last one,
    # or when it has grown at all and this many minutes passed; 0 turns either off.
    audit_checkpoint_events: int = Field(default=1000, ge=0)
    audit_checkpoint_minutes: float = Field(default=10.0, ge=0)
    # The event feed's long poll: the longest `wait` a consumer may ask for, and how many
    # consumers of one process may wait at once.
    events_wait_max_seconds: float = Field(default=30.0, ge=0, le=300)
    events_waiters_max: int = Field(default=256, ge=1)
    # The logs on stderr: readable text lines, or one JSON object per line whose fields
    # (request id, route, status, notification id...) are keys of their own.
    log_format: Literal["text", "json"] = "text"

    # Request bodies over this many bytes are refused with 413 before they are read.
    max_body_bytes: int = Field(default=1024 * 1024, ge=1)

    # Support terms (P-1, T-5, R-2), defaults from the domain: months of the first period per term in years, ...
    first_period_months: dict[int, int] = Field(default_factory=lambda: dict(FIRST_PERIOD_MONTHS))
    new_ticket_terms: list[int] = Field(default_factory=lambda: sorted(NEW_TICKET_TERMS))
    new_ticket_services: list[str] = Field(default_factory=lambda: list(NEW_TICKET_SERVICES))
    # ... and the renewal window: from this many months before the end to this many days after.
    renewal_lead_months: int = Field(default=RENEWAL_LEAD_MONTHS, ge=1, le=12)
    renewal_grace_days: int = Field(default=RENEWAL_GRACE_DAYS, ge=0, le=366)

    # --- access (SPEC 4: API keys for services, sessions for customers) --------------------
    # A customer's session ends after this long without a request, and this long after login.
    session_idle_minutes: float = Field(default=30, gt=0)
    session_absolute_hours: float = Field(default=12, gt=0)
    # The portal's cookies get Secure (sent over HTTPS only). Turn it on behind a TLS proxy; a
    # request that reached the service itself over HTTPS gets Secure cookies anyway.
    portal_secure_cookies: bool = False
    # Attempts per client address (and per address asked about), in the `limits` library's
    # notation ("N/second|minute|hour|day", several separated by ";"); counted in Redis when
    # LIFECYCLE_REDIS_URL is set, so every process shares them. 429 with Retry-After beyond.
    login_limit_per_client: str = "60/minute"
    password_reset_limit_per_address: str = "3/minute;10/hour"
    password_reset_limit_per_client: str = "20/minute"
    sign_up_limit_per_address: str = "3/minute;10/hour"
    sign_up_limit_per_client: str = "10/minute;100/hour"
    # Every open route (health, postal codes, sign-up, verify, confirms, reset, login) per
    # client address without an API key.
    open_route_limit_per_client: str = "300/minute"
    # Wrong passwords (docs/security.md): after this many per (login ID, client address), or
    # per client address, each further one doubles the wait from the first delay up to the
    # longest; never a block of the account itself.
    login_free_failures: int = Field(default=5, ge=1, le=1000)
    login_free_failures_per_client: int = Field(default=50, ge=1, le=100_000)
    login_first_delay_seconds: float = Field(default=1.0, gt=0, le=3600)
    login_max_delay_seconds: float = Field(default=900.0, gt=0, le=86400)
    # The reverse proxies whose X-Forwarded-For is believed (addresses or networks, JSON list:
    # '["10.0.0.5", "10.1.0.0/16"]'). Empty: the peer's address is the client's.
    trusted_proxies: list[str] = Field(default_factory=list)

    # --- read models (projections) ------------------------------------------------------
    # Run the projection runners in this process (with several processes on PostgreSQL,
    # one of them runs each projection at a time; the others stand by).
    run_projections: bool = True
    projection_batch_size: int = Field(default=1000, ge=1)
    # How often a runner looks at the log when no save woke it (saves in this process, and
    # on PostgreSQL in any process, wake it at once).
    projection_poll_seconds: float = Field(default=1.0, gt=0)
    # While saves keep coming, how long a runner lets them gather between batches (fewer,
    # larger transactions). A read with min_position does not wait for it.
    projection_gather_seconds: float = Field(default=0.05, ge=0)
    # How long a read waits for its read models (the log head at its arrival) before answering 503.
    read_wait_seconds: float = Field(default=5.0, ge=0)
    # At most this many reads of one process wait for their read models at a time; more answer
    # 503 READ_MODEL_BEHIND at once, so waiting readers never take every server thread (40).
    read_waiters_max: int = Field(default=16, ge=1, le=1000)
    # Expiry dashboard: coverage "ending soon" within this many days (the ticket list's status).
    ending_soon_days: int = Field(default=ENDING_SOON_DAYS, ge=1, le=3660)

    # --- bulk registration from Excel sheets (K-1) ---------------------------------------
    bulk_max_bytes: int = Field(default=BULK_MAX_BYTES, ge=1)  # an upload over this: 413
    bulk_max_rows: int = Field(default=BULK_MAX_ROWS, ge=1)
    # A sheet with at most this many rows to register is done before the answer (201);
    # a larger one becomes a background job (202 and its Location).
    bulk_sync_rows: int = Field(default=100, ge=0)
    # Rows per transaction. Each batch has a fixed cost (the contract and the job read, the
    # store's lock and commit): in process on PostgreSQL a job's CPU was 1.43 / 1.11-1.25 /
    # 1.25 ms per row at 250 / 500 / 1,000 rows (benchmarks/README.md). A batch holds the
    # events table's lock for one INSERT of its events (4 per new ticket), sent in binary
    # (lifecycle/adapters/event_store.py); single registrations wait for it.
    bulk_batch_rows: int = Field(default=500, ge=1)
    # A worker holds a job this long between batches; a dead worker's job is taken over after it.
    bulk_lease_seconds: float = Field(default=30.0, gt=0)
    bulk_sweep_seconds: float = Field(default=10.0, gt=0)  # how often stalled jobs are looked for
    # A job handed to a worker and not taken within this is handed out again (its message may
    # have been lost with Redis); before, a job waiting in the queue is left alone.
    bulk_queue_wait_seconds: float = Field(default=300.0, gt=0)

    # --- mails, timers and workers (M-1…M-4) ------------------------------------------
    # The dramatiq broker of `lifecycle worker`. Unset: the embedded default, where the API
    # process runs the scheduler and the mail worker itself.
    redis_url: str = ""
    redis_namespace: str = "lifecycle"  # dramatiq's key prefix, so deployments can share a Redis
    # Connecting to Redis and each command: beyond this the broker counts as away (503 BROKER_UNAVAILABLE).
    redis_timeout_seconds: float = Field(default=2.0, gt=0)
    # SMTP. Unset host: mails are written to the Maildir (default var_dir/mail).
    smtp_host: str = ""
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_security: Literal["none", "starttls", "ssl"] = "none"
    smtp_username: str = ""
    smtp_password: str = ""
    smtp_timeout_seconds: float = Field(default=20.0, gt=0, le=600)
    smtp_ca_file: Path | None = None  # a private CA for the relay's certificate (default: the system's)
    maildir: Path | None = None
    # The sender and the vendor's contacts quoted in the mails (M-2).
    mail_from: str = "support@example.com"
    vendor_name: str = "サンプル株式会社"
    call_center_name: str = "コールセンター"
    call_center_phone: str = "0120-000-000"
    call_center_mail: str = "callcenter@example.com"
    call_center_hours: str = "月～金 9:00～17:00（土日祝日・12月29日～1月3日は除く）"
    # The heading of the call-center block per service (the seed: デリバリーサービス 連絡窓口).
    service_desk_names: dict[str, str] = Field(
        default_factory=lambda: {"デリバリースタンダード": "デリバリーサービス", "Delivery Standard": "デリバリーサービス"}
    )
    contracts_desk_name: str = "サービス業務管理部"
    contracts_desk_mail: str = "contracts@example.com"
    # The service's own address as customers reach it (behind a proxy: the proxy's). The links
    # the service mails open the portal's page for them there, unless set one by one below.
    public_url: str = "http://localhost:8000"
    # The confirmation URL of A-2 is this base with ?token=... (default: the portal's page)
    confirmation_url_base: str = ""
    # The URL mailed to a new address and the reset link, each with ?token=...
    email_change_url_base: str = ""
    password_reset_url_base: str = ""
    # The links of the "you already have an account" mail: the login page and the page
    # where a reset link is asked for (default: the portal's pages).
    login_url: str = ""
    forgot_password_url: str = ""
    # When mails go out, Asia/Tokyo: service-in this many business days after the
    # registration day (never later than M-1's 4), reminders on their day, at this time.
    service_in_business_days: int = Field(default=1, ge=0, le=4)
    mail_send_time: time = time(10, 0)
    # Beyond the seed: a second reminder a month before the end, and a notice on the end day.
    renewal_reminder_one_month: bool = True
    expiry_notice: bool = True
    # Timers: how often the scheduler looks for due ones; how long a worker holds one while
    # sending; when a timer enqueued but not sent is enqueued again (a lost message).
    scheduler_interval_seconds: float = Field(default=5.0, gt=0, le=3600)
    notification_claim_seconds: float = Field(default=120.0, gt=0)
    notification_requeue_seconds: float = Field(default=600.0, gt=0)
    # Retries of a failed send, kept in the timer (durable): the n-th waits
    # min(base * 2**(n-1), max) seconds; after max_attempts failures the mail is listed as failed.
    notification_max_attempts: int = Field(default=6, ge=1, le=100)
    notification_retry_base_seconds: float = Field(default=60.0, gt=0)
    notification_retry_max_seconds: float = Field(default=3600.0, gt=0)
    # With several processes on PostgreSQL, the one running the scheduler or a projection
    # loses it this long after it stops answering (frozen, hung) and another takes over; at
    # least three turns of the job's loop (the scheduler interval, the projection poll).
    leader_timeout_seconds: float = Field(default=30.0, gt=0, le=3600)
    worker_threads: int = Field(default=4, ge=1, le=256)
    worker_prefetch: int = Field(default=64, ge=1, le=10_000)
    # Due notifications a worker takes at once: their rows claimed in one commit, each
    # contract and account loaded once for them (each mail is still recorded as it goes).
    notification_batch_size: int = Field(default=20, ge=1, le=500)
    # Retention (docs/privacy.md): a provisional account never confirmed has its personal
    # data erased this many days after sign-up (a timer like the mails').
    provisional_account_retention_days: int = Field(default=30, ge=1, le=3650)
    # A test aid: POST /v1/admin/timers/run fires timers as of a given instant.
    allow_clock_override: bool = False

    @field_validator("first_period_months")
    @classmethod
    def _first_periods(cls, months: dict[int, int]) -> dict[int, int]:
        for years, first in months.items():
            if not 1 <= years <= 20 or not 1 <= first <= 12 * 21:
                raise ValueError(f"{years}: {first} is not a term of 1-20 years with a first period of 1-252 months")
        return months

    @field_validator("new_ticket_terms")
    @classmethod
    def _terms(cls, terms: list[int]) -> list[int]:
        if not terms or any(not 1 <= years <= 20 for years in terms):
            raise ValueError(f"{terms} must list terms of 1-20 years")
        return terms

    @field_validator(
        "login_limit_per_client", "password_reset_limit_per_address", "password_reset_limit_per_client",
        "sign_up_limit_per_address", "sign_up_limit_per_client", "open_route_limit_per_client",
    )
    @classmethod
    def _rate_limits(cls, text: str) -> str:
        from limits import parse_many

        try:
            parse_many(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a rate limit such as '10/minute;50/hour'") from None
        return text

    def mailed_link(
        self, which: Literal["confirmation", "email_change", "password_reset", "login", "forgot_password"]
    ) -> str:
        """The base of a mailed link: its own setting, else the portal's page on public_url."""
        given = {"confirmation": self.confirmation_url_base, "email_change": self.email_change_url_base,
                 "password_reset": self.password_reset_url_base, "login": self.login_url,
                 "forgot_password": self.forgot_password_url}[which]
        page = {"confirmation": "signup/confirm", "email_change": "email/confirm",
                "password_reset": "password-reset/confirm", "login": "login",
                "forgot_password": "password-reset"}[which]
        return given or f"{self.public_url.rstrip('/')}/portal/{page}"

    @field_validator("trusted_proxies")
    @classmethod
    def _trusted_proxies(cls, entries: list[str]) -> list[str]:
        from lifecycle.adapters.client_addresses import parse_networks

        try:
            parse_networks(entries)
        except ValueError as error:
            raise ValueError(f"trusted proxies must be IP addresses or networks: {error}") from None
        return entries

    def mail_directory(self) -> Path:
        return self.maildir if self.maildir is not None else self.var_dir / "mail"

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
        return self._key_file("secret_key")

    def privacy_kek(self) -> bytes:
        """The key-encryption key of the data subjects' keys (32 bytes)."""
        from lifecycle.adapters.personal_keys import parse_kek

        return parse_kek(self.privacy_key or self._key_file("privacy_key"))

    def _key_file(self, name: str) -> str:
        """A random 256-bit key kept in var_dir, made on first start."""
        key_file = self.var_dir / name
        if not key_file.exists():
            key_file.parent.mkdir(parents=True, exist_ok=True)
            key_file.write_text(secrets.token_hex(32))
            key_file.chmod(0o600)
        return key_file.read_text().strip()

    def audit_key_seed(self) -> bytes:
        """The 32-byte Ed25519 seed that signs the audit checkpoints."""
        import base64

        if self.audit_signing_key:
            text = self.audit_signing_key
        else:
            key_file = self.var_dir / "audit_signing_key"
            if not key_file.exists():
                key_file.parent.mkdir(parents=True, exist_ok=True)
                key_file.write_text(base64.b64encode(secrets.token_bytes(32)).decode())
                key_file.chmod(0o600)
            text = key_file.read_text().strip()
        seed = base64.b64decode(text, validate=True)
        if len(seed) != 32:
            raise ValueError("LIFECYCLE_AUDIT_SIGNING_KEY must be the base64 of a 32-byte Ed25519 seed")
        return seed
