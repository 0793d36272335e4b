"""The durable seqs of one life, as runs that remember the uptimes at their ends.

Bounded whatever the history of gaps: the ledger gives up the oldest runs beyond its limit, and
what lies below the floor can no longer be told from a re-send.
"""

from __future__ import annotations

from bisect import bisect_right


class Runs:
    """The durable seqs of one life: sorted, disjoint, non-adjacent runs, each with the offsets
    of its first and last reading (None where unknown, for state kept by older versions)."""

    __slots__ = ("end_offs", "ends", "floor_off", "floor_seq", "start_offs", "starts")

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.start_offs: list[int | None] = []
        self.end_offs: list[int | None] = []
        # Seqs up to here that are in no run were given up (see MAX_RUNS).
        self.floor_seq = 0
        self.floor_off: int | None = None

    def __contains__(self, seq: int) -> bool:
        i = bisect_right(self.starts, seq) - 1
        return i >= 0 and seq <= self.ends[i]

    def __len__(self) -> int:
        return len(self.starts)

    @property
    def highest(self) -> int | None:
        return self.ends[-1] if self.ends else None

    def neighbours(self, seq: int) -> tuple[int | None, int | None]:
        """Offsets of the nearest durable readings below and above `seq` (not in a run)."""
        i = bisect_right(self.starts, seq)
        below = self.end_offs[i - 1] if i > 0 else self.floor_off
        above = self.start_offs[i] if i < len(self.starts) else None
        return below, above

    def add(self, seq: int, offset: int | None) -> None:
        i = bisect_right(self.starts, seq)
        joins_left = i > 0 and self.ends[i - 1] == seq - 1
        joins_right = i < len(self.starts) and self.starts[i] == seq + 1
        # A run's end offsets are those of its outermost readings with a known offset: a
        # quarantined reading (None) extends the run without moving them.
        if joins_left and joins_right:
            self.ends[i - 1] = self.ends[i]
            self.end_offs[i - 1] = _known(self.end_offs[i], offset, self.end_offs[i - 1])
            del self.starts[i], self.ends[i], self.start_offs[i], self.end_offs[i]
        elif joins_left:
            # The common case, a reading right after its run's end: spelt out, not `_known`.
            self.ends[i - 1] = seq
            if offset is not None:
                self.end_offs[i - 1] = offset
        elif joins_right:
            self.starts[i] = seq
            if offset is not None:
                self.start_offs[i] = offset
        else:
            self.starts.insert(i, seq)
            self.ends.insert(i, seq)
            self.start_offs.insert(i, offset)
            self.end_offs.insert(i, offset)

    def give_up_oldest(self) -> None:
        """Forget the oldest run: its seqs, and the gap above it, fall below the floor."""
        self.floor_seq = self.ends[0]
        self.floor_off = self.end_offs[0]
        del self.starts[0], self.ends[0], self.start_offs[0], self.end_offs[0]

    def rows(self) -> list[tuple[int, int, int | None, int | None]]:
        return list(zip(self.starts, self.ends, self.start_offs, self.end_offs, strict=True))


def _known(*offsets: int | None) -> int | None:
    return next((o for o in offsets if o is not None), None)
