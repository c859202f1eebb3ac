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

from lifecycle.domain.errors import RateLimited


class AttemptLimits:
    """`check(action, address=..., client=...)` counts one attempt against each limit of
    the action (per login ID and per client address) and refuses once one is spent."""

    def __init__(self, limits: dict[str, dict[str, str]], storage: Storage, namespace: str = "lifecycle") -> None:
        # action -> {"address": "5/minute;20/hour", "client": "30/minute"}
        self.limits = {action: {by: parse_many(text) for by, text in per.items()} for action, per in limits.items()}
        self.limiter = MovingWindowRateLimiter(storage)
        self.namespace = namespace

    def check(self, action: str, **keys: str | None) -> None:
        for by, value in keys.items():
            if not value:
                continue
            # Keys are hashed: the limiter's storage never holds an address.
            digest = hashlib.sha256(value.encode()).hexdigest()[:32]
            for item in self.limits.get(action, {}).get(by, []):
                if not self.limiter.hit(item, self.namespace, action, by, digest):
                    reset_at, _ = self.limiter.get_window_stats(item, self.namespace, action, by, digest)
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
