"""The log that proves itself and the event feed over HTTP (issue 21): checkpoints as signed
notes and proofs for the `audit` role, verifiable with the verifier key alone; the CloudEvents
feed for the `events` role, filtered, paged by its Link, and long-polled; bad parameters are
problem+json 422, never 500."""

from __future__ import annotations

import base64
import threading
import time

from lifecycle import merkle
from lifecycle.checkpoints import Verifier
from tests.e2e.conftest import api_key, assert_problem, bearer
from tests.scenario import Flow


def signed_tree(flow: Flow) -> tuple[Verifier, str]:
    """The service's verifier key and a checkpoint signed now over the whole log."""
    runtime = flow.client.app.state.runtime
    runtime.read_models.wait_for(runtime.application.recorder.max_notification_id(), "audit_tree")
    runtime.audit.checkpoint()
    return Verifier.parse(runtime.audit.signer.verifier_key()), runtime.audit.latest().note


class TestCheckpointsAndProofs:
    def test_audit_latest_checkpoint_is_a_signed_note_and_proofs_verify_against_it(self, flow: Flow) -> None:
        flow.company()
        flow.ship()
        verifier, _ = signed_tree(flow)
        response = flow.client.get("/v1/audit/checkpoints/latest")
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/plain; charset=utf-8"
        checkpoint = verifier.verify_note(response.text)
        size = checkpoint.tree_size
        assert size >= 3
        same = flow.client.get(f"/v1/audit/checkpoints/{size}")
        assert same.text == response.text
        for index in (0, size // 2, size - 1):
            proof = flow.client.get("/v1/audit/proofs/inclusion", params={"index": index, "tree_size": size}).json()
            assert set(proof) == {"index", "tree_size", "leaf_hash", "hashes"}
            assert proof["leaf_hash"] == proof["leaf_hash"].lower()
            merkle.verify_inclusion(index, size, bytes.fromhex(proof["leaf_hash"]),
                                    [bytes.fromhex(h) for h in proof["hashes"]], checkpoint.root_hash)
        flow.company()
        _, later_note = signed_tree(flow)
        later = verifier.verify_note(later_note)
        proof = flow.client.get("/v1/audit/proofs/consistency", params={"first": size, "second": later.tree_size}).json()
        assert proof["first"] == size and proof["second"] == later.tree_size
        merkle.verify_consistency(size, later.tree_size, checkpoint.root_hash, later.root_hash,
                                  [bytes.fromhex(h) for h in proof["hashes"]])
        assert base64.b64decode(later_note.split("\n")[2]) == later.root_hash

    def test_audit_bad_parameters_are_422_and_unknown_checkpoints_404(self, flow: Flow) -> None:
        assert_problem(flow.client.get("/v1/audit/checkpoints/latest"), 404, "CHECKPOINT_NOT_FOUND")
        flow.ship()
        signed_tree(flow)
        size = flow.client.app.state.runtime.audit.tree.size()
        assert_problem(flow.client.get("/v1/audit/checkpoints/999999"), 404, "CHECKPOINT_NOT_FOUND")
        for params in ({"index": size, "tree_size": size}, {"index": 0, "tree_size": size + 1}):
            assert_problem(flow.client.get("/v1/audit/proofs/inclusion", params=params), 422, "TREE_SIZE_BEYOND_LOG")
        for params in ({"first": 2, "second": 1}, {"first": 1, "second": size + 5}):
            assert_problem(flow.client.get("/v1/audit/proofs/consistency", params=params), 422, "TREE_SIZE_BEYOND_LOG")
        for params in ({"index": -1, "tree_size": 1}, {"index": "x", "tree_size": 1}, {"tree_size": 1},
                       {"index": 0, "tree_size": 0}, {"index": 0, "tree_size": 2**70}):
            response = flow.client.get("/v1/audit/proofs/inclusion", params=params)
            assert response.status_code == 422, response.text
            assert response.headers["content-type"].startswith("application/problem+json")
        assert_problem(flow.client.get("/v1/audit/checkpoints/abc"), 404, "RESOURCE_NOT_FOUND")  # as every malformed path id

    def test_audit_routes_are_for_the_audit_role_and_the_feed_for_the_events_role(self, flow: Flow) -> None:
        client = flow.client
        audit = bearer(api_key(client, "audit"))
        events = bearer(api_key(client, "events"))
        assert_problem(client.get("/v1/events", headers=audit), 403, "FORBIDDEN")
        assert_problem(client.get("/v1/audit/checkpoints/latest", headers=events), 403, "FORBIDDEN")
        assert client.get("/v1/events", headers=events).status_code == 200


class TestEventFeed:
    def test_events_are_cloudevents_in_log_order_with_the_contract_number_as_subject(self, flow: Flow) -> None:
        company = flow.company()
        response = flow.client.get("/v1/events", params={"limit": 1000})
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/cloudevents-batch+json"
        events = response.json()
        positions = [e["position"] for e in events]
        assert positions == sorted(positions) and len(set(positions)) == len(positions)
        registered = [e for e in events if e["type"] == "lifecycle.Contract.CompanyRegistered"]
        assert registered and registered[-1]["subject"] == company["contract_number"]
        first = events[0]
        assert first["specversion"] == "1.0" and {"id", "source", "type", "time", "sequence", "data"} <= first.keys()
        assert isinstance(first["position"], int)
        assert all("password_hash" not in e["data"] and "secret_hash" not in e["data"] for e in events)

    def test_events_next_link_moves_past_filtered_out_events(self, flow: Flow) -> None:
        flow.company()
        flow.ship()
        flow.ship()
        head = flow.client.app.state.application.recorder.max_notification_id()
        response = flow.client.get("/v1/events", params={"types": "lifecycle.Contract.CompanyRegistered", "limit": 10})
        events = response.json()
        assert events and all(e["type"] == "lifecycle.Contract.CompanyRegistered" for e in events)
        link = response.headers["link"]
        assert link.endswith('>; rel="next"') and f"after={head}" in link
        after = flow.client.get(link[1:link.index(">")])
        assert after.status_code == 200 and after.json() == []

    def test_events_paged_by_limit_see_every_event_once(self, flow: Flow) -> None:
        for _ in range(3):
            flow.ship()
        everything = [e["position"] for e in flow.client.get("/v1/events", params={"limit": 1000}).json()]
        seen, after = [], 0
        while True:
            page = flow.client.get("/v1/events", params={"after": after, "limit": 2})
            batch = page.json()
            if not batch:
                break
            seen += [e["position"] for e in batch]
            after = batch[-1]["position"]
        assert seen == everything

    def test_events_bad_parameters_are_422(self, flow: Flow) -> None:
        assert_problem(flow.client.get("/v1/events", params={"types": "Nope"}), 422, "EVENT_TYPE_UNKNOWN")
        for params in ({"after": -1}, {"limit": 0}, {"limit": 1001}, {"wait": -1}, {"wait": 301}, {"after": "x"}):
            response = flow.client.get("/v1/events", params=params)
            assert response.status_code == 422, (params, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")

    def test_events_long_poll_answers_when_an_event_is_saved(self, flow: Flow) -> None:
        head = flow.client.app.state.application.recorder.max_notification_id() or 0
        timer = threading.Timer(0.5, flow.ship)
        started = time.monotonic()
        timer.start()
        response = flow.client.get("/v1/events", params={"after": head, "wait": 10})
        took = time.monotonic() - started
        timer.join()
        assert response.status_code == 200
        assert [e["position"] > head for e in response.json()] and response.json()
        assert 0.4 < took < 5

    def test_events_long_poll_gives_up_after_wait_with_an_empty_batch(self, flow: Flow) -> None:
        head = flow.client.app.state.application.recorder.max_notification_id() or 0
        started = time.monotonic()
        response = flow.client.get("/v1/events", params={"after": head, "wait": 0.3})
        assert response.json() == [] and 0.25 < time.monotonic() - started < 3
        assert f"after={head}" in response.headers["link"]


def test_audit_a_checkpoint_is_signed_by_itself_every_n_events(tmp_path, clock) -> None:
    """LIFECYCLE_AUDIT_CHECKPOINT_EVENTS: the running service signs once the tree has grown so much."""
    from fastapi.testclient import TestClient

    from api.app import create_app
    from tests.conftest import settings_for

    settings = settings_for("sqlite", tmp_path, audit_checkpoint_events=3, audit_checkpoint_minutes=0)
    with TestClient(create_app(settings, clock=clock)) as client:
        client.headers.update(bearer(api_key(client)))
        flow = Flow(client, client.app.state.application)
        for _ in range(4):
            flow.ship()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            response = client.get("/v1/audit/checkpoints/latest")
            if response.status_code == 200:
                break
            time.sleep(0.2)
        assert response.status_code == 200, response.text
        assert int(response.text.split("\n")[1]) >= 3
