"""A-3 and A-4 on the Account: the requests make their mails due at once, each mail is
recorded once, a used or expired request cannot be applied."""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import uuid4

import pytest

from lifecycle.aggregates.accounts import Account
from lifecycle.domain.dates import TOKYO
from lifecycle.domain.errors import AccountNotActive, EmailChangeNotFound, PasswordResetNotFound
from lifecycle.domain.notifications import (
    NotificationKind,
    NotificationSchedule,
    Schedule,
    Settle,
    email_change_id,
    password_reset_id,
)
from lifecycle.domain.periods import RenewalPolicy
from lifecycle.policies.mail_timers import NotificationPolicies

NOW = datetime(2026, 11, 24, 10, tzinfo=TOKYO)
DAY = timedelta(hours=24)


def active_account() -> Account:
    account = Account("a@x.jp", "hash-1", "山田", "会社", "03-1234-5678", NOW + DAY)
    account.activate(NOW)
    return account


def policies() -> NotificationPolicies:
    return NotificationPolicies(NotificationSchedule(renewal=RenewalPolicy()))


def test_A3_an_email_change_request_makes_its_confirmation_mail_due_at_once() -> None:
    account = active_account()
    account.request_email_change("b@x.jp", NOW, DAY)
    [requested] = [e for e in account.collect_events() if isinstance(e, Account.EmailChangeRequested)]
    [change] = policies().changes_for(requested)
    assert isinstance(change, Schedule)
    assert change.timer.kind is NotificationKind.EMAIL_CHANGE_CONFIRMATION
    assert change.timer.due_at == NOW and change.timer.aggregate_id == account.id
    assert change.timer.notification_id == email_change_id(account.id, NOW)


def test_A3_the_change_applies_once_and_asks_for_a_new_password() -> None:
    account = active_account()
    account.request_email_change("b@x.jp", NOW, DAY)
    account.confirm_email_change(NOW + timedelta(hours=1))
    assert account.email == "b@x.jp" and account.password_reset_required and account.email_change() is None
    with pytest.raises(EmailChangeNotFound):
        account.confirm_email_change(NOW + timedelta(hours=1))


def test_A3_an_expired_request_and_a_provisional_account_are_refused() -> None:
    account = active_account()
    account.request_email_change("b@x.jp", NOW, DAY)
    with pytest.raises(EmailChangeNotFound):
        account.confirm_email_change(NOW + DAY + timedelta(seconds=1))
    provisional = Account("p@x.jp", "h", "山田", "会社", "03-1234-5678", NOW + DAY)
    with pytest.raises(AccountNotActive):
        provisional.request_email_change("q@x.jp", NOW, DAY)


def test_A4_a_reset_request_makes_its_mail_due_and_the_reset_works_once() -> None:
    account = active_account()
    account.request_password_reset(NOW, DAY)
    [requested] = [e for e in account.collect_events() if isinstance(e, Account.PasswordResetRequested)]
    [change] = policies().changes_for(requested)
    assert isinstance(change, Schedule) and change.timer.kind is NotificationKind.PASSWORD_RESET
    assert change.timer.notification_id == password_reset_id(account.id, NOW)
    account.reset_password("hash-2", NOW)
    assert account.password_hash == "hash-2" and account.password_reset() is None
    with pytest.raises(PasswordResetNotFound):
        account.reset_password("hash-3", NOW)


def test_M4_the_A3_and_A4_mails_are_recorded_once_and_settle_their_timers() -> None:
    account = active_account()
    change_mail, reset_mail = uuid4(), uuid4()
    for _ in range(2):
        account.record_email_change_mail_sent(change_mail, ["b@x.jp"], "<c@x>", NOW)
        account.record_password_reset_mail_sent(reset_mail, ["a@x.jp"], "<r@x>", NOW)
    events = account.collect_events()
    sent = [e for e in events if isinstance(e, (Account.EmailChangeMailSent, Account.PasswordResetMailSent))]
    assert len(sent) == 2
    assert [policies().changes_for(e) for e in sent] == [[Settle(change_mail)], [Settle(reset_mail)]]
