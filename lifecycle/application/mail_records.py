"""Recording the mails sent (M-4): one event per notification, on the contract or the
account it concerns. Recording twice is harmless: the aggregate ignores an id it has.

The sender passes the aggregate it rendered the mail from: the mail has just been handed
to the server, and saving it straight away keeps the unrecorded moment as short as one
insert. Should a concurrent command have changed the aggregate since, the save fails on
its version and the record is made again on a freshly loaded one."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from lifecycle.aggregates.accounts import Account
from lifecycle.aggregates.contract import Contract

if TYPE_CHECKING:
    from lifecycle.application.accounts import Accounts
    from lifecycle.application.app import LifecycleApplication
    from lifecycle.application.companies import Companies

A = TypeVar("A", bound=Aggregate)


class MailRecords:
    def __init__(self, app: LifecycleApplication, accounts: Accounts, companies: Companies) -> None:
        self.app = app
        self.accounts = accounts
        self.companies = companies

    def _record_mail(self, loaded: A | None, load: Callable[[], A], apply: Callable[[A], None]) -> None:
        first = [loaded] if loaded is not None else []

        def decide():  # noqa: ANN202
            aggregate = first.pop() if first else load()
            apply(aggregate)
            return {}, [aggregate]

        self.app.execute(decide, None)

    def record_contract_mail_sent(
        self, contract_id: UUID, record: Callable[[Contract], None], *, contract: Contract | None = None
    ) -> None:
        """M-1, M-3: `record` applies the mail's own event (record_service_in_notified, ...)."""
        self._record_mail(contract, lambda: self.companies.company(contract_id), record)

    def record_account_mail_sent(
        self, account_id: UUID, record: Callable[[Account], None], *, account: Account | None = None
    ) -> None:
        """A-2, A-3, A-4: `record` applies the mail's own event (ConfirmationMailSent, ...)."""
        self._record_mail(account, lambda: self.accounts.account(account_id), record)
