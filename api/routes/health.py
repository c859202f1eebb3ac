"""Health and metrics: each dependency's state and each projection's position against the
head of the log, at /v1/health (JSON), /v1/health/ready (readiness) and /metrics (Prometheus
text format)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from api.access import PolicyRoute, policy_for
from api.deps import RuntimeDep
from api.problems import problem_responses
from api.read_schemas import Health, HealthSummary
from lifecycle.health import health_report, is_up
from lifecycle.projections.read_models import ReadModels

# Open, with no input: only a body over the limit is refused (413) before the route.
router = APIRouter(route_class=PolicyRoute, tags=["operations"], responses=problem_responses(413))


@router.get("/v1/health", response_model=Health | HealthSummary, responses={503: {"model": Health | HealthSummary}})
def health(request: Request, runtime: RuntimeDep) -> Any:
    """Whether the service is up: `{"status": "up"}` (200) or `"unavailable"` (503) for anyone.
    An API key with the admin or dashboards role gets each dependency's state as this process
    sees it (event store, broker, SMTP relay, read models, timer scheduler): 200 while the event
    store answers (status `lagging` when a read model is far behind or failing, `degraded` when
    the broker or SMTP relay is away); 503 when the event store does not answer."""
    if not policy_for("GET", "/v1/health").shows_details_to(getattr(request.state, "caller", None)):
        up = is_up(runtime)
        return JSONResponse({"status": "up" if up else "unavailable", "ready": up}, 200 if up else 503)
    report = health_report(runtime)
    if report["status"] == "unavailable":
        return JSONResponse(jsonable_encoder(Health.model_validate(report)), 503)
    return Health.model_validate(report)


@router.get("/v1/health/ready", response_model=Health | HealthSummary,
            responses={503: {"model": Health | HealthSummary}})
def ready(request: Request, runtime: RuntimeDep) -> Any:
    """Readiness, for a load balancer or an orchestrator: 200 while this process can serve
    (the event store answers), 503 otherwise. The broker and the SMTP relay are not needed
    to serve: while they are away, commands work and mails wait in their timers. The details
    as for /v1/health."""
    if not policy_for("GET", "/v1/health/ready").shows_details_to(getattr(request.state, "caller", None)):
        up = is_up(runtime)
        return JSONResponse({"status": "up" if up else "unavailable", "ready": up}, 200 if up else 503)
    report = health_report(runtime)
    return JSONResponse(jsonable_encoder(Health.model_validate(report)), 200 if report["ready"] else 503)


class ProjectionCollector(Collector):
    """Reads the projections' positions at each scrape."""

    def __init__(self, read_models: ReadModels) -> None:
        self.read_models = read_models

    def collect(self) -> Iterator[Any]:
        head = GaugeMetricFamily("lifecycle_log_head_position", "Notification id of the last event in the log")
        position = GaugeMetricFamily(
            "lifecycle_projection_position", "Last log position applied to the read model", labels=["projection"]
        )
        lag = GaugeMetricFamily("lifecycle_projection_lag_events", "Log positions not yet applied", labels=["projection"])
        running = GaugeMetricFamily(
            "lifecycle_projection_running_here", "1 when this process runs the projection", labels=["projection"]
        )
        processed = CounterMetricFamily(
            "lifecycle_projection_events_processed", "Events applied by this process", labels=["projection"]
        )
        failing = GaugeMetricFamily(
            "lifecycle_projection_failing", "1 when the projection's last batch failed", labels=["projection"]
        )
        statuses = self.read_models.status()
        head.add_metric([], max((s["head"] for s in statuses), default=0))
        for s in statuses:
            position.add_metric([s["name"]], s["position"])
            lag.add_metric([s["name"]], s["lag"])
            running.add_metric([s["name"]], int(s["running_here"]))
            processed.add_metric([s["name"]], s["events_processed"])
            failing.add_metric([s["name"]], int(bool(s["last_error"])))
        yield from (head, position, lag, running, processed, failing)


def _registry(request: Request) -> CollectorRegistry:
    # One registry per app, so several apps in one process (tests) do not share metrics.
    state = request.app.state
    if getattr(state, "metrics_registry", None) is None:
        registry = CollectorRegistry(auto_describe=True)
        registry.register(ProjectionCollector(state.runtime.read_models))
        state.metrics_registry = registry
    return state.metrics_registry


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request) -> Response:
    return Response(generate_latest(_registry(request)), media_type=CONTENT_TYPE_LATEST)
