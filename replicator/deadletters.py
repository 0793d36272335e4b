"""The dead-letter store: points a server refused for good, kept with the reason, so that an
operator can inspect, replay or discard them and nothing is ever dropped silently.

While any are kept the replicator's `/health` is degraded, and the service replays them on a
schedule (`replay`): a letter whose cause has passed (a proxy's error page taken for a refusal
by an older version, a cloud fixed by its operator) is written and removed without a command;
one InfluxDB refuses again stays, with the new reason."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from energymon.errors import InfluxRejectedError
from energymon.influx import InfluxClient
from energymon.sqlitedb import SQLiteDB

# Letters written per request by `replay`; a refused group is split to find the refused ones.
REPLAY_GROUP = 500

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
    """One SQLite file; every change is committed, fsynced, before the caller moves on."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = SQLiteDB(path, schema=(SCHEMA,))

    def close(self) -> None:
        self._db.close()

    def add(
        self,
        lines: Sequence[str],
        *,
        target: str,
        reason: str,
        now_ms: int,
        replayable: bool = True,
    ) -> None:
        with self._db.transaction() as conn:
            conn.executemany(
                "INSERT OR IGNORE INTO dead_letters "
                "(created_ms, target, reason, line, replayable) VALUES (?, ?, ?, ?, ?)",
                [(now_ms, target, reason, line, int(replayable)) for line in lines],
            )

    def count(self) -> int:
        [(count,)] = self._db.fetch_all("SELECT count(*) FROM dead_letters")
        return int(count)

    def list(self, limit: int = 100, after_id: int = 0) -> list[DeadLetter]:
        rows = self._db.fetch_all(
            "SELECT id, created_ms, target, reason, line, replayable FROM dead_letters "
            "WHERE id > ? ORDER BY id LIMIT ?",
            (after_id, limit),
        )
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
        with self._db.transaction() as conn:
            return conn.execute("DELETE FROM dead_letters WHERE id = ?", (letter_id,)).rowcount > 0

    def remove_many(self, letter_ids: Sequence[int]) -> None:
        with self._db.transaction() as conn:
            conn.executemany("DELETE FROM dead_letters WHERE id = ?", [(i,) for i in letter_ids])

    def update_reason(self, letter_id: int, reason: str) -> None:
        with self._db.transaction() as conn:
            conn.execute("UPDATE dead_letters SET reason = ? WHERE id = ?", (reason, letter_id))


@dataclass(frozen=True, slots=True)
class ReplayOutcome:
    replayed: int
    refused: int
    # Where the next pass starts, so that a large pile is gone through a part at a time.
    next_after_id: int


def replay(
    store: DeadLetterStore,
    clients: Mapping[str, InfluxClient],
    *,
    limit: int,
    after_id: int = 0,
) -> ReplayOutcome:
    """Write up to `limit` replayable letters (after `after_id`) to their targets; remove the
    ones acknowledged. A transient error (`InfluxUnavailableError`, ...) propagates: nothing
    is lost, the pass is tried again later."""
    page = store.list(limit, after_id)
    next_after = page[-1].id if len(page) == limit else 0
    replayed = refused = 0
    # Groups of one target to write, split in halves when refused: a stack, never recursion.
    pending: list[list[DeadLetter]] = []
    for target in sorted(clients, reverse=True):
        letters = [x for x in page if x.replayable and x.target == target]
        pending += [letters[i : i + REPLAY_GROUP] for i in range(0, len(letters), REPLAY_GROUP)]
    while pending:
        group = pending.pop()
        try:
            clients[group[0].target].write([letter.line for letter in group])
        except InfluxRejectedError as exc:
            if len(group) == 1:
                store.update_reason(group[0].id, str(exc))
                refused += 1
            else:
                middle = len(group) // 2
                pending += [group[middle:], group[:middle]]
            continue
        store.remove_many([letter.id for letter in group])
        replayed += len(group)
    return ReplayOutcome(replayed, refused, next_after)
