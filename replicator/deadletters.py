"""The dead-letter store: points a server refused for good, kept with the reason, so that an
operator can inspect, replay or discard them and nothing is ever dropped silently."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from energymon.errors import ReplicationError

SCHEMA = """
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    created_ms INTEGER NOT NULL,
    target TEXT NOT NULL,
    reason TEXT NOT NULL,
    line TEXT NOT NULL,
    replayable INTEGER NOT NULL,
    -- A point refused again (a repair re-copying its hour) is the same dead letter.
    UNIQUE (target, line)
)
"""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: int
    created_ms: int
    target: str
    reason: str
    line: str
    # False for a stored point that could not even be turned into line protocol.
    replayable: bool


class DeadLetterStore:
    """One SQLite file; every change is committed before the caller moves on."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._conn = sqlite3.connect(path, timeout=10.0, check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute(SCHEMA)
            self._conn.commit()
        except sqlite3.Error as exc:
            raise ReplicationError(f"cannot open the dead-letter store {path}: {exc}") from exc

    def close(self) -> None:
        self._conn.close()

    def add(
        self,
        lines: Sequence[str],
        *,
        target: str,
        reason: str,
        now_ms: int,
        replayable: bool = True,
    ) -> None:
        try:
            with self._conn:
                self._conn.executemany(
                    "INSERT OR IGNORE INTO dead_letters "
                    "(created_ms, target, reason, line, replayable) VALUES (?, ?, ?, ?, ?)",
                    [(now_ms, target, reason, line, int(replayable)) for line in lines],
                )
        except sqlite3.Error as exc:
            raise ReplicationError(f"cannot store dead letters in {self.path}: {exc}") from exc

    def count(self) -> int:
        row = self._conn.execute("SELECT count(*) FROM dead_letters").fetchone()
        return int(row[0])

    def list(self, limit: int = 100, after_id: int = 0) -> list[DeadLetter]:
        rows = self._conn.execute(
            "SELECT id, created_ms, target, reason, line, replayable FROM dead_letters "
            "WHERE id > ? ORDER BY id LIMIT ?",
            (after_id, limit),
        ).fetchall()
        return [DeadLetter(r[0], r[1], r[2], r[3], r[4], bool(r[5])) for r in rows]

    def iter_all(self, batch: int = 1000) -> Iterator[DeadLetter]:
        after = 0
        while page := self.list(batch, after):
            yield from page
            after = page[-1].id

    def get(self, letter_id: int) -> DeadLetter | None:
        page = self.list(1, letter_id - 1)
        return page[0] if page and page[0].id == letter_id else None

    def remove(self, letter_id: int) -> bool:
        with self._conn:
            return self._conn.execute(
                "DELETE FROM dead_letters WHERE id = ?", (letter_id,)
            ).rowcount > 0

    def update_reason(self, letter_id: int, reason: str) -> None:
        with self._conn:
            self._conn.execute(
                "UPDATE dead_letters SET reason = ? WHERE id = ?", (reason, letter_id)
            )
