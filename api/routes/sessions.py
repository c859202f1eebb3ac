"""Customers log in and out (SPEC 4, access): a session's bearer token for an active
account's login ID and password."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from api.access import CallerDep, PolicyRoute
from api.deps import RuntimeDep, client_address
from api.problems import PROBLEM_RESPONSES, problem_responses
from api.schemas import SessionCreate, SessionPublic

router = APIRouter(route_class=PolicyRoute, prefix="/v1/sessions", tags=["sessions"], responses=PROBLEM_RESPONSES)


@router.post(
    "",
    status_code=201,
    response_model=SessionPublic,
    responses=problem_responses(429),
)
def log_in(body: SessionCreate, request: Request, runtime: RuntimeDep) -> dict:
    """A bearer token for the account (idle expiry and absolute lifetime as answered).
    A wrong password and an unknown address get the same 401 INVALID_CREDENTIALS; a
    provisional account 409 ACCOUNT_NOT_ACTIVE once its password is right. Wrong passwords
    from one client address make it wait longer each time (429 with Retry-After); the
    account is never blocked for its owner at another address."""
    return runtime.doors.log_in(client_address(request), str(body.email), body.password)


@router.delete("/current", status_code=204)
def log_out(caller: CallerDep, runtime: RuntimeDep) -> Response:
    """Ends the session of the token this request carries."""
    runtime.access.logout(caller)
    return Response(status_code=204)
