"""Sign-up, confirmation and profile (A-1…A-3)."""

from uuid import UUID

from fastapi import APIRouter

from api.deps import AppDep, IdempotencyDep
from api.problems import PROBLEM_RESPONSES
from api.schemas import AccountCreate, AccountPublic, AccountUpdate, AccountVerify

router = APIRouter(prefix="/v1/accounts", tags=["accounts"], responses=PROBLEM_RESPONSES)


@router.post("", status_code=201, response_model=AccountPublic)
def sign_up(body: AccountCreate, app: AppDep, idempotency: IdempotencyDep) -> dict:
    """Create a provisional account; a confirmation URL valid 24 hours is mailed."""
    return app.sign_up(
        str(body.email), body.password, body.name, body.company_name, body.phone, body.agree_terms, idempotency
    )


@router.post("/verify", response_model=AccountPublic)
def verify(body: AccountVerify, app: AppDep, idempotency: IdempotencyDep) -> dict:
    """Activate the account of a confirmation token; E1 when there is none waiting."""
    return app.verify_account(body.token, idempotency)


@router.get("/{account_id}", response_model=AccountPublic)
def get_account(account_id: UUID, app: AppDep) -> dict:
    return app.get_account(account_id)


@router.patch("/{account_id}", response_model=AccountPublic)
def change_profile(account_id: UUID, body: AccountUpdate, app: AppDep, idempotency: IdempotencyDep) -> dict:
    return app.change_profile(account_id, body.model_dump(exclude_unset=True, exclude_none=True), idempotency)
