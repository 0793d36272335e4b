"""The durable seqs of one life, as runs that remember the uptimes at their ends, and a digest of
the readings there.

Bounded whatever the history of gaps: the ledger gives up the oldest runs beyond its limit, and
what lies below the floor can no longer be told from a re-send.
"""

from __future__ import annotations

from bisect import bisect_right
from hashlib import blake2b
from itertools import pairwise

from collector.submission import Candidate
from energymon.schema import FIELDS

# lo, hi, the offsets of the readings at lo and hi, their digests.
RunRow = tuple[int, int, int | None, int | None, int | None, int | None]


class Runs:
    """The durable seqs of one life: sorted, disjoint, non-adjacent runs, each with the offsets
    of its first and last reading (None where unknown, for state kept by older versions), and
    the digests of the readings at its first and last seq (None until `seal` gives them)."""

    __slots__ = (
        "end_digests", "end_offs", "ends", "floor_off", "floor_seq", "start_digests",
        "start_offs", "starts",
    )  # fmt: skip

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []
        self.start_offs: list[int | None] = []
        self.end_offs: list[int | None] = []
        self.start_digests: list[int | None] = []
        self.end_digests: list[int | None] = []
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
        # quarantined reading (None) extends the run without moving them. Its digests are those
        # of the readings at its very ends: a new end's is unknown until sealed.
        if joins_left and joins_right:
            self.ends[i - 1] = self.ends[i]
            self.end_offs[i - 1] = _known(self.end_offs[i], offset, self.end_offs[i - 1])
            self.end_digests[i - 1] = self.end_digests[i]
            del self.starts[i], self.ends[i], self.start_offs[i], self.end_offs[i]
            del self.start_digests[i], self.end_digests[i]
        elif joins_left:
            # The common case, a reading right after its run's end: spelt out, not `_known`.
            self.ends[i - 1] = seq
            self.end_digests[i - 1] = None
            if offset is not None:
                self.end_offs[i - 1] = offset
        elif joins_right:
            self.starts[i] = seq
            self.start_digests[i] = None
            if offset is not None:
                self.start_offs[i] = offset
        else:
            self._insert(i, seq, seq, offset, offset)

    def add_stretch(self, lo: int, hi: int, lo_off: int, hi_off: int) -> bool:
        """Seqs `lo`..`hi`, none held, every one's offset known (`lo_off` and `hi_off` those of
        the first and last), as `add` would add them one by one, when they start a run or
        extend one and reach no run above: what a device sends while it runs. False, with
        nothing changed, otherwise."""
        i = bisect_right(self.starts, lo)
        if (i > 0 and self.ends[i - 1] >= lo) or (
            i < len(self.starts) and self.starts[i] <= hi + 1
        ):
            return False
        if i > 0 and self.ends[i - 1] == lo - 1:
            self.ends[i - 1] = hi
            self.end_offs[i - 1] = hi_off
            self.end_digests[i - 1] = None
        else:
            self._insert(i, lo, hi, lo_off, hi_off)
        return True

    def _insert(self, i: int, lo: int, hi: int, lo_off: int | None, hi_off: int | None) -> None:
        self.starts.insert(i, lo)
        self.ends.insert(i, hi)
        self.start_offs.insert(i, lo_off)
        self.end_offs.insert(i, hi_off)
        self.start_digests.insert(i, None)
        self.end_digests.insert(i, None)

    def is_end(self, seq: int) -> bool:
        """Whether `seq` is the first or the last seq of a run."""
        i = bisect_right(self.starts, seq) - 1
        return i >= 0 and (seq == self.starts[i] or seq == self.ends[i])

    def seal(self, seq: int, digest: int) -> None:
        """Keep `digest` as that of the reading at `seq`, where `seq` ends a run."""
        i = bisect_right(self.starts, seq) - 1
        if i >= 0 and seq == self.starts[i]:
            self.start_digests[i] = digest
        if i >= 0 and seq == self.ends[i]:
            self.end_digests[i] = digest

    def give_up_oldest(self) -> None:
        """Forget the oldest run: its seqs, and the gap above it, fall below the floor."""
        self.floor_seq = self.ends[0]
        self.floor_off = self.end_offs[0]
        del self.starts[0], self.ends[0], self.start_offs[0], self.end_offs[0]
        del self.start_digests[0], self.end_digests[0]

    def load(self, row: RunRow) -> None:
        """A run as `rows` gave it, above every run loaded so far."""
        lo, hi, lo_off, hi_off, lo_digest, hi_digest = row
        self.starts.append(lo)
        self.ends.append(hi)
        self.start_offs.append(lo_off)
        self.end_offs.append(hi_off)
        self.start_digests.append(lo_digest)
        self.end_digests.append(hi_digest)

    def rows(self) -> list[RunRow]:
        columns = (self.start_offs, self.end_offs, self.start_digests, self.end_digests)
        return list(zip(self.starts, self.ends, *columns, strict=True))


def _known(*offsets: int | None) -> int | None:
    return next((o for o in offsets if o is not None), None)


def held_by_another(runs: Runs, reading: Candidate) -> bool:
    """Whether the reading's seq is held by a reading it cannot be a re-send of: the first seq
    of a run has at most the smallest uptime known in the run, its last at least the largest
    (uptime grows with seq; a quarantined reading's is not known, so the known ones may be inner
    ones); and a reading at either end is known by its digest. Inside a run nothing is kept to
    tell a re-send from another reading."""
    seq = reading.seq
    i = bisect_right(runs.starts, seq) - 1
    if i < 0 or seq > runs.ends[i]:
        return False
    at_start, at_end = seq == runs.starts[i], seq == runs.ends[i]
    if not (at_start or at_end):
        return False
    low, high = runs.start_offs[i], runs.end_offs[i]
    if (at_start and low is not None and reading.offset_ms > low) or (
        at_end and high is not None and reading.offset_ms < high
    ):
        return True
    kept = runs.start_digests[i] if at_start else runs.end_digests[i]
    return kept is not None and kept != reading_digest(reading)


_MEASURED = tuple(f.name for f in FIELDS)


def reading_digest(reading: Candidate) -> int:
    """What a re-send of `reading` repeats exactly (its meter, uptime and measured values as
    sent, valid or not), in a signed 64-bit integer: stable across processes, unlike `hash`."""
    text = ascii((reading.sensor, reading.offset_ms, *map(reading.raw.get, _MEASURED)))
    return int.from_bytes(blake2b(text.encode(), digest_size=8).digest(), "big", signed=True)


def stretch_ends(readings: list[Candidate], seqs: list[int]) -> list[Candidate]:
    """The first and last reading of each stretch of consecutive seqs among `readings`, whose
    seqs are `seqs`, sorted: only those can end a run once they are added. Usually one stretch,
    in order already (one request's readings); gaps and late fills make more."""
    first, last = readings[0], readings[-1]
    if seqs[-1] - seqs[0] == len(seqs) - 1 and (first.seq, last.seq) == (seqs[0], seqs[-1]):
        return [first, last]
    by_seq = {r.seq: r for r in readings}
    ends = [seqs[0]]
    for before, after in pairwise(seqs):
        if after != before + 1:
            ends += (before, after)
    ends.append(seqs[-1])
    return [by_seq[seq] for seq in ends]
