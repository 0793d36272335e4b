"""The durable spool: batches of line protocol that are acknowledged but not yet in InfluxDB.

Used while the local InfluxDB is down or slow. Appends are fsynced before the acknowledgement;
draining removes rows only after InfluxDB accepted them, so a crash at any point costs at most an
idempotent re-write. The size is bounded: at the bound, appends fail loudly (the HTTP API answers
503 and devices keep their readings) instead of dropping anything.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from collector.statedb import StateDB
from collector.tally import SeqRange, SpoolTally
from energymon.errors import SpoolFullError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SpoolRow:
    id: int
    points: int
    min_time_ms: int
    max_time_ms: int
    body: bytes


@dataclass(frozen=True, slots=True)
class ParkedBatch:
    id: int
    parked_ms: int
    points: int
    reason: str
    body: bytes


class Spool:
    def __init__(self, db: StateDB, max_bytes: int, tally: SpoolTally | None = None) -> None:
        self._db = db
        self.max_bytes = max_bytes
        # Without a tally (a store in a test, a CLI command) nothing records what the spool
        # must hold, and nothing can be found missing at the next start.
        self.tally = tally
        # Acknowledged readings found missing from a damaged spool (`collector.integrity`).
        self.lost_points = 0
        self.lost_ranges: tuple[SeqRange, ...] = ()
        [(points, size)] = db.fetch_all(
            "SELECT coalesce(sum(points), 0), coalesce(sum(length(body)), 0) FROM spool"
        )
        self.depth_points: int = points
        self.bytes: int = size
        self.full_refusals = 0
        self._refusing = False

    @property
    def empty(self) -> bool:
        return self.depth_points == 0

    def append(
        self, body: bytes, *, points: int, min_time_ms: int, max_time_ms: int, now_ms: int
    ) -> None:
        if self.bytes + len(body) > self.max_bytes:
            self.full_refusals += 1
            if not self._refusing:
                self._refusing = True
                log.error(
                    "spool is full (%d of %d bytes): refusing new readings with 503 until "
                    "InfluxDB takes the backlog; devices keep theirs meanwhile",
                    self.bytes,
                    self.max_bytes,
                )
            raise SpoolFullError(
                f"spool holds {self.bytes} of {self.max_bytes} bytes; cannot take {len(body)} more"
            )
        with self._db.transaction() as conn:
            cursor = conn.execute(
                "INSERT INTO spool (queued_ms, points, min_time_ms, max_time_ms, body) "
                "VALUES (?, ?, ?, ?, ?)",
                (now_ms, points, min_time_ms, max_time_ms, body),
            )
            row_id = cursor.lastrowid
        if self.tally is not None and row_id is not None:
            # Before the acknowledgement: what the tally lists, a later start must find.
            self.tally.add(row_id, body, points)
        self.depth_points += points
        self.bytes += len(body)
        if self._refusing:
            self._refusing = False
            log.warning("spool accepts readings again (%d refusals so far)", self.full_refusals)

    def oldest(self, max_points: int) -> list[SpoolRow]:
        """The oldest rows, at least one, up to about `max_points` points."""
        rows: list[SpoolRow] = []
        total = 0
        with self._db.reading() as conn:
            cursor = conn.execute(
                "SELECT id, points, min_time_ms, max_time_ms, body FROM spool ORDER BY id"
            )
            for row in cursor:
                if rows and total + row[1] > max_points:
                    break
                rows.append(SpoolRow(row[0], row[1], row[2], row[3], bytes(row[4])))
                total += row[1]
            cursor.close()
        return rows

    def remove(self, rows: list[SpoolRow]) -> None:
        if self.tally is not None:
            # Struck off first: the tally must never list a row that left rightly.
            self.tally.drop(r.id for r in rows)
        with self._db.transaction(durable=False) as conn:
            conn.executemany("DELETE FROM spool WHERE id = ?", [(r.id,) for r in rows])
        self.depth_points -= sum(r.points for r in rows)
        self.bytes -= sum(len(r.body) for r in rows)
        if self.tally is not None and self.empty:
            self.tally.rewrite(())

    def log_drained(self) -> None:
        """Say that the spool is empty, and whether that means every acknowledged reading is
        in InfluxDB: not when a damaged spool lost some."""
        if self.lost_points:
            log.error(
                "spool drained, but %d acknowledged points were lost from the damaged spool "
                "before this start: %s",
                self.lost_points,
                ", ".join(map(str, self.lost_ranges)) or "(no readings, health records only)",
            )
        else:
            log.info("spool drained: every acknowledged reading is in InfluxDB")

    def park(self, body: bytes, *, points: int, reason: str, now_ms: int) -> None:
        """Keep a batch that InfluxDB refused for good, with the reason, for an operator."""
        with self._db.transaction() as conn:
            conn.execute(
                "INSERT INTO parked (parked_ms, points, reason, body) VALUES (?, ?, ?, ?)",
                (now_ms, points, reason, body),
            )

    @property
    def parked_points(self) -> int:
        """Read from the database each time: `energymon parked` may change it meanwhile."""
        [(points,)] = self._db.fetch_all("SELECT coalesce(sum(points), 0) FROM parked")
        return int(points)

    def parked(self) -> list[ParkedBatch]:
        rows = self._db.fetch_all(
            "SELECT id, parked_ms, points, reason, body FROM parked ORDER BY id"
        )
        return [ParkedBatch(r[0], r[1], r[2], r[3], bytes(r[4])) for r in rows]

    def unpark(self, batch: ParkedBatch) -> None:
        with self._db.transaction() as conn:
            conn.execute("DELETE FROM parked WHERE id = ?", (batch.id,))
