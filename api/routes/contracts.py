"""The auditor's history of a contract."""

from fastapi import APIRouter

from api.deps import AppDep
from api.problems import PROBLEM_RESPONSES
from api.schemas import ContractHistoryPublic

router = APIRouter(prefix="/v1/contracts", tags=["audit"], responses=PROBLEM_RESPONSES)


@router.get("/{contract_number}/history", response_model=ContractHistoryPublic)
def contract_history(contract_number: str, app: AppDep) -> dict:
    """Every event of the contract, in order, with its type, version, timestamp and data."""
    return app.contract_history(contract_number)
