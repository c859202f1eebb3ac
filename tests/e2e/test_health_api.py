"""Lag and health: each projection's position against the head of the log, as JSON and as
Prometheus metrics."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.scenario import Flow


class TestHealth:
    def test_health_shows_each_projection_caught_up_with_the_log(self, flow: Flow) -> None:
        flow.ready_site()
        head = flow.position
        flow.client.get("/v1/dashboards/expiry")  # waits (min_position) until the models reach it
        health = flow.client.get("/v1/health").json()
        assert health["status"] == "ok"
        assert health["log_head"] >= head
        by_name = {p["name"]: p for p in health["projections"]}
        assert set(by_name) == {"parties", "coverage", "service_in", "audit_tree"}
        assert by_name["coverage"]["position"] >= head and by_name["coverage"]["running_here"] is True

    def test_metrics_give_positions_and_lag_in_prometheus_format(self, flow: Flow) -> None:
        flow.ready_site()
        flow.client.get("/v1/dashboards/service-in")
        response = flow.client.get("/metrics")
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
        samples = {
            (s.name, s.labels.get("projection")): s.value
            for family in text_string_to_metric_families(response.text)
            for s in family.samples
        }
        head = samples[("lifecycle_log_head_position", None)]
        assert head >= flow.position
        assert samples[("lifecycle_projection_position", "service_in")] + samples[
            ("lifecycle_projection_lag_events", "service_in")
        ] == head
        assert ("lifecycle_projection_events_processed_total", "parties") in samples

    def test_health_names_each_dependency_and_readiness_answers_200_while_the_store_answers(
        self, flow: Flow
    ) -> None:
        """The embedded default: the store answers, no broker, mails to the Maildir, the
        scheduler runs in this process."""
        flow.ready_site()
        health = flow.client.get("/v1/health").json()
        dependencies = health["dependencies"]
        assert dependencies["store"]["status"] == "up" and dependencies["store"]["detail"]
        assert dependencies["broker"]["status"] == "not_configured"
        assert dependencies["smtp"]["status"] == "not_configured" and "maildir" in dependencies["smtp"]["detail"]
        assert dependencies["read_models"]["status"] == "up" and dependencies["read_models"]["failing"] == []
        assert dependencies["scheduler"]["runs_here"] is True
        ready = flow.client.get("/v1/health/ready")
        assert ready.status_code == 200 and ready.json()["ready"] is True
