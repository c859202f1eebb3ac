"""Forgetting and disclosing a data subject's personal data (APPI art. 33–35; docs/privacy.md).

Forget: a PersonalDataErased event (who asked is its actor, when its timestamp, why its reason;
nothing personal) on the subject's aggregate, then the subject's key destroyed, so every sealed
copy of its fields in the log and the snapshots reads as ERASED from then on; the log itself is
not changed, and its audit chain stays whole. What is kept outside the log is cleaned too: the
contract's snapshots are taken again, the mail timers lose the rendered messages and the
addresses, the Maildir its copies. Run again after a failure part-way, it finishes the job.

Disclose: everything held about the subject, decrypted, as one JSON document."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any
from uuid import UUID

from lifecycle.aggregates.accounts import Account
from lifecycle.aggregates.contract import Contract
from lifecycle.application.event_reads import delete_snapshots_of
from lifecycle.application.history import plain
from lifecycle.application.views import account_view, company_view, fault_contact_view, registration_view, site_view
from lifecycle.domain.accounts import CONFIRMATION_VALIDITY
from lifecycle.domain.errors import AlreadyForgotten, LiveCoverage, SubjectNotFound
from lifecycle.domain.privacy import PERSONAL_FIELDS, SubjectKind, is_erased
from lifecycle.ports import Mailer, TimerStore

if TYPE_CHECKING:
    from lifecycle.application.app import LifecycleApplication

ACCOUNT_FIELDS = PERSONAL_FIELDS[SubjectKind.ACCOUNT]
RETENTION_REASON = "retention: a provisional account never confirmed (LIFECYCLE_PROVISIONAL_ACCOUNT_RETENTION_DAYS)"


class Privacy:
    def __init__(
        self,
        app: LifecycleApplication,
        *,
        timers: TimerStore,
        mailer: Mailer,
        contracts_of: Callable[[UUID], list[UUID]] | None = None,  # an account's companies (the read models)
    ) -> None:
        self.app = app
        self.contracts_of = contracts_of
        self.timers = timers
        self.mailer = mailer

    # --- forget --------------------------------------------------------------------------

    def forget(self, kind: SubjectKind, subject_id: UUID, reason: str, *, force: bool = False) -> dict[str, Any]:
        if kind is SubjectKind.ACCOUNT:
            return self._forget_account(subject_id, reason, force)
        return self._forget_person(kind, subject_id, reason)

    def erase_unconfirmed(self, account_id: UUID) -> str:
        """Retention: a provisional account never confirmed (it has no companies) is forgotten
        when its retention timer is due; answers what was erased."""
        account = self._account(account_id)
        signed_up = account.confirmation_expires_at - CONFIRMATION_VALIDITY
        values = self._account_values(account)
        recorded = self._record(account_id, Account, lambda a: a.erase_personal_data(RETENTION_REASON),
                                already=account.is_erased)
        self._finish(SubjectKind.ACCOUNT, account_id, recorded, values, [account_id])
        return (f"erased the name, e-mail address and phone of provisional account {account_id} "
                f"(signed up {signed_up.date().isoformat()}, never confirmed)")

    def _forget_account(self, account_id: UUID, reason: str, force: bool) -> dict[str, Any]:
        account = self._account(account_id)
        contracts = [c for c in (self.app.load(i, Contract) for i in self._contracts_of(account_id)) if c is not None]
        if not account.is_erased:
            today = self.app.today()
            live = [r.serial for c in contracts for r in c.registrations.values() if r.period.end >= today]
            if live and not force:
                raise LiveCoverage(
                    f"Account {account_id} still has live coverage ({len(live)} unit(s), e.g. {live[0]}): "
                    "forgetting it would leave its contracts without a registrant; an admin may force it.",
                    units=len(live),
                )
        values = self._account_values(account)
        erased = self._record(account_id, Account, lambda a: a.erase_personal_data(reason), already=account.is_erased)
        return self._finish(SubjectKind.ACCOUNT, account_id, erased, values, [account_id, *(c.id for c in contracts)])

    def _forget_person(self, kind: SubjectKind, subject_id: UUID, reason: str) -> dict[str, Any]:
        contract = self._contract_of(kind, subject_id)
        holder = contract.site(subject_id) if kind is SubjectKind.SITE_PERSON else contract.fault_contact(subject_id)
        already = all(is_erased(getattr(holder, name)) or not getattr(holder, name) for name in PERSONAL_FIELDS[kind])
        values = self._person_values(contract, kind, subject_id)
        erased = self._record(contract.id, Contract, lambda c: c.erase_personal_data(kind, subject_id, reason),
                              already=already)
        # Snapshots taken before sealing hold the fields in clear: replaced by one taken now.
        if self.app.snapshots is not None:
            delete_snapshots_of(self.app.snapshots.recorder, contract.id)
            self.app.snapshot(contract.id)
        return self._finish(kind, subject_id, erased, values, [contract.id])

    def _record(self, aggregate_id: UUID, cls: type, erase: Callable[[Any], None], *, already: bool) -> bool:
        """Records PersonalDataErased; False when it was recorded before (a second run after a
        failure part-way, finishing the job); AlreadyForgotten when nothing is left to do."""
        if already:
            return False

        def decide():  # noqa: ANN202
            aggregate = self.app.load(aggregate_id, cls)
            erase(aggregate)
            return {}, [aggregate]

        self.app.execute(decide, None, serialize_on=aggregate_id)
        return True

    def _finish(
        self, kind: SubjectKind, subject_id: UUID, recorded: bool, values: set[str], aggregates: list[UUID]
    ) -> dict[str, Any]:
        now = self.app.clock.now()
        destroyed = self.app.personal_keys.destroy(str(subject_id), now)
        if not recorded and not destroyed:
            raise AlreadyForgotten(f"The personal data of {kind.value} {subject_id} is already erased.")
        self.app.forget_cached_personal_data()
        wanted = sorted(v for v in values if v and not is_erased(v))
        return {
            "kind": kind.value,
            "subject_id": subject_id,
            "erased_at": now,
            "key_destroyed": destroyed,
            "timers_cleaned": self.timers.forget_personal_data(aggregates, wanted),
            "mails_deleted": self.mailer.forget(wanted),
        }

    # --- disclose ------------------------------------------------------------------------

    def disclose(self, kind: SubjectKind, subject_id: UUID) -> dict[str, Any]:
        """Everything held about the subject, decrypted: its current data, and every event
        that mentions it (an account: its own events and those of its companies)."""
        if kind is SubjectKind.ACCOUNT:
            account = self._account(subject_id)
            contracts = [c for c in (self.app.load(i, Contract) for i in self._contracts_of(subject_id)) if c]
            today = self.app.today()
            return {
                "subject": {"kind": kind.value, "id": subject_id},
                "account": account_view(account),
                "companies": [
                    {
                        **company_view(c),
                        "sites": [site_view(c, s) for s in c.sites.values()],
                        "fault_contacts": [fault_contact_view(f) for f in c.fault_contacts.values()],
                        "registrations": [
                            registration_view(c, r, today, self.app.terms.renewal) for r in c.registrations.values()
                        ],
                    }
                    for c in contracts
                ],
                "events": self._events([subject_id, *(c.id for c in contracts)]),
            }
        contract = self._contract_of(kind, subject_id)
        if kind is SubjectKind.SITE_PERSON:
            held: dict[str, Any] = {"site": site_view(contract, contract.site(subject_id))}
        else:
            held = {"fault_contact": fault_contact_view(contract.fault_contact(subject_id))}
        return {
            "subject": {"kind": kind.value, "id": subject_id},
            "contract_number": contract.contract_number,
            **held,
            "events": self._events([contract.id], mentioning=subject_id),
        }

    def _events(self, aggregate_ids: Iterable[UUID], mentioning: UUID | None = None) -> list[dict[str, Any]]:
        found = []
        for aggregate_id in aggregate_ids:
            for e in self.app.events.get(aggregate_id):
                data = {k: v for k, v in vars(e).items() if k not in ("originator_id", "originator_version", "timestamp")}
                if mentioning is not None and not _mentions(data, mentioning):
                    continue
                found.append({
                    "aggregate_id": str(aggregate_id),
                    "type": type(e).__name__,
                    "version": e.originator_version,
                    "timestamp": e.timestamp.isoformat(),
                    "data": plain(data),
                })
        return found

    # --- what is held, where ---------------------------------------------------------------

    def _contracts_of(self, account_id: UUID) -> list[UUID]:
        assert self.contracts_of is not None, "an account's companies are found in the read models"
        return self.contracts_of(account_id)

    def _account(self, account_id: UUID) -> Account:
        account = self.app.load(account_id, Account)
        if account is None:
            raise SubjectNotFound(f"Account {account_id} is not registered.")
        return account

    def _contract_of(self, kind: SubjectKind, subject_id: UUID) -> Contract:
        contract = (
            self.app.companies.find_by_site(subject_id)
            if kind is SubjectKind.SITE_PERSON
            else self.app.companies.find_by_contact(subject_id)
        )
        if contract is None:
            raise SubjectNotFound(f"No {kind.value} {subject_id} is registered.")
        return contract

    def _account_values(self, account: Account) -> set[str]:
        """Every personal value the account's events hold (its addresses over time too)."""
        values = {getattr(account, name) for name in ACCOUNT_FIELDS}
        for e in self.app.events.get(account.id):
            for name in (*ACCOUNT_FIELDS, "new_email", "previous_email"):
                values.add(getattr(e, name, None))
            values.update(v for k, v in (getattr(e, "changes", None) or {}).items() if k in ACCOUNT_FIELDS)
        return {v for v in values if isinstance(v, str)}

    def _person_values(self, contract: Contract, kind: SubjectKind, subject_id: UUID) -> set[str]:
        fields = PERSONAL_FIELDS[kind]
        values: set[Any] = set()
        for e in self.app.events.get(contract.id):
            holder = getattr(e, "site" if kind is SubjectKind.SITE_PERSON else "contact", None)
            if holder is not None and getattr(holder, "site_id" if kind is SubjectKind.SITE_PERSON else "contact_id",
                                              None) == subject_id:
                values.update(getattr(holder, name) for name in fields)
            if getattr(e, "site_id" if kind is SubjectKind.SITE_PERSON else "contact_id", None) == subject_id:
                values.update(v for k, v in (getattr(e, "changes", None) or {}).items() if k in fields)
        return {v for v in values if isinstance(v, str)}


def _mentions(data: dict[str, Any], subject_id: UUID) -> bool:
    """Whether an event of the contract holds the subject's personal data: it added or
    changed the site or contact, mailed its address, or erased it."""
    holder = data.get("site") or data.get("contact")
    if holder is not None and subject_id in (getattr(holder, "site_id", None), getattr(holder, "contact_id", None)):
        return not hasattr(holder, "contact_id") or holder.contact_id == subject_id
    if "changes" in data and subject_id in (data.get("site_id"), data.get("contact_id")):
        return True
    return data.get("subject_id") == subject_id or subject_id in (data.get("recipient_subjects") or ())
