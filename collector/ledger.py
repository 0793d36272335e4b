"""Per (device, boot): the time anchor, and which sequence numbers are already durable.

The anchor maps a device's uptime to wall-clock time; it is fixed the first time the collector
hears from that boot and persisted before any reading of it is written, so a re-sent reading
always lands on the same point. The seen-set is a list of closed intervals, so out-of-order and
late batches are stored while re-sends are recognised as duplicates.
"""

from __future__ import annotations

import sqlite3
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Mapping

from collector.statedb import StateDB
from collector.submission import Key


class SeqSet:
    """A set of positive integers kept as sorted, disjoint, non-adjacent closed intervals."""

    __slots__ = ("ends", "starts")

    def __init__(self, intervals: Iterable[tuple[int, int]] = ()) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []
        for lo, hi in sorted(intervals):
            self.add_range(lo, hi)

    def __contains__(self, seq: int) -> bool:
        i = bisect_right(self.starts, seq) - 1
        return i >= 0 and seq <= self.ends[i]

    def add_range(self, lo: int, hi: int) -> None:
        i = bisect_left(self.ends, lo - 1)
        j = bisect_right(self.starts, hi + 1)
        if i < j:
            lo = min(lo, self.starts[i])
            hi = max(hi, self.ends[j - 1])
        self.starts[i:j] = [lo]
        self.ends[i:j] = [hi]

    def add_all(self, seqs: Iterable[int]) -> None:
        run_lo = run_hi = None
        for seq in sorted(seqs):
            if run_hi is not None and seq <= run_hi + 1:
                run_hi = max(run_hi, seq)
                continue
            if run_lo is not None and run_hi is not None:
                self.add_range(run_lo, run_hi)
            run_lo = run_hi = seq
        if run_lo is not None and run_hi is not None:
            self.add_range(run_lo, run_hi)

    def intervals(self) -> list[tuple[int, int]]:
        return list(zip(self.starts, self.ends, strict=True))

    @property
    def highest(self) -> int | None:
        return self.ends[-1] if self.ends else None


class Ledger:
    def __init__(self, db: StateDB) -> None:
        self._db = db
        self._anchors: dict[Key, int] = {
            (d, b): a for d, b, a in db.fetch_all("SELECT device, boot, anchor_ms FROM anchors")
        }
        self._unstored: set[Key] = set()
        self._seen: dict[Key, SeqSet] = {}
        for device, boot, lo, hi in db.fetch_all("SELECT device, boot, lo, hi FROM seen"):
            self._seen.setdefault((device, boot), SeqSet()).add_range(lo, hi)

    def anchor(self, key: Key) -> int | None:
        return self._anchors.get(key)

    def adopt(self, key: Key, anchor_ms: int) -> int:
        """The anchor of `key`: the one it has, or else `anchor_ms`, adopted now and owed to
        the disk until `anchors_stored` (see `unstored`)."""
        known = self._anchors.get(key)
        if known is not None:
            return known
        self._anchors[key] = anchor_ms
        self._unstored.add(key)
        return anchor_ms

    def unstored(self, keys: Iterable[Key]) -> dict[Key, int]:
        """Those of the anchors of `keys` not yet known to be durable: a point placed by one
        may be written only after a transaction that stores it committed."""
        return {key: self._anchors[key] for key in keys if key in self._unstored}

    def write_anchors(self, conn: sqlite3.Connection, anchors: Mapping[Key, int]) -> None:
        """Store anchors inside the caller's durable transaction; the first stored one wins."""
        conn.executemany(
            "INSERT OR IGNORE INTO anchors (device, boot, anchor_ms) VALUES (?, ?, ?)",
            [(d, b, a) for (d, b), a in anchors.items()],
        )

    def anchors_stored(self, keys: Iterable[Key]) -> None:
        self._unstored.difference_update(keys)

    def is_seen(self, key: Key, seq: int) -> bool:
        seen = self._seen.get(key)
        return seen is not None and seq in seen

    def mark_seen(self, marks: Mapping[Key, Iterable[int]]) -> None:
        """Record seqs made durable. Written without an fsync: losing this record costs only
        an idempotent re-write of the same points, never a lost or moved reading."""
        for key, seqs in marks.items():
            self._seen.setdefault(key, SeqSet()).add_all(seqs)
        with self._db.transaction(durable=False) as conn:
            for device, boot in marks:
                conn.execute("DELETE FROM seen WHERE device = ? AND boot = ?", (device, boot))
                conn.executemany(
                    "INSERT INTO seen (device, boot, lo, hi) VALUES (?, ?, ?, ?)",
                    [(device, boot, lo, hi) for lo, hi in self._seen[(device, boot)].intervals()],
                )

    def highest_seen(self, key: Key) -> int | None:
        seen = self._seen.get(key)
        return None if seen is None else seen.highest
