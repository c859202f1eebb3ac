"""The log that proves itself: the audit tree (a projection, lifecycle/projections/audit_tree.py),
its signed checkpoints (every N events, every M minutes, on demand), and the proofs an auditor
asks for. See docs/audit.md."""

from __future__ import annotations

import logging
import threading
from typing import Any

from lifecycle.availability import is_outage
from lifecycle.background import BackgroundThread
from lifecycle.checkpoints import Checkpoint, Signer
from lifecycle.domain.errors import CheckpointNotFound, TreeSizeBeyondLog
from lifecycle.ports import CheckpointStore, Clock, PositionMoved, StoredCheckpoint
from lifecycle.projections.audit_tree import AuditTree, ConsistencyProof, InclusionProof, TreeReader
from lifecycle.projections.engine.runner import ProjectionRunner

log = logging.getLogger(__name__)

# How often the checkpoint loop looks at the tree (its settings are in events and minutes).
LOOK_SECONDS = 1.0


class AuditLog(BackgroundThread):
    thread_name = "audit-checkpoints"

    def __init__(
        self,
        runner: ProjectionRunner,
        store: CheckpointStore,
        signer: Signer,
        clock: Clock,
        *,
        every_events: int = 1000,
        every_minutes: float = 10.0,
    ) -> None:
        assert isinstance(runner.projection, AuditTree)
        self.runner = runner
        self.tree = TreeReader(runner.view)
        self.store = store
        self.signer = signer
        self.clock = clock
        self.every_events = every_events
        self.every_minutes = every_minutes
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # --- checkpoints ------------------------------------------------------------------

    def catch_up(self) -> None:
        """The tree up to the log's head (commands; a running service's runner does it itself)."""
        try:
            self.runner.catch_up()
        except PositionMoved:  # another process's runner got there: it is as far
            pass

    def checkpoint(self) -> StoredCheckpoint:
        """Signs the tree as it is now, unless the last checkpoint already covers it."""
        size = self.tree.size()
        latest = self.store.latest()
        if latest is not None and latest.tree_size >= size:
            return latest
        root = self.tree.root(size)
        note = self.signer.sign(Checkpoint(self.signer.name, size, root))
        self.store.add(size, root.hex(), note, self.clock.now())
        stored = self.store.at(size)
        assert stored is not None
        log.info("audit checkpoint signed at tree size %s", size)
        return stored

    def latest(self) -> StoredCheckpoint:
        latest = self.store.latest()
        if latest is None:
            raise CheckpointNotFound("No checkpoint has been signed yet.", tree_size=None)
        return latest

    def at(self, tree_size: int) -> StoredCheckpoint:
        found = self.store.at(tree_size)
        if found is None:
            raise CheckpointNotFound(f"No checkpoint was signed at tree size {tree_size}.", tree_size=tree_size)
        return found

    def due(self) -> bool:
        size = self.tree.size()
        latest = self.store.latest()
        signed = latest.tree_size if latest else 0
        if size <= signed:
            return False
        if self.every_events and size - signed >= self.every_events:
            return True
        if self.every_minutes:
            since = latest.signed_at if latest else None
            return since is None or (self.clock.now() - since).total_seconds() >= self.every_minutes * 60
        return False

    # --- proofs -----------------------------------------------------------------------

    def _within(self, tree_size: int) -> None:
        size = self.tree.size()
        if tree_size > size:
            raise TreeSizeBeyondLog(
                f"The audit tree has {size} leaves; tree_size {tree_size} is beyond it.", tree_size=tree_size, size=size
            )

    def inclusion(self, index: int, tree_size: int) -> InclusionProof:
        if not 0 <= index < tree_size:
            raise TreeSizeBeyondLog(
                f"Leaf index {index} is not within a tree of {tree_size} leaves.", index=index, tree_size=tree_size
            )
        self._within(tree_size)
        return self.tree.inclusion(index, tree_size)

    def consistency(self, first: int, second: int) -> ConsistencyProof:
        if not 0 < first <= second:
            raise TreeSizeBeyondLog(
                f"No consistency proof from a tree of {first} to a tree of {second} leaves (needs 0 < first <= second).",
                first=first, second=second,
            )
        self._within(second)
        return self.tree.consistency(first, second)

    # --- as a background service ------------------------------------------------------

    def start(self) -> None:
        if not (self.every_events or self.every_minutes):
            return
        super().start()

    def _loop(self) -> None:
        while not self._stopping.wait(LOOK_SECONDS):
            try:
                # The process that runs the tree signs it: no lock (and pooled connection) of its own.
                if self.runner.is_leader and self.due():
                    self.checkpoint()
            except Exception as error:  # noqa: BLE001 - the loop goes on: the next look tries again
                if not is_outage(error):
                    log.exception("signing an audit checkpoint failed; trying again")

    def status(self) -> dict[str, Any]:
        latest = self.store.latest()
        return {"tree_size": self.tree.size(), "checkpoint": latest.tree_size if latest else None}
