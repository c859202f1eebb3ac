"""The event feed for internal services (role `events`): the log in order as CloudEvents 1.0,
with a long poll; see docs/audit.md for a consumer."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from api.access import PolicyRoute
from api.deps import RuntimeDep
from api.fields import MAX_LIST_ITEMS, MAX_POSITION, EventTypeName
from api.problems import PROBLEM_RESPONSES
from lifecycle.feed import EventFeed, json_batch

router = APIRouter(route_class=PolicyRoute, prefix="/v1/events", tags=["events"], responses=PROBLEM_RESPONSES)
BATCH = "application/cloudevents-batch+json"


async def get_feed(runtime: RuntimeDep) -> EventFeed:
    return runtime.feed


@router.get(
    "",
    response_class=Response,
    responses={200: {"content": {BATCH: {}}, "description": "A CloudEvents 1.0 JSON batch; `Link: <…>; rel=\"next\"`"}},
)
def events(
    request: Request,
    feed: Annotated[EventFeed, Depends(get_feed)],
    after: Annotated[int, Query(ge=0, le=MAX_POSITION, description="The `position` of the last event handled")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    types: Annotated[
        list[EventTypeName] | None,
        Query(max_length=MAX_LIST_ITEMS, description="Only these types (repeat, or separate with commas)"),
    ] = None,
    wait: Annotated[float, Query(ge=0, le=300, description="Seconds to wait for an event when none is there yet")] = 0,
) -> Response:
    """Events after position `after`, in log order; follow the `Link` rel="next" (it moves past
    events the `types` filter leaves out)."""
    wanted = [t.strip() for text in types or [] for t in text.split(",") if t.strip()]
    page = feed.read(after, limit, wanted, wait)
    following = request.url.include_query_params(after=page.next)
    return Response(json_batch(page.events), media_type=BATCH, headers={"Link": f'<{following}>; rel="next"'})
