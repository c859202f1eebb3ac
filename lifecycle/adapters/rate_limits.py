"""Attempt limits for logins and password-reset requests (SPEC A-1, A-4), kept by the
`limits` library: in Redis when LIFECYCLE_REDIS_URL is set, so every process counts the same
attempts; in this process's memory on the embedded default (one process)."""

from __future__ import annotations

import hashlib
import math
import time

from limits import parse_many
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import MovingWindowRateLimiter
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from lifecycle.domain.errors import RateLimited

# While Redis does not answer, the limits are kept in this process's memory instead: each
# process then counts alone, but sign-up, login and reset still work and are still limited
# (a Redis outage must not stop what does not need the broker).
SHARED_STORAGE_DOWN = (RedisConnectionError, RedisTimeoutError)


class AttemptLimits:
    """`check(action, address=..., client=...)` counts one attempt against each limit of
    the action (per login ID and per client address) and refuses once one is spent."""

    def __init__(self, limits: dict[str, dict[str, str]], storage: Storage, namespace: str = "lifecycle") -> None:
        # action -> {"address": "5/minute;20/hour", "client": "30/minute"}
        self.limits = {action: {by: parse_many(text) for by, text in per.items()} for action, per in limits.items()}
        self.limiter = MovingWindowRateLimiter(storage)
        self.local_limiter = MovingWindowRateLimiter(MemoryStorage())
        self.namespace = namespace

    def check(self, action: str, **keys: str | None) -> None:
        try:
            self._check(self.limiter, action, keys)
        except SHARED_STORAGE_DOWN:
            self._check(self.local_limiter, action, keys)

    def _check(self, limiter: MovingWindowRateLimiter, action: str, keys: dict[str, str | None]) -> None:
        for by, value in keys.items():
            if not value:
                continue
            # Keys are hashed: the limiter's storage never holds an address.
            digest = hashlib.sha256(value.encode()).hexdigest()[:32]
            for item in self.limits.get(action, {}).get(by, []):
                if not limiter.hit(item, self.namespace, action, by, digest):
                    reset_at, _ = limiter.get_window_stats(item, self.namespace, action, by, digest)
                    retry_after = max(1, math.ceil(reset_at - time.time()))
                    raise RateLimited(
                        f"Too many {action.replace('_', ' ')} attempts for this {by}; try again in {retry_after} s.",
                        retry_after=retry_after,
                    )


def limits_storage(redis_url: str) -> Storage:
    if redis_url:
        # limits names its Redis scheme "redis://" too; it keeps its own connection pool.
        return RedisStorage(redis_url)
    return MemoryStorage()


class LoginThrottle:
    """Wrong passwords slow down the client that sends them, and never lock the account out
    (OWASP ASVS 6.3.1 / 6.1.1): failures are counted per (login ID, client address) and per
    client address. After `free` failures each further one makes that pair (or that client)
    wait twice as long as the last, from `first_delay` up to `max_delay`; the right password
    from the pair clears its count. The owner logging in from another address is never
    refused, whatever is tried against the account elsewhere. Kept in the same storage as
    AttemptLimits (Redis when configured, so every process sees the same delays)."""

    def __init__(
        self,
        storage: Storage,
        *,
        free_per_pair: int = 5,
        free_per_client: int = 50,
        first_delay: float = 1.0,
        max_delay: float = 900.0,
        forget_after: float = 24 * 3600.0,
        namespace: str = "lifecycle",
    ) -> None:
        self.shared_storage = storage
        self.local_storage: Storage = MemoryStorage()
        self.free = {"pair": free_per_pair, "client": free_per_client}
        self.first_delay = first_delay
        self.max_delay = max_delay
        self.forget_after = forget_after
        self.namespace = namespace

    def _keys(self, address: str, client: str | None) -> dict[str, str]:
        # Hashed, so the storage never holds an address.
        digest = hashlib.sha256(f"{address}\n{client or '-'}".encode()).hexdigest()[:32]
        keys = {"pair": digest}
        if client:
            keys["client"] = hashlib.sha256(client.encode()).hexdigest()[:32]
        return keys

    def check(self, address: str, client: str | None) -> None:
        try:
            self._check(self.shared_storage, address, client)
        except SHARED_STORAGE_DOWN:
            self._check(self.local_storage, address, client)

    def _check(self, storage: Storage, address: str, client: str | None) -> None:
        """Refuses (429 with Retry-After) while the pair or the client is waiting out a delay."""
        for by, key in self._keys(address, client).items():
            waiting = f"{self.namespace}/login-wait/{by}/{key}"
            if storage.get(waiting) > 0:
                retry_after = max(1, math.ceil(storage.get_expiry(waiting) - time.time()))
                raise RateLimited(
                    f"Too many wrong passwords from this {'address for this login ID' if by == 'pair' else 'address'}; "
                    f"try again in {retry_after} s.",
                    retry_after=retry_after,
                )

    def failed(self, address: str, client: str | None) -> None:
        try:
            self._failed(self.shared_storage, address, client)
        except SHARED_STORAGE_DOWN:
            self._failed(self.local_storage, address, client)

    def _failed(self, storage: Storage, address: str, client: str | None) -> None:
        for by, key in self._keys(address, client).items():
            failures = storage.incr(f"{self.namespace}/login-failures/{by}/{key}", int(self.forget_after))
            over = failures - self.free[by]
            if over >= 0:
                delay = min(self.first_delay * 2 ** min(over, 32), self.max_delay)
                waiting = f"{self.namespace}/login-wait/{by}/{key}"
                storage.clear(waiting)
                storage.incr(waiting, max(1, math.ceil(delay)))

    def succeeded(self, address: str, client: str | None) -> None:
        try:
            self._succeeded(self.shared_storage, address, client)
        except SHARED_STORAGE_DOWN:
            self._succeeded(self.local_storage, address, client)

    def _succeeded(self, storage: Storage, address: str, client: str | None) -> None:
        """The right password from this pair: its failures are forgotten (the client's stay)."""
        key = self._keys(address, client)["pair"]
        storage.clear(f"{self.namespace}/login-failures/pair/{key}")
        storage.clear(f"{self.namespace}/login-wait/pair/{key}")
