"""Every signed checkpoint of the audit tree, kept beside the events: state (a signature made
at an instant cannot be made again later), so `lifecycle store copy` carries it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from lifecycle.adapters.side_tables import SideTables, utc_instant, utc_text
from lifecycle.ports import StoredCheckpoint

TABLE = "audit_checkpoints"


class SqlCheckpointStore(SideTables):
    def __init__(self, datastore: Any) -> None:
        super().__init__(datastore)
        self.table = self.qualified(TABLE)

    def create_tables(self) -> None:
        self._create(
            f"CREATE TABLE IF NOT EXISTS {self.table} (tree_size BIGINT PRIMARY KEY, root_hash TEXT NOT NULL, "
            "note TEXT NOT NULL, signed_at TEXT NOT NULL)"
        )

    def add(self, tree_size: int, root_hash: str, note: str, at: datetime) -> None:
        """Keeps the first checkpoint of each size (two processes may sign the same one)."""
        with self._cursor(True) as cursor:
            self._run(
                cursor,
                f"INSERT INTO {self.table} (tree_size, root_hash, note, signed_at) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (tree_size) DO NOTHING",
                (tree_size, root_hash, note, utc_text(at)),
            )

    def _one(self, where: str, params: tuple[Any, ...]) -> StoredCheckpoint | None:
        with self._cursor(False) as cursor:
            self._run(cursor, f"SELECT tree_size, root_hash, note, signed_at FROM {self.table} {where}", params)
            row = cursor.fetchone()
        if row is None:
            return None
        return StoredCheckpoint(row["tree_size"], row["root_hash"], row["note"], utc_instant(row["signed_at"]))

    def latest(self) -> StoredCheckpoint | None:
        return self._one("ORDER BY tree_size DESC LIMIT 1", ())

    def at(self, tree_size: int) -> StoredCheckpoint | None:
        return self._one("WHERE tree_size = %s", (tree_size,))

    def all(self) -> list[StoredCheckpoint]:
        with self._cursor(False) as cursor:
            self._run(cursor, f"SELECT tree_size, root_hash, note, signed_at FROM {self.table} ORDER BY tree_size")
            rows = cursor.fetchall()
        return [StoredCheckpoint(r["tree_size"], r["root_hash"], r["note"], utc_instant(r["signed_at"])) for r in rows]
