"""The write journal: which time ranges the collector wrote into the local InfluxDB, and when.

The collector records a range durably *before* it writes the points, so a crash can never leave
points in InfluxDB that the journal does not know about. The replicator follows the journal to
find points that arrived behind its watermark (devices that buffered, the spool draining, a
restore). It lives in the collector's state database (`<data_dir>/collector.db`); the replicator
opens that file read-only.

The journal has an identity, a random id made with the table: a journal recreated (a deleted or
replaced `collector.db`) starts its entry ids again, which could pass a reader's saved cursor
unnoticed; its new identity tells the reader that its cursor means nothing any more.

Each entry has a `kind`: `points` for what the collector stores (readings, health records,
drained spool batches), `rollup` for the rollups the collector computes from them
(`collector/rollup.py`). The replicator follows every kind; the rollup worker follows only the
other kinds, so its own writes never wake it again.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from energymon.sqlitedb import SQLiteDB

SCHEMA = """
CREATE TABLE IF NOT EXISTS write_journal (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    recorded_ms INTEGER NOT NULL,
    min_time_ms INTEGER NOT NULL,
    max_time_ms INTEGER NOT NULL,
    points INTEGER NOT NULL,
    kind TEXT NOT NULL DEFAULT 'points'
)
"""

POINTS = "points"
ROLLUP = "rollup"

# Run after SCHEMA by whoever creates the journal; the id is made once, with the table.
IDENTITY_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS journal_identity ("
    "only INTEGER PRIMARY KEY CHECK (only = 1), id TEXT NOT NULL)",
    "INSERT OR IGNORE INTO journal_identity (only, id) VALUES (1, lower(hex(randomblob(16))))",
)

STATE_DB_NAME = "collector.db"


def migrate(conn: sqlite3.Connection) -> None:
    """Give a journal made before entries had a kind its `kind` column; idempotent."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(write_journal)")}
    if "kind" not in columns:
        conn.execute("ALTER TABLE write_journal ADD COLUMN kind TEXT NOT NULL DEFAULT 'points'")


@dataclass(frozen=True, slots=True)
class JournalEntry:
    id: int
    recorded_ms: int
    min_time_ms: int
    max_time_ms: int
    points: int
    kind: str = POINTS


def record(
    conn: sqlite3.Connection,
    *,
    recorded_ms: int,
    min_time_ms: int,
    max_time_ms: int,
    points: int,
    kind: str = POINTS,
) -> None:
    """Add an entry inside the caller's transaction."""
    conn.execute(
        "INSERT INTO write_journal (recorded_ms, min_time_ms, max_time_ms, points, kind) "
        "VALUES (?, ?, ?, ?, ?)",
        (recorded_ms, min_time_ms, max_time_ms, points, kind),
    )


def entries_of_other_kinds(
    db: SQLiteDB, after_id: int, kind: str, *, settled: Callable[[JournalEntry], bool], limit: int
) -> tuple[list[JournalEntry], int]:
    """Entries after `after_id` not of `kind` whose writes have `settled`, oldest first, and
    the cursor after them. Stops at the first entry of any kind not settled yet, so the cursor
    never passes an entry that is not yet followed."""
    rows = db.fetch_all(
        "SELECT id, recorded_ms, min_time_ms, max_time_ms, points, kind FROM write_journal "
        "WHERE id > ? ORDER BY id LIMIT ?",
        (after_id, limit),
    )
    page = [JournalEntry(*row) for row in rows]
    # Asked of every entry of the page, so that entries known only by their age all start
    # aging now, not one per call.
    ready = [settled(entry) for entry in page]
    entries: list[JournalEntry] = []
    cursor = after_id
    for entry, is_settled in zip(page, ready, strict=True):
        if not is_settled:
            break
        cursor = entry.id
        if entry.kind != kind:
            entries.append(entry)
    return entries, cursor


def prune(conn: sqlite3.Connection, *, recorded_before_ms: int) -> int:
    """Forget entries recorded before the given time; returns how many went."""
    return conn.execute(
        "DELETE FROM write_journal WHERE recorded_ms < ?", (recorded_before_ms,)
    ).rowcount


class JournalReader:
    """Read-only access for another process (the replicator).

    The file may appear after the reader is made (the collector starts later): the connection
    is opened on the first read that finds the file, then kept until `close()`.
    """

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / STATE_DB_NAME
        self._db: SQLiteDB | None = None
        self._inode: int | None = None

    def _reader(self) -> SQLiteDB:
        # A connection keeps reading a deleted file: a journal recreated under the same name
        # must be opened again, or its new identity would never be seen.
        try:
            inode = self.path.stat().st_ino
        except OSError:
            inode = None
        if self._db is not None and inode != self._inode:
            self.close()
        if self._db is None:
            self._db = SQLiteDB(self.path, read_only=True)
            self._inode = inode
        return self._db

    def exists(self) -> bool:
        return self.path.is_file()

    def entries_after(self, after_id: int, limit: int = 1000) -> list[JournalEntry]:
        rows = self._reader().fetch_all(
            "SELECT id, recorded_ms, min_time_ms, max_time_ms, points FROM write_journal "
            "WHERE id > ? ORDER BY id LIMIT ?",
            (after_id, limit),
        )
        return [JournalEntry(*row) for row in rows]

    def last_id(self) -> int | None:
        """The newest id; a reader starting without history begins after it."""
        [(last,)] = self._reader().fetch_all("SELECT max(id) FROM write_journal")
        return None if last is None else int(last)

    def first_id(self) -> int | None:
        """The oldest id still kept; a reader whose cursor is older missed pruned entries."""
        [(first,)] = self._reader().fetch_all("SELECT min(id) FROM write_journal")
        return None if first is None else int(first)

    def identity(self) -> str | None:
        """The journal's random id; None for a journal made before journals had one."""
        reader = self._reader()
        if not reader.fetch_all(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'journal_identity'"
        ):
            return None
        rows = reader.fetch_all("SELECT id FROM journal_identity")
        return str(rows[0][0]) if rows else None

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
