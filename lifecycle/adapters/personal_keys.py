"""The data subjects' keys (docs/privacy.md): one AES-256 key per subject, in a table of its
own beside the events (never in the log, a snapshot or a read model), each wrapped with the
key-encryption key (KEK) of LIFECYCLE_PRIVACY_KEY. Forgetting a subject destroys its key:
the row keeps only when it was erased, so that nothing sealed with it opens again.

A subject edited after being forgotten (a site given a new person) gets a new key of the
next generation; what was sealed with the destroyed one stays unreadable.

Keys are cached in the process for `CACHE_SECONDS`: a key destroyed by another process still
opens here until then (docs/privacy.md says so); the forgetting process drops it at once."""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from lifecycle.adapters.side_tables import SideTables, utc_text

NONCE_BYTES = 12
KEK_CHECK = "kek-check"  # the row whose wrapped value proves the KEK is the one keys were wrapped with


class WrongKeyEncryptionKey(Exception):
    """LIFECYCLE_PRIVACY_KEY does not open the keys of this store."""


def parse_kek(text: str) -> bytes:
    """The KEK as 64 hex digits (32 bytes)."""
    try:
        kek = bytes.fromhex(text.strip())
    except ValueError:
        raise WrongKeyEncryptionKey("LIFECYCLE_PRIVACY_KEY must be 64 hex digits (a 256-bit key)") from None
    if len(kek) != 32:
        raise WrongKeyEncryptionKey("LIFECYCLE_PRIVACY_KEY must be 64 hex digits (a 256-bit key)")
    return kek


@dataclass(frozen=True)
class SubjectKey:
    generation: int
    cipher: AESGCM | None  # None: destroyed (the subject was forgotten)


@dataclass
class _Cached:
    loaded_at: float
    generation: int
    wrapped: bytes | None  # unwrapped on first use (a prefetched key may never be used)
    cipher: AESGCM | None = None


class PersonalKeyStore(SideTables):
    """Round trips are what keys cost: a new subject's key is made with one INSERT, and a key
    not in the cache is read with the next `PREFETCH` keys made after it (the log is read in
    the order keys were made, so catching a read model up from zero reads them a window at a
    time, not one query per subject)."""

    CACHE_SECONDS = 30.0
    PREFETCH = 200

    def __init__(self, datastore: Any, kek: bytes, *, cache_size: int = 50_000) -> None:
        super().__init__(datastore)
        self.cache_max = max(cache_size, self.PREFETCH)  # a window read must fit
        self.table = self.qualified("personal_data_keys")
        self._kek = AESGCM(kek)
        self._cache: dict[str, _Cached] = {}
        self._lock = threading.Lock()

    def create_tables(self) -> None:
        blob = "BYTEA" if self.postgres else "BLOB"
        self._create(
            f"CREATE TABLE IF NOT EXISTS {self.table} (subject_id TEXT PRIMARY KEY, generation INTEGER NOT NULL, "
            f"wrapped_key {blob}, created_at TEXT NOT NULL, erased_at TEXT)",
            f"CREATE INDEX IF NOT EXISTS personal_data_keys_created ON {self.table} (created_at)",
        )

    def check_kek(self) -> None:
        """Raises WrongKeyEncryptionKey unless the KEK opens this store's keys; the first start
        records the proof."""
        probe = self._wrap(KEK_CHECK, b"\0" * 32)
        with self._cursor(True) as cursor:
            self._run(cursor, f"INSERT INTO {self.table} (subject_id, generation, wrapped_key, created_at) "
                              "VALUES (%s, 1, %s, %s) ON CONFLICT (subject_id) DO NOTHING",
                      (KEK_CHECK, probe, "0"))  # made "first": never in a prefetch window
            self._run(cursor, f"SELECT wrapped_key FROM {self.table} WHERE subject_id = %s", (KEK_CHECK,))
            row = cursor.fetchone()
        try:
            self._unwrap(KEK_CHECK, bytes(row["wrapped_key"]))
        except InvalidTag:
            raise WrongKeyEncryptionKey(
                "LIFECYCLE_PRIVACY_KEY is not the key this store's personal-data keys were wrapped with "
                "(nothing personal could be read or sealed); start with the key it was made with"
            ) from None

    def rewrap(self, new_kek: bytes) -> int:
        """KEK rotation: every subject's key (and the proof row) unwrapped with the current KEK
        and wrapped with `new_kek`, in one transaction; answers how many keys. The subjects'
        keys themselves, and so every sealed value in the log, stay as they are."""
        rewrapped = PersonalKeyStore(self.datastore, new_kek)
        count = 0
        with self._cursor(True) as cursor:
            self._run(cursor, f"SELECT subject_id, wrapped_key FROM {self.table} WHERE wrapped_key IS NOT NULL")
            rows = cursor.fetchall()
            for row in rows:
                key = self._unwrap(row["subject_id"], bytes(row["wrapped_key"]))
                self._run(cursor, f"UPDATE {self.table} SET wrapped_key = %s WHERE subject_id = %s",
                          (rewrapped._wrap(row["subject_id"], key), row["subject_id"]))
                count += 1
        with self._lock:
            self._cache.clear()
        return count - 1  # the proof row is not a subject's key

    # --- wrapping -------------------------------------------------------------------------

    def _wrap(self, subject_id: str, key: bytes) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._kek.encrypt(nonce, key, f"lifecycle-subject-key:{subject_id}".encode())

    def _unwrap(self, subject_id: str, wrapped: bytes) -> bytes:
        nonce, body = wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:]
        return self._kek.decrypt(nonce, body, f"lifecycle-subject-key:{subject_id}".encode())

    # --- keys -----------------------------------------------------------------------------

    def key(self, subject_id: str) -> SubjectKey | None:
        """The subject's current key; None when it never had one."""
        cached = self._fresh(subject_id)
        if cached is None:
            self._prefetch(subject_id)
            cached = self._fresh(subject_id)
            if cached is None:
                return None
        return self._opened(subject_id, cached)

    def key_for_sealing(self, subject_id: str) -> SubjectKey:
        """The subject's key, made when it has none (or a new generation after it was destroyed)."""
        cached = self._fresh(subject_id)
        if cached is not None and cached.wrapped is not None:
            return self._opened(subject_id, cached)
        key = AESGCM.generate_key(bit_length=256)
        wrapped = self._wrap(subject_id, key)
        with self._cursor(True) as cursor:
            if cached is None:  # most often a new subject: one statement
                self._run(cursor, f"INSERT INTO {self.table} (subject_id, generation, wrapped_key, created_at) "
                                  "VALUES (%s, 1, %s, %s) ON CONFLICT (subject_id) DO NOTHING RETURNING generation",
                          (subject_id, wrapped, utc_text(datetime.now(timezone.utc))))
                if cursor.fetchone() is not None:
                    return self._remember(subject_id, 1, wrapped, AESGCM(key))
            self._run(cursor, f"SELECT generation, wrapped_key FROM {self.table} WHERE subject_id = %s", (subject_id,))
            row = cursor.fetchone()
            if row["wrapped_key"] is None:  # destroyed: the next generation
                self._run(cursor, f"UPDATE {self.table} SET generation = %s, wrapped_key = %s, erased_at = NULL "
                                  "WHERE subject_id = %s AND generation = %s AND wrapped_key IS NULL",
                          (row["generation"] + 1, wrapped, subject_id, row["generation"]))
                # Another process may have made it first: everyone uses the row as stored.
                self._run(cursor, f"SELECT generation, wrapped_key FROM {self.table} WHERE subject_id = %s",
                          (subject_id,))
                row = cursor.fetchone()
        cached = self._remember(subject_id, row["generation"], bytes(row["wrapped_key"]))
        return self._opened(subject_id, cached)

    def destroy(self, subject_id: str, at: datetime) -> bool:
        """Destroys the subject's key; False when it had none to destroy."""
        with self._cursor(True) as cursor:
            self._run(cursor, f"UPDATE {self.table} SET wrapped_key = NULL, erased_at = %s "
                              "WHERE subject_id = %s AND wrapped_key IS NOT NULL RETURNING subject_id",
                      (utc_text(at), subject_id))
            destroyed = cursor.fetchone() is not None
        with self._lock:
            self._cache.pop(subject_id, None)
        return destroyed

    def erased_at(self, subject_id: str) -> datetime | None:
        with self._cursor(False) as cursor:
            self._run(cursor, f"SELECT erased_at FROM {self.table} WHERE subject_id = %s", (subject_id,))
            row = cursor.fetchone()
        if row is None or row["erased_at"] is None:
            return None
        return datetime.fromisoformat(row["erased_at"]).replace(tzinfo=timezone.utc)

    # --- the cache -----------------------------------------------------------------------

    def _fresh(self, subject_id: str) -> _Cached | None:
        cached = self._cache.get(subject_id)
        if cached is not None and time.monotonic() - cached.loaded_at < self.CACHE_SECONDS:
            return cached
        return None

    def _prefetch(self, subject_id: str) -> None:
        """The subject's key and the next keys made after it, in one query."""
        with self._cursor(False) as cursor:
            self._run(cursor, f"SELECT subject_id, generation, wrapped_key FROM {self.table} WHERE created_at >= "
                              f"(SELECT created_at FROM {self.table} WHERE subject_id = %s) "
                              f"ORDER BY created_at LIMIT {self.PREFETCH}", (subject_id,))
            rows = cursor.fetchall()
        now = time.monotonic()
        with self._lock:
            if len(self._cache) + len(rows) > self.cache_max:
                self._cache.clear()
            for row in rows:
                wrapped = row["wrapped_key"]
                self._cache[row["subject_id"]] = _Cached(now, row["generation"],
                                                         None if wrapped is None else bytes(wrapped))

    def _remember(self, subject_id: str, generation: int, wrapped: bytes, cipher: AESGCM | None = None) -> _Cached:
        cached = _Cached(time.monotonic(), generation, wrapped, cipher)
        with self._lock:
            if len(self._cache) >= self.cache_max:
                self._cache.clear()
            self._cache[subject_id] = cached
        return cached

    def _opened(self, subject_id: str, cached: _Cached) -> SubjectKey:
        if cached.wrapped is None:
            return SubjectKey(cached.generation, None)
        if cached.cipher is None:
            cached.cipher = AESGCM(self._unwrap(subject_id, cached.wrapped))
        return SubjectKey(cached.generation, cached.cipher)


class InMemoryKeyStore:
    """The keys of an in-memory event store (the library's POPO store, unit tests)."""

    def __init__(self) -> None:
        self._keys: dict[str, SubjectKey] = {}
        self._erased: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def check_kek(self) -> None:
        pass

    def key(self, subject_id: str) -> SubjectKey | None:
        return self._keys.get(subject_id)

    def key_for_sealing(self, subject_id: str) -> SubjectKey:
        with self._lock:
            found = self._keys.get(subject_id)
            if found is None or found.cipher is None:
                generation = 1 if found is None else found.generation + 1
                found = self._keys[subject_id] = SubjectKey(generation, AESGCM(AESGCM.generate_key(bit_length=256)))
            return found

    def destroy(self, subject_id: str, at: datetime) -> bool:
        with self._lock:
            found = self._keys.get(subject_id)
            if found is None or found.cipher is None:
                return False
            self._keys[subject_id] = SubjectKey(found.generation, None)
            self._erased[subject_id] = at
            return True

    def erased_at(self, subject_id: str) -> datetime | None:
        return self._erased.get(subject_id)


def key_store_for(datastore: Any, kek: bytes | None, *, cache_size: int = 50_000) -> PersonalKeyStore | InMemoryKeyStore:
    """The keys beside the events' database (their table made and the KEK checked), or in
    memory for an in-memory store."""
    if datastore is None:
        return InMemoryKeyStore()
    if kek is None:
        raise WrongKeyEncryptionKey("an event store in a database needs LIFECYCLE_PRIVACY_KEY (or var_dir's privacy_key)")
    store = PersonalKeyStore(datastore, kek, cache_size=cache_size)
    store.create_tables()
    store.check_kek()
    return store
