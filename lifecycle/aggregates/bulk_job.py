"""A bulk-registration job (K-1): one uploaded sheet for one company, and what became of
each of its rows.

Its progress is these events. Each batch's `BatchRecorded` is saved in the same
transaction as the batch's registrations (BulkRows.register_rows), so after a worker
dies the job says exactly which rows were done: the next worker continues with the others
and registers nothing twice. The uploaded file itself is kept beside the events
(lifecycle/adapters/bulk_uploads.py), not in them: the audit export stays small.
"""

from __future__ import annotations

from collections import Counter
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from lifecycle.aggregates.audited import AuditedCreated, AuditedEvent

# The holder of a job's lease while its message waits in the broker (lifecycle/adapters/bulk_uploads.py).
QUEUED = "queued"


class BulkJob(Aggregate):
    class Submitted(AuditedCreated):
        company_id: UUID
        file_name: str
        dry_run: bool
        total_rows: int  # every row of the sheet, empty and refused ones included
        settled: list[dict[str, Any]]  # the rows reading alone decided (empty, problems, repeats)
        submitted_by: dict[str, Any] | None  # the uploader: the job's registrations record it as their actor

    @event(Submitted)
    def __init__(
        self,
        company_id: UUID,
        file_name: str,
        dry_run: bool,
        total_rows: int,
        settled: list[dict[str, Any]],
        submitted_by: dict[str, Any] | None,
    ) -> None:
        self.company_id = company_id
        self.file_name = file_name
        self.dry_run = dry_run
        self.total_rows = total_rows
        self.results: dict[int, dict[str, Any]] = {r["row"]: r for r in settled}
        # Rows per status, kept as results arrive: a progress answer need not count them.
        self.counts: Counter[str] = Counter(r["status"] for r in settled)
        self.seconds = 0.0  # spent on batches, for the estimate of the time left
        self.batched_rows = 0
        self.finished = False
        self.submitted_by = submitted_by

    class BatchRecorded(AuditedEvent):
        results: list[dict[str, Any]]
        seconds: float

    def record_batch(self, results: list[dict[str, Any]], seconds: float) -> None:
        """Rows already recorded (by another worker that won a race) are left out."""
        new = [r for r in results if r["row"] not in self.results]
        if new:
            self._batch_recorded(new, seconds)

    @event(BatchRecorded)
    def _batch_recorded(self, results: list[dict[str, Any]], seconds: float) -> None:
        for result in results:
            self.results[result["row"]] = result
            self.counts[result["status"]] += 1
        self.seconds += seconds
        self.batched_rows += len(results)

    class Completed(AuditedEvent):
        pass

    def complete(self) -> None:
        if not self.finished:
            self._completed()

    @event(Completed)
    def _completed(self) -> None:
        self.finished = True

    def is_done(self, row: int) -> bool:
        return row in self.results

    def __deepcopy__(self, memo: dict[int, Any]) -> BulkJob:
        """The copy a load gets of a cached job (LifecycleApplication.load): its results are
        only ever added, never changed, so copying the containers is a deep copy, without
        copying each of a large sheet's result dicts on every progress answer."""
        copy = object.__new__(type(self))
        copy.__dict__.update(
            (name, value.copy() if isinstance(value, dict | list) else value) for name, value in self.__dict__.items()
        )
        return copy
