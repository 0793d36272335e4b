"""The collector's state database (`<data_dir>/collector.db`): SQLite in WAL mode.

One file holds the time anchors, the sequence ledger, the spool, parked batches and the write
journal, so one fsync makes a whole step durable. Only the store's single writer thread uses
the connection; the replicator reads the journal through its own read-only connection.
Transactions, durability and errors are `energymon.sqlitedb`'s.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from energymon import journal
from energymon.sqlitedb import SQLiteDB

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
    # Acknowledged readings found missing from a damaged spool at a start (collector.integrity).
    """CREATE TABLE IF NOT EXISTS spool_losses (
        id INTEGER PRIMARY KEY AUTOINCREMENT, found_ms INTEGER NOT NULL,
        points INTEGER NOT NULL, ranges TEXT NOT NULL)""",
    journal.SCHEMA,
    *journal.IDENTITY_SCHEMA,
)


class StateDB(SQLiteDB):
    """`<data_dir>/collector.db`, opened for writing, its tables created when missing."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir / journal.STATE_DB_NAME, schema=_SCHEMA)
        with self.transaction() as conn:
            journal.migrate(conn)

    def meta(self, key: str) -> int | None:
        rows = self.fetch_all("SELECT value FROM meta WHERE key = ?", (key,))
        return int(rows[0][0]) if rows else None

    @staticmethod
    def set_meta(conn: sqlite3.Connection, key: str, value: int) -> None:
        """Inside the caller's transaction."""
        conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    def next_counter(self, key: str) -> int:
        """Increment and return a persistent counter (the serial meters' boot number)."""
        with self.transaction() as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
            value = (row[0] if row else 0) + 1
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))
        return value
