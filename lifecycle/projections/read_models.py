"""All read models of one process: their views, their runners, read-your-writes waits,
health, and rebuilds."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from eventsourcing.application import Application
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore

from lifecycle.domain.errors import PositionBeyondLog, ReadModelBehind, ReadModelStopped, UnknownProjection
from lifecycle.ports import LeadershipFor, one_process
from lifecycle.progress import Progress, no_progress
from lifecycle.projections.audit_tree import AuditTree
from lifecycle.projections.coverage import Coverage
from lifecycle.projections.engine.projection import ReadModelProjection
from lifecycle.projections.engine.runner import (
    EventNotApplied,
    PostgresWakeups,
    ProjectionRunner,
    catch_up_together,
)
from lifecycle.projections.engine.views import REBUILD_SUFFIX, ReadModelView, RebuildBehind, build_view
from lifecycle.projections.parties import Parties
from lifecycle.projections.service_in import ServiceIn

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class ReadAt:
    """How fresh a read must be. By default it sees every write committed before it arrived
    (the log's head at that moment), whichever process made it; `eventual` reads what the
    read models show now, or at least `min_position` when the client names one."""

    min_position: int | None = None
    eventual: bool = False


STRONG = ReadAt()

PROJECTIONS: dict[str, type[ReadModelProjection]] = {p.name: p for p in (Parties, Coverage, ServiceIn, AuditTree)}


class ReadModels:
    """The views of every projection, and (when `run`) their runners as background services."""

    def __init__(
        self,
        app: Application[Any],
        *,
        projections: Iterable[type[ReadModelProjection]] = PROJECTIONS.values(),
        batch_size: int = 1000,
        poll_interval: float = 1.0,
        gather_seconds: float = 0.05,
        wait_timeout: float = 5.0,
        leader_timeout: float = 30.0,
        max_waiters: int = 16,
        leadership: LeadershipFor = one_process,
    ) -> None:
        self.app = app
        self.wait_timeout = wait_timeout
        # Reads run on the server's threads: a wait holds one, so only so many may wait.
        self._waiters = threading.BoundedSemaphore(max_waiters)
        self.datastore = app.factory.datastore  # type: ignore[attr-defined]
        self.runners: dict[str, ProjectionRunner] = {}
        for cls in projections:
            view = build_view(self.datastore, cls.name, cls.tables, topics=cls.topics, revision=cls.revision)
            self.runners[cls.name] = ProjectionRunner(
                app,
                cls(view),
                leadership=leadership("projection", cls.name, timeout_seconds=leader_timeout, turn_seconds=poll_interval),
                batch_size=batch_size,
                poll_interval=poll_interval,
                gather_seconds=gather_seconds if cls.gather_seconds is None else cls.gather_seconds,
            )
        # Others of this process to tell when the log grows (the event feed's long polls): the
        # read models' one LISTEN serves them too.
        self.log_listeners: list[Callable[[], None]] = []
        self._wakeups: PostgresWakeups | None = None
        if isinstance(self.datastore, PostgresDatastore) and isinstance(app.recorder, PostgresApplicationRecorder):
            self._wakeups = PostgresWakeups(self.datastore, app.recorder.channel_name, self.nudge)

    @property
    def listens(self) -> bool:
        """Whether saves of other processes reach `nudge` (PostgreSQL's LISTEN)."""
        return self._wakeups is not None

    def view(self, name: str) -> ReadModelView:
        return self.runners[name].view

    # --- as a background service -----------------------------------------------------

    def start(self, catch_up_seconds: float = 10.0) -> None:
        # Bring the read models up to date before serving (bounded: a long log finishes
        # catching up in the background), so a restarted service reads what it wrote.
        deadline = time.monotonic() + catch_up_seconds
        leading = [runner for runner in self.runners.values() if runner.leadership.acquire()]
        try:
            self._catch_up_together(leading, deadline=deadline)
        except Exception:
            log.exception("catching up the read models together at start failed; each goes on alone")
        for runner in leading:
            runner.is_leader = True
            try:
                runner.catch_up(deadline=deadline)
            except EventNotApplied as stopped:
                runner.stop_at(stopped)
            except Exception:
                log.exception("catching up %s at start failed; its runner retries", runner.name)
        for runner in self.runners.values():
            runner.start()
        self.app.save_listeners.append(self.nudge)  # type: ignore[attr-defined]
        if self._wakeups is not None:
            self._wakeups.start()
        availability = getattr(self.datastore, "availability", None)  # PostgreSQL: see adapters/event_store.py
        if availability is not None:
            availability.recovery_listeners.append(self._store_recovered)

    def _store_recovered(self) -> None:
        for runner in self.runners.values():
            runner.store_recovered()

    def stop(self) -> None:
        if self.nudge in self.app.save_listeners:  # type: ignore[attr-defined]
            self.app.save_listeners.remove(self.nudge)  # type: ignore[attr-defined]
        if self._wakeups is not None:
            self._wakeups.stop()
        # All at once: a runner busy with a batch does not hold up the others' stopping.
        for runner in self.runners.values():
            runner.request_stop()
        deadline = time.monotonic() + 30.0
        for runner in self.runners.values():
            runner.join(deadline - time.monotonic())

    def nudge(self) -> None:
        for runner in self.runners.values():
            runner.nudge()
        for listener in self.log_listeners:
            listener()

    def catch_up(self) -> None:
        """Brings every read model up to the head of the log (tools, tests): together, then
        each alone for what is left (none, unless one met an event it cannot apply)."""
        self._catch_up_together(list(self.runners.values()))
        for runner in self.runners.values():
            runner.catch_up()

    def _catch_up_together(self, runners: Sequence[ProjectionRunner], **options: Any) -> None:
        """The read models of domain events read the log together (each event decoded once);
        a projection of the stored events (the audit tree, which hashes every event and
        decodes none) reads it in a thread of its own beside them, as that overlaps better."""
        decoded = [r for r in runners if not r.projection.reads_stored_events]
        # One progress report: the group's, or (the audit tree alone) the audit tree's.
        quiet = {**options, "progress": no_progress} if decoded else options
        beside = [
            threading.Thread(target=catch_up_together, args=(self.app, [runner]), kwargs=quiet,
                             name=f"catch-up-{runner.name}")
            for runner in runners if runner.projection.reads_stored_events
        ]
        for thread in beside:
            thread.start()
        try:
            catch_up_together(self.app, decoded, **options)
        finally:
            for thread in beside:
                thread.join()

    # --- read-your-writes ------------------------------------------------------------

    def head(self) -> int:
        return self.app.recorder.max_notification_id() or 0

    def wait_to_read(self, read_at: ReadAt, *names: str) -> None:
        """Returns once the named read models show what `read_at` asks for (bounded)."""
        position = read_at.min_position or 0
        head = self.head() if position or not read_at.eventual else 0
        if position > head:
            # No command answered it: no save will bring the read models there, so say so
            # now rather than hold the reader for the whole wait.
            raise PositionBeyondLog(
                f"Log position {position} is beyond the log's head ({head}): no command answered it.",
                min_position=position,
                head=head,
            )
        if not read_at.eventual:
            position = max(position, head)
        self.wait_for(position, *names)

    def wait_for(self, position: int | None, *names: str) -> None:
        """Returns once each named read model has reached `position`; refuses after the
        bounded wait so that a caller never reads older data than it wrote."""
        if not position:
            return
        behind = [name for name in names or tuple(self.runners) if not self.runners[name].wait_for(position, 0)]
        if not behind:
            return
        if any(self.runners[name].failed_event for name in behind):
            self._wait_for(position, behind)  # answers at once that it will never get there
            return
        if not self._waiters.acquire(blocking=False):
            raise ReadModelBehind(
                f"Too many reads are waiting for the read models ({', '.join(behind)}) to reach log position "
                f"{position}; try again shortly.",
                projection=behind[0],
                min_position=position,
                retry_after=1,
            )
        try:
            self._wait_for(position, behind)
        finally:
            self._waiters.release()

    def _wait_for(self, position: int, names: Sequence[str]) -> None:
        for name in names:
            runner = self.runners[name]
            if not runner.wait_for(position, self.wait_timeout):
                failed = runner.failed_event
                if failed is not None:  # it will never get there: say so now, not after the wait
                    raise ReadModelStopped(
                        f"Read model {name} stopped at log position {failed.position} ({failed.topic}), "
                        f"an event it cannot apply; it cannot show position {position}.",
                        projection=name,
                        min_position=position,
                        failed_position=failed.position,
                    )
                raise ReadModelBehind(
                    f"Read model {name} has not reached log position {position} within {self.wait_timeout}s.",
                    projection=name,
                    min_position=position,
                )

    # --- health ----------------------------------------------------------------------

    def status(self) -> list[dict[str, Any]]:
        return [runner.status() for runner in self.runners.values()]

    # --- rebuild ---------------------------------------------------------------------

    def rebuild(self, name: str, batch_size: int = 5000, progress: Progress = no_progress) -> int:
        """Rebuilds one read model (`rebuild_together`); answers its position."""
        return self.rebuild_together([name], batch_size, progress)[name]

    def rebuild_together(
        self, names: Sequence[str], batch_size: int = 5000, progress: Progress = no_progress
    ) -> dict[str, int]:
        """Replays the whole log into fresh tables beside the live ones (read once for all the
        named read models), then switches each in when it has caught up with its live model:
        in one transaction that moves the live position to the rebuilt one's and refuses
        (RebuildBehind) while the live one is ahead, so a read never sees a half-built model
        nor one behind what it saw before. Reads go on from the live tables meanwhile, kept
        up to date by their runners. A live runner's next batch is then refused (the
        generation changed): it drops its cached rows and goes on from the rebuilt position.
        Answers each rebuilt model's position. `progress` hears the log position read
        against the log's head."""
        unknown = [name for name in names if name not in self.runners]
        if unknown:
            raise UnknownProjection(f"No projection named {unknown[0]!r}; known: {', '.join(self.runners)}.")
        builders: dict[str, ProjectionRunner] = {}
        for name in names:
            cls = type(self.runners[name].projection)
            fresh = build_view(
                self.datastore, cls.name, cls.tables, suffix=REBUILD_SUFFIX, topics=cls.topics, revision=cls.revision
            )
            fresh.drop_tables()
            fresh.create_tables()
            builders[name] = ProjectionRunner(self.app, cls(fresh), batch_size=batch_size)
        self._catch_up_together(list(builders.values()), page_size=max(batch_size, 10_000), progress=progress)
        positions = {}
        for name, builder in builders.items():
            live = self.view(name)
            while True:
                builder.catch_up(progress=progress)  # what came since (or all, alone, after a failure)
                try:
                    live.swap_in(builder.view)
                    break
                except RebuildBehind:
                    continue  # its live runner went on meanwhile: catch up with it, then switch
            live.analyze()
            positions[name] = live.position()
            log.info("projection %s rebuilt up to position %s and switched in", name, positions[name])
            self.runners[name].nudge()
        return positions
