"""Postal-code lookup (住所検索, S-3)."""

from dataclasses import asdict

from fastapi import APIRouter

from api.access import PolicyRoute
from api.deps import AppDep
from api.fields import PostalCodeText
from api.problems import PROBLEM_RESPONSES
from api.schemas import PostalCodePublic

router = APIRouter(route_class=PolicyRoute, prefix="/v1/postal-codes", tags=["addresses"], responses=PROBLEM_RESPONSES)


@router.get("/{code}", response_model=PostalCodePublic)
def lookup(code: PostalCodeText, app: AppDep) -> dict:
    """Prefecture, city and town of an ordinary postal code; office codes answer E2."""
    return asdict(app.postal_codes.lookup(code))
