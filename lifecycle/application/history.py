"""The auditor's view of a contract: every event, in order."""

from __future__ import annotations

from dataclasses import asdict, is_dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from lifecycle.application.contracts import ContractCommands

_ENVELOPE = ("originator_id", "originator_version", "timestamp", "originator_topic")


def plain(value: Any) -> Any:
    """Event data as JSON values."""
    if is_dataclass(value) and not isinstance(value, type):
        return plain(asdict(value))
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    return value


class ContractHistory(ContractCommands):
    def contract_history(self, contract_number: str) -> dict[str, Any]:
        contract = self.contract_by_number(contract_number)
        events = [
            {
                "type": type(domain_event).__name__,
                "version": domain_event.originator_version,
                "timestamp": domain_event.timestamp,
                "data": plain({k: v for k, v in domain_event.__dict__.items() if k not in _ENVELOPE}),
            }
            for domain_event in self.events.get(contract.id)
        ]
        return {"contract_number": contract.contract_number, "company_id": contract.id, "events": events}
