"""Recording the mails sent (M-4): one event per notification, on the contract or the
account it concerns. Recording twice is harmless: the aggregate ignores an id it has."""

from __future__ import annotations

from datetime import date, datetime
from uuid import UUID

from lifecycle.application.accounts import AccountCommands
from lifecycle.application.contracts import ContractCommands


class NotificationRecords(AccountCommands, ContractCommands):
    def record_service_in_notified(
        self,
        contract_id: UUID,
        notification_id: UUID,
        serial: str,
        recipients: list[str],
        message_id: str,
        sent_at: datetime,
    ) -> None:
        def decide():  # noqa: ANN202
            contract = self.company(contract_id)
            contract.record_service_in_notified(notification_id, serial, recipients, message_id, sent_at)
            return {}, [contract]

        self._execute(decide, None)

    def record_renewal_reminder_sent(
        self,
        contract_id: UUID,
        notification_id: UUID,
        serial: str,
        stage: str,
        period_end: date,
        recipients: list[str],
        message_id: str,
        sent_at: datetime,
    ) -> None:
        def decide():  # noqa: ANN202
            contract = self.company(contract_id)
            contract.record_renewal_reminder_sent(
                notification_id, serial, stage, period_end, recipients, message_id, sent_at
            )
            return {}, [contract]

        self._execute(decide, None)

    def record_confirmation_mail_sent(
        self, account_id: UUID, notification_id: UUID, recipients: list[str], message_id: str, sent_at: datetime
    ) -> None:
        def decide():  # noqa: ANN202
            account = self.account(account_id)
            account.record_confirmation_mail_sent(notification_id, recipients, message_id, sent_at)
            return {}, [account]

        self._execute(decide, None)
