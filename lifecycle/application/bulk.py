"""Bulk registration from an Excel sheet (K-1): submitting a sheet, running its job, and
answering its progress and results.

What each promise rests on:
- Nothing half-imported: `read_sheet` refuses a bad file with one error before anything is
  stored.
- Valid rows are not lost because of invalid ones: each row is decided on its own, as its
  single command (BulkRows.register_rows), and a refusal stays on its row.
- Nothing twice: each registered row claims an Index named by the company and the row's
  content (`bulk_row_key`) in the same transaction as its registration, so the same row
  uploaded again, in this sheet or any later one, is answered ALREADY_REGISTERED.
- A job survives its worker: the file (and its rows as read) is kept beside the events
  (BulkUploadStore), and each batch's results are a BulkJob event saved with the batch's
  registrations. A worker that starts on a job (again) skips the rows the job has recorded;
  a batch that died with its worker was saved not at all, and is done again.
- The same events as single registrations: rows are decided by the single commands' own
  decisions; their events name the uploader as actor and `bulk:<job id>` as request id.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any
from uuid import UUID, uuid4

from eventsourcing.domain import Aggregate
from eventsourcing.persistence import IntegrityError

from lifecycle.aggregates.bulk_job import QUEUED, BulkJob
from lifecycle.application.commands import Answer
from lifecycle.bulk.sheets import (
    RowResult,
    RowStatus,
    SheetRow,
    read_sheet,
    results_from_reading,
    rows_from_json,
    rows_to_json,
    write_results,
)
from lifecycle.domain.access import Actor, acting_as, current_actor
from lifecycle.domain.errors import BulkJobNotFound
from lifecycle.ports import BulkUploads

if TYPE_CHECKING:
    from lifecycle.application.app import LifecycleApplication

log = logging.getLogger(__name__)

SYSTEM_BULK = Actor("system", "bulk", "bulk registration")


def _now() -> datetime:
    # Leases are about processes, not business dates: the wall clock, even when tests fix the app's.
    return datetime.now(timezone.utc)


def result_dict(result: RowResult) -> dict[str, Any]:
    return {**asdict(result), "status": result.status.value}


def _result(data: dict[str, Any]) -> RowResult:
    return RowResult(data["row"], RowStatus(data["status"]), data.get("code"), data.get("message_ja"), data.get("detail"))


class BulkImports:
    """Submits sheets, runs their jobs in batches, answers their progress and results."""

    def __init__(
        self,
        app: LifecycleApplication,
        uploads: BulkUploads,
        *,
        max_rows: int,
        max_bytes: int,
        batch_rows: int,
        sync_rows: int,
        lease_seconds: float,
        queue_wait_seconds: float = 300.0,
        dispatch: Callable[[UUID], None] | None = None,
    ) -> None:
        self.app = app
        self.uploads = uploads
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self.batch_rows = max(1, batch_rows)
        self.sync_rows = sync_rows
        self.lease = timedelta(seconds=lease_seconds)
        self.queue_wait = timedelta(seconds=queue_wait_seconds)
        # Hands a job id to a worker (the broker, or the in-process worker); set by bootstrap.
        self.dispatch = dispatch

    # --- submitting -----------------------------------------------------------------------

    def submit(
        self,
        company_id: UUID,
        content: bytes,
        file_name: str = "",
        *,
        dry_run: bool = False,
        progress: Callable[[int, int], None] | None = None,
        run_here: bool | None = None,
    ) -> tuple[Answer, bool]:
        """(answer, finished). A sheet with at most `sync_rows` rows to decide (or any
        sheet with `run_here`) is done before answering; a larger one is handed to a worker."""
        self.app.companies.company(company_id)  # 404 before reading anything
        parsed = read_sheet(content, max_rows=self.max_rows, max_bytes=self.max_bytes)
        settled = results_from_reading(parsed)
        pending = [row for row in parsed.rows if row.row not in settled]
        here = run_here if run_here is not None else len(pending) <= self.sync_rows
        if dry_run and here:  # validated only: nothing stored, not even a job
            results = dict(settled)
            for batch in _batches(pending, self.batch_rows):
                for result in self.app.bulk_rows.register_rows(company_id, batch, dry_run=True):
                    results[result.row] = result
                if progress:
                    progress(len(results), len(parsed.rows))
            rows = [results[number] for number in sorted(results)]
            counts = Counter(result.status.value for result in rows)
            answer = _summary(None, company_id, file_name, True, len(parsed.rows), counts, len(rows), finished=True)
            return {**answer, "rows": [_row_view(r) for r in rows]}, True
        job = BulkJob(
            company_id, file_name, dry_run, len(parsed.rows), [result_dict(r) for r in settled.values()],
            current_actor(),
        )
        # Before the job: a job never lacks its file. Its rows as read go with it, so the worker
        # does not read the sheet a second time (seconds of CPU for 10,000 rows).
        self.uploads.put(job.id, content, _now(), rows_to_json(pending))
        self.app.save(job)
        if here:
            self.run(job.id, progress=progress)
            return self.job(job.id), True
        if self.dispatch is not None and self.uploads.requeue(job.id, _now(), self.queue_wait):
            self._dispatch(job.id)
        return self.job(job.id), False

    def _dispatch(self, job_id: UUID) -> None:
        assert self.dispatch is not None
        try:
            self.dispatch(job_id)
        except Exception:
            # Not queued after all: the next sweep hands it out, rather than after the queue's wait.
            self.uploads.release(job_id, QUEUED, finished=False)
            raise

    # --- running a job --------------------------------------------------------------------

    def run(self, job_id: UUID, progress: Callable[[int, int], None] | None = None) -> bool:
        """Works on the job until it is finished (True), or another worker holds it (False).
        Idempotent: a finished job, or a job run again after its worker died, registers
        nothing twice."""
        holder = f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}:{uuid4().hex[:8]}"
        if not self.uploads.claim(job_id, holder, _now(), self.lease):
            return False
        finished = False
        try:
            finished = self._run(job_id, holder, progress)
        finally:
            self.uploads.release(job_id, holder, finished=finished)
        return finished

    def _run(self, job_id: UUID, holder: str, progress: Callable[[int, int], None] | None) -> bool:
        job = self.app.load(job_id, BulkJob)
        content = self.uploads.content(job_id)
        if job is None or content is None:  # a file whose job was never saved
            log.warning("bulk job %s: no job or no file; dropped", job_id)
            return True
        if not job.finished:
            stored = self.uploads.rows(job_id)
            if stored is not None:
                rows: Sequence[SheetRow] = rows_from_json(stored)
            else:  # a job submitted before its rows were kept with it
                # The same limits that accepted it: a setting lowered since does not strand the job.
                rows = read_sheet(content, max_rows=max(self.max_rows, job.total_rows),
                                  max_bytes=max(self.max_bytes, len(content))).rows
            pending = [row for row in rows if not job.is_done(row.row)]
            actor = Actor(**job.submitted_by) if job.submitted_by else SYSTEM_BULK
            company = None if job.dry_run or not pending else self.app.companies.company(job.company_id)
            with acting_as(actor, request_id=f"bulk:{job_id}"):
                for batch in _batches(pending, self.batch_rows):
                    if not self.uploads.claim(job_id, holder, _now(), self.lease):
                        return False  # taken over after our lease ran out: the other worker goes on
                    self._run_batch(job, batch)
                    if progress:
                        progress(len(self._load(job_id).results), job.total_rows)
                if company is not None:
                    # The batches deferred the contract's snapshots (each holds the whole contract:
                    # taken at every snapshot point a batch reached, they were a tenth of the
                    # worker's CPU); one, of the contract as the job left it, instead.
                    self.app.snapshot(job.company_id, unless_at=company.version)
                done = self._load(job_id)
                done.complete()
                try:
                    self.app.save(done)
                except IntegrityError:  # another worker finished it at the same moment
                    pass
        self.uploads.finish(job_id)
        return True

    def _run_batch(self, job: BulkJob, batch: Sequence[SheetRow]) -> None:
        job_id = job.id

        def record(results: list[RowResult], seconds: float) -> list[Aggregate]:
            current = self._load(job_id)  # fresh each attempt: saved with this batch or dropped with it
            current.record_batch([result_dict(r) for r in results], seconds)
            return [current]

        bulk_rows = self.app.bulk_rows
        if job.dry_run:
            started = time.monotonic()
            results = bulk_rows.register_rows(job.company_id, batch, job_id=job_id, dry_run=True)
            self.app.save(*record(results, time.monotonic() - started))
        else:
            bulk_rows.register_rows(job.company_id, batch, job_id=job_id, record=record, take_snapshots=False)

    def resume_stalled(self) -> list[UUID]:
        """The jobs whose worker died (their lease ran out), or that waited in the queue
        longer than it should take (their message lost), handed to a worker again. A job
        that waits in the queue within that time is not: handed out at every sweep, by every
        process's sweeper, it was taken by one worker and then by each copy's worker in turn
        (each finding it held or finished, but a worker thread spent per copy). Of several
        sweepers finding the same stalled job, one hands it out (BulkUploads.requeue)."""
        stalled = self.uploads.stalled(_now(), self.lease)
        if self.dispatch is None:
            return stalled
        handed = []
        for job_id in stalled:
            if self.uploads.requeue(job_id, _now(), self.queue_wait, stalled_after=self.lease):
                self._dispatch(job_id)
                handed.append(job_id)
        return handed

    # --- answers --------------------------------------------------------------------------

    def _load(self, job_id: UUID) -> BulkJob:
        job = self.app.load(job_id, BulkJob)
        if job is None:
            raise BulkJobNotFound(f"Bulk registration job {job_id} is not known.")
        return job

    def find(self, job_id: UUID) -> BulkJob | None:
        return self.app.load(job_id, BulkJob)

    def job(self, job_id: UUID, *, with_rows: bool = True) -> Answer:
        job = self._load(job_id)
        # The counts are kept by the job: a progress answer costs the same for any sheet.
        answer = _summary(job, job.company_id, job.file_name, job.dry_run, job.total_rows, job.counts,
                          len(job.results), finished=job.finished)
        if with_rows:
            answer["rows"] = [_row_view(_result(job.results[number])) for number in sorted(job.results)]
        return answer

    def result_sheet(self, job_id: UUID) -> tuple[str, bytes]:
        """(file name, the uploaded sheet with each row's status, code and message)."""
        job = self._load(job_id)
        content = self.uploads.content(job_id)
        if content is None:
            raise BulkJobNotFound(f"The sheet of bulk registration job {job_id} is not kept.")
        results = [_result(job.results[number]) for number in sorted(job.results)]
        stem = (job.file_name.rsplit(".", 1)[0] if job.file_name else "") or "bulk"
        return f"{stem}.result.xlsx", write_results(content, results, max_bytes=max(self.max_bytes, len(content)))


def _batches(rows: Sequence[SheetRow], size: int) -> list[Sequence[SheetRow]]:
    return [rows[start:start + size] for start in range(0, len(rows), size)]


def _row_view(result: RowResult) -> dict[str, Any]:
    return {"row": result.row, "status": result.status.value, "code": result.code,
            "message_ja": result.message_ja, "detail": result.detail}


def _summary(
    job: BulkJob | None, company_id: UUID, file_name: str, dry_run: bool, total: int,
    counts: Mapping[str, int], done: int, *, finished: bool,
) -> Answer:
    """Progress without the rows: `counts` is rows per RowStatus value, `done` their sum."""
    by_status = {status: counts.get(status.value, 0) for status in RowStatus}
    left = max(0, total - done)
    if finished:
        eta: float | None = 0.0
    elif job is not None and job.seconds > 0 and job.batched_rows:
        eta = round(left * job.seconds / job.batched_rows, 1)
    else:
        eta = None  # no batch done yet: nothing to estimate from
    return {
        "job_id": str(job.id) if job is not None else None,
        "company_id": str(company_id),
        "file_name": file_name,
        "dry_run": dry_run,
        "status": "done" if finished else ("running" if job is not None and job.batched_rows else "queued"),
        "total_rows": total,
        "rows_done": done,
        "registered": by_status[RowStatus.REGISTERED] + by_status[RowStatus.RENEWED],
        "already_registered": by_status[RowStatus.ALREADY_REGISTERED],
        "refused": by_status[RowStatus.REFUSED] + by_status[RowStatus.DUPLICATE_IN_SHEET],
        "empty": by_status[RowStatus.EMPTY],
        "percent": 100.0 if finished or not total else round(100.0 * done / total, 1),
        "estimated_seconds_left": eta,
        "submitted_at": job.created_on.isoformat() if job is not None else None,
        "updated_at": job.modified_on.isoformat() if job is not None else None,
    }
