"""The lifecycle application: one event store behind every command and query."""

from lifecycle.application.app import LifecycleApplication
from lifecycle.application.commands import IdempotencyKey

__all__ = ["IdempotencyKey", "LifecycleApplication"]
