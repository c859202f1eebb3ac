"""Operating the mails: failed notifications and sending them again; and, as a test aid
that exists only when LIFECYCLE_ALLOW_CLOCK_OVERRIDE=true, firing the timers as of a
given instant."""

from __future__ import annotations

import logging
from typing import Literal
from uuid import UUID

from fastapi import APIRouter

from api.access import PolicyRoute
from api.deps import NotificationsDep, RuntimeDep
from api.problems import PROBLEM_RESPONSES
from lifecycle.domain.privacy import SubjectKind
from api.schemas import (
    ApiKeyCreate,
    ApiKeyCreated,
    ApiKeyList,
    ApiKeyPublic,
    NotificationList,
    NotificationPublic,
    PersonalDataDisclosure,
    PersonalDataForget,
    PersonalDataForgotten,
    TimersFired,
    TimersRun,
)

log = logging.getLogger(__name__)
router = APIRouter(route_class=PolicyRoute, prefix="/v1/admin", tags=["admin"], responses=PROBLEM_RESPONSES)
clock_override = APIRouter(route_class=PolicyRoute, prefix="/v1/admin", tags=["admin (test aid)"], responses=PROBLEM_RESPONSES)


@router.get("/notifications/failed", response_model=NotificationList)
def failed_notifications(notifications: NotificationsDep) -> dict:
    """Mails whose sends kept failing after the last retry (or were refused for good)."""
    return {"notifications": notifications.failed()}


@router.get("/notifications/{notification_id}", response_model=NotificationPublic)
def notification(notification_id: UUID, notifications: NotificationsDep) -> dict:
    """One notification's timer: when it is due, its state, attempts and recipients."""
    return notifications.notification(notification_id)


@router.post("/notifications/{notification_id}/resend", response_model=NotificationPublic, status_code=202)
def resend_notification(notification_id: UUID, notifications: NotificationsDep) -> dict:
    """Make a failed mail due again at once and hand it to the workers (409 unless failed)."""
    return notifications.resend(notification_id)


@router.post("/personal-data/forget", response_model=PersonalDataForgotten)
def forget_personal_data(body: PersonalDataForget, runtime: RuntimeDep) -> dict:
    """Forget a data subject (APPI art. 35; docs/privacy.md): its key destroyed and a
    PersonalDataErased event recorded; its fields read as "[erased]" everywhere from then on.
    An account with live coverage is refused (409) unless `force`."""
    return runtime.privacy.forget(SubjectKind(body.kind), body.subject_id, body.reason, force=body.force)


@router.get("/personal-data/{kind}/{subject_id}", response_model=PersonalDataDisclosure)
def disclose_personal_data(kind: Literal["account", "site-person", "fault-contact"], subject_id: UUID,
                           runtime: RuntimeDep) -> dict:
    """Everything held about a data subject, decrypted (APPI art. 33)."""
    return runtime.privacy.disclose(SubjectKind(kind), subject_id)


@router.get("/api-keys", response_model=ApiKeyList)
def api_keys(runtime: RuntimeDep) -> dict:
    """Every API key: name, roles, when it was made, last used and revoked (never the key)."""
    return {"keys": runtime.access.keys()}


@router.post("/api-keys", response_model=ApiKeyCreated, status_code=201)
def create_api_key(body: ApiKeyCreate, runtime: RuntimeDep) -> dict:
    """A new key for an internal service; `token` is shown this once (only its hash is kept)."""
    view, token = runtime.access.create_key(body.name, body.roles)
    return {**view, "token": token}


@router.delete("/api-keys/{key}", response_model=ApiKeyPublic)
def revoke_api_key(key: str, runtime: RuntimeDep) -> dict:
    """Revoke a key by its name or id: refused at once by every process."""
    return runtime.access.revoke_key(key)


@clock_override.post("/timers/run", response_model=TimersFired)
def run_timers(body: TimersRun, notifications: NotificationsDep) -> dict:
    """Test aid (LIFECYCLE_ALLOW_CLOCK_OVERRIDE=true only): fire every timer due by `as_of`
    and answer what was handed to the workers. The mails are then sent by the workers as
    usual; their recorded `sent_at` is the service's own clock."""
    log.warning("test aid (LIFECYCLE_ALLOW_CLOCK_OVERRIDE): firing timers as of %s", body.as_of.isoformat())
    return {"as_of": body.as_of, "fired": notifications.run_timers(body.as_of)}
