"""The collector's state database (`<data_dir>/collector.db`): SQLite in WAL mode.

One file holds the time anchors, the sequence ledger, the spool, parked batches and the write
journal, so one fsync makes a whole step durable. Only the store's single writer thread uses
the connection; the replicator reads the journal through its own read-only connection.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from energymon import journal
from energymon.errors import StoreError

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS anchors (
        device TEXT NOT NULL, boot INTEGER NOT NULL, anchor_ms INTEGER NOT NULL,
        PRIMARY KEY (device, boot))""",
    """CREATE TABLE IF NOT EXISTS seen (
        device TEXT NOT NULL, boot INTEGER NOT NULL, lo INTEGER NOT NULL, hi INTEGER NOT NULL,
        PRIMARY KEY (device, boot, lo))""",
    """CREATE TABLE IF NOT EXISTS spool (
        id INTEGER PRIMARY KEY AUTOINCREMENT, queued_ms INTEGER NOT NULL,
        points INTEGER NOT NULL, min_time_ms INTEGER NOT NULL, max_time_ms INTEGER NOT NULL,
        body BLOB NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS parked (
        id INTEGER PRIMARY KEY AUTOINCREMENT, parked_ms INTEGER NOT NULL,
        points INTEGER NOT NULL, reason TEXT NOT NULL, body BLOB NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL)""",
    journal.SCHEMA,
)


class StateDB:
    def __init__(self, data_dir: Path) -> None:
        try:
            data_dir.mkdir(parents=True, exist_ok=True)
            self.path = data_dir / journal.STATE_DB_NAME
            self.conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30.0
            )
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")
            for statement in _SCHEMA:
                self.conn.execute(statement)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open the state database in {data_dir}: {exc}") from exc

    @contextmanager
    def transaction(self, *, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """A write transaction. `durable=False` skips the fsync: for state whose loss costs only
        an idempotent re-write, never for anything an acknowledgement depends on."""
        try:
            if not durable:
                self.conn.execute("PRAGMA synchronous=NORMAL")
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"state database write failed: {exc}") from exc
        finally:
            if not durable:
                self.conn.execute("PRAGMA synchronous=FULL")

    def next_counter(self, key: str) -> int:
        """Increment and return a persistent counter (the serial meters' boot number)."""
        with self.transaction() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            value = (row[0] if row else 0) + 1
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))
        return value

    def close(self) -> None:
        self.conn.close()
