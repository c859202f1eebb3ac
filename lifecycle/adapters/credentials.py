"""Customers' sessions and the API keys' last use: operational rows in the event store's
own database, not events (a request's activity is not a change to record). Tokens are kept
only as their SHA-256; instants as fixed-width UTC text, so that comparing text compares
instants in both stores."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from lifecycle.adapters.side_tables import SideTables
from lifecycle.adapters.side_tables import utc_instant as _instant
from lifecycle.adapters.side_tables import utc_text as _text
from lifecycle.ports import SessionRow


class SqlCredentialStore(SideTables):
    """The port lifecycle.ports.CredentialStore in the event store's database."""

    def __init__(self, datastore: Any) -> None:
        super().__init__(datastore)
        self.sessions = self.qualified("access_sessions")
        self.uses = self.qualified("api_key_uses")

    def create_tables(self) -> None:
        self._create(
            f"CREATE TABLE IF NOT EXISTS {self.sessions} (token_hash TEXT PRIMARY KEY, account_id TEXT NOT NULL, "
            "epoch INTEGER NOT NULL, created_at TEXT NOT NULL, last_seen_at TEXT NOT NULL, ended_at TEXT)",
            f"CREATE INDEX IF NOT EXISTS access_sessions_account ON {self.sessions} (account_id)",
            f"CREATE TABLE IF NOT EXISTS {self.uses} (key_id TEXT PRIMARY KEY, last_used_at TEXT NOT NULL)",
        )

    # --- sessions -----------------------------------------------------------------------

    def start_session(self, token_hash: str, account_id: str, epoch: int, at: datetime) -> None:
        with self._cursor(True) as cursor:
            self._run(
                cursor,
                f"INSERT INTO {self.sessions} (token_hash, account_id, epoch, created_at, last_seen_at) "
                "VALUES (%s, %s, %s, %s, %s)",
                (token_hash, account_id, epoch, _text(at), _text(at)),
            )

    def session(self, token_hash: str) -> SessionRow | None:
        with self._cursor(False) as cursor:
            self._run(
                cursor,
                f"SELECT account_id, epoch, created_at, last_seen_at, ended_at FROM {self.sessions} "
                "WHERE token_hash = %s",
                (token_hash,),
            )
            row = cursor.fetchone()
        if row is None:
            return None
        return SessionRow(
            token_hash, row["account_id"], row["epoch"], _instant(row["created_at"]),  # type: ignore[arg-type]
            _instant(row["last_seen_at"]), _instant(row["ended_at"]),  # type: ignore[arg-type]
        )

    def seen(self, token_hash: str, at: datetime) -> None:
        with self._cursor(True) as cursor:
            self._run(
                cursor,
                f"UPDATE {self.sessions} SET last_seen_at = %s WHERE token_hash = %s AND last_seen_at < %s",
                (_text(at), token_hash, _text(at)),
            )

    def end_session(self, token_hash: str, at: datetime) -> None:
        with self._cursor(True) as cursor:
            self._run(
                cursor,
                f"UPDATE {self.sessions} SET ended_at = %s WHERE token_hash = %s AND ended_at IS NULL",
                (_text(at), token_hash),
            )

    # --- API keys' last use -------------------------------------------------------------

    def key_used(self, key_id: str, at: datetime) -> None:
        with self._cursor(True) as cursor:
            self._run(
                cursor,
                f"INSERT INTO {self.uses} (key_id, last_used_at) VALUES (%s, %s) ON CONFLICT (key_id) "
                f"DO UPDATE SET last_used_at = excluded.last_used_at WHERE {self.uses}.last_used_at < excluded.last_used_at",
                (key_id, _text(at)),
            )

    def keys_last_used(self) -> dict[str, datetime]:
        with self._cursor(False) as cursor:
            self._run(cursor, f"SELECT key_id, last_used_at FROM {self.uses}")
            return {row["key_id"]: _instant(row["last_used_at"]) for row in cursor.fetchall()}  # type: ignore[misc]
