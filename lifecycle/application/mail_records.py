"""Recording the mails sent (M-4): one event per notification, on the contract or the
account it concerns. Recording twice is harmless: the aggregate ignores an id it has.

The sender passes the aggregate it rendered the mail from: the mail has just been handed
to the server, and saving it straight away keeps the unrecorded moment as short as one
insert. The mail's event is made in the sending thread (it names that mail's request),
and the sending threads of a process that record at the same moment share one transaction
(`GroupCommit`): each still waits for its own record to be committed before its next mail,
so the unrecorded moment stays one commit long, while the store sees one insert for several
mails. Should a concurrent command have changed the aggregate since, the save fails on its
version and the record is made again on a freshly loaded one. An aggregate given back
after a failed save may hold an event the store does not: it makes no new event then, and
the record is made on a freshly loaded one."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar
from uuid import UUID

from eventsourcing.domain import Aggregate

from lifecycle.aggregates.accounts import Account
from lifecycle.aggregates.contract import Contract

if TYPE_CHECKING:
    from lifecycle.application.accounts import Accounts
    from lifecycle.application.app import LifecycleApplication
    from lifecycle.application.companies import Companies

A = TypeVar("A", bound=Aggregate)


class GroupCommit:
    """Saves offered by several threads at once go in one transaction. The first thread to
    arrive saves everything offered by then; the others wait for it (a thread arriving
    meanwhile waits for the next save). Two offers of one aggregate never share a save."""

    def __init__(self, save_once: Callable[..., int | None]) -> None:
        self._save_once = save_once  # the log position, or None when a concurrent change won
        self._lock = threading.Lock()
        self._saved = threading.Condition(self._lock)
        self._offered: list[_Offer] = []
        self._saving = False

    def save(self, aggregate: Aggregate) -> bool:
        """Whether `aggregate` was saved; False when a concurrent change won or the save
        failed (the caller records afresh). The thread that ran a failed save raises its error."""
        offer = _Offer(aggregate)
        with self._lock:
            self._offered.append(offer)
            while offer.saved is None:
                if self._saving:
                    self._saved.wait()
                    continue
                self._saving = True
                group, self._offered = _distinct(self._offered)
                self._lock.release()
                try:
                    self._save(group)
                finally:
                    self._lock.acquire()
                    self._saving = False
                    self._saved.notify_all()
        return offer.saved

    def _save(self, group: list[_Offer]) -> None:
        try:
            saved = self._save_once(*[offer.aggregate for offer in group]) is not None
        except BaseException:
            # The store failed, or this thread was interrupted (a time limit), perhaps after
            # the commit: each offer is recorded afresh, on a load that shows what was saved.
            for offer in group:
                offer.saved = False
            raise
        for offer in group:
            offer.saved = saved


class _Offer:
    def __init__(self, aggregate: Aggregate) -> None:
        self.aggregate = aggregate
        self.saved: bool | None = None


def _distinct(offers: list[_Offer]) -> tuple[list[_Offer], list[_Offer]]:
    """The offers to save now (one per aggregate), and the rest, for the next save."""
    now: list[_Offer] = []
    later: list[_Offer] = []
    ids: set[Any] = set()
    for offer in offers:
        (later if offer.aggregate.id in ids else now).append(offer)
        ids.add(offer.aggregate.id)
    return now, later


class MailRecords:
    def __init__(self, app: LifecycleApplication, accounts: Accounts, companies: Companies) -> None:
        self.app = app
        self.accounts = accounts
        self.companies = companies
        self.commits = GroupCommit(lambda *aggregates: app.save_once(*aggregates))

    def _record_mail(self, loaded: A | None, load: Callable[[], A], apply: Callable[[A], None]) -> A:
        """Answers the aggregate as saved, to record the next mail on it."""
        if loaded is not None:
            apply(loaded)
            # No new event: recorded already, or the object is left over from a failed save
            # (its event applied, never stored): only a fresh load can tell.
            if loaded.pending_events and self.commits.save(loaded):
                return loaded
        saved: list[A] = []

        def decide():  # noqa: ANN202
            aggregate = load()
            apply(aggregate)
            saved[:] = [aggregate]
            return {}, [aggregate]

        self.app.execute(decide, None)
        return saved[0]

    def record_contract_mail_sent(
        self, contract_id: UUID, record: Callable[[Contract], None], *, contract: Contract | None = None
    ) -> Contract:
        """M-1, M-3: `record` applies the mail's own event (record_service_in_notified, ...)."""
        return self._record_mail(contract, lambda: self.companies.company(contract_id), record)

    def record_account_mail_sent(
        self, account_id: UUID, record: Callable[[Account], None], *, account: Account | None = None
    ) -> Account:
        """A-2, A-3, A-4: `record` applies the mail's own event (ConfirmationMailSent, ...)."""
        return self._record_mail(account, lambda: self.accounts.account(account_id), record)
