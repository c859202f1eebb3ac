"""The lifecycle application: one event store behind every command and query."""

from lifecycle.application.accounts import AccountCommands
from lifecycle.application.base import ConcurrentUpdate, IdempotencyKey
from lifecycle.application.history import ContractHistory
from lifecycle.application.notifications import NotificationRecords
from lifecycle.application.registrations import RegistrationCommands


class LifecycleApplication(NotificationRecords, AccountCommands, RegistrationCommands, ContractHistory):
    """Accounts, shipment history, contracts and registrations in one application, so
    that a registration saves the contract, the ticket and the unit atomically."""

    name = "Lifecycle"


__all__ = ["ConcurrentUpdate", "IdempotencyKey", "LifecycleApplication"]
