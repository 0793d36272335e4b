"""A device's lives and where their readings lie in time: a life's segments (from a seq on,
time = anchor + offset) and the timeline of all segments of a device, on which no two
segments' readings overlap. The ledger (`collector.ledger`) applies the rules to them."""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from dataclasses import dataclass, field

from collector.runs import Runs

LifeKey = tuple[str, int, int]
SegmentRow = tuple[str, int, int, int, int, int, int | None, int | None]


@dataclass(slots=True)
class Segment:
    """From `first_seq` on, a life's readings lie at `anchor_ms` + offset."""

    life: LifeKey
    first_seq: int
    anchor_ms: int
    # What the device proposed: differs from the anchor when it was moved after the device's
    # last stored time, and is what later proposals are compared with.
    proposed_ms: int
    t_min: int | None = None
    t_max: int | None = None

    def covers(self, time_ms: int) -> bool:
        return (
            self.t_min is not None
            and self.t_max is not None
            and (self.t_min <= time_ms <= self.t_max)
        )

    def row(self) -> SegmentRow:
        device, boot, nonce = self.life
        return (device, boot, nonce, self.first_seq, self.anchor_ms, self.proposed_ms,
                self.t_min, self.t_max)  # fmt: skip


@dataclass(slots=True)
class Life:
    key: LifeKey
    adopted: int
    runs: Runs = field(default_factory=Runs)
    segments: list[Segment] = field(default_factory=list)
    # Prepared but not yet durable: seq -> offset, and their seqs sorted.
    pending: dict[int, int] = field(default_factory=dict)
    pending_seqs: list[int] = field(default_factory=list)

    def segment_for(self, seq: int) -> Segment:
        segments = self.segments
        if len(segments) == 1 or seq >= segments[-1].first_seq:
            return segments[-1]
        i = bisect_right([s.first_seq for s in segments], seq) - 1
        return segments[max(i, 0)]

    @property
    def highest_seq(self) -> int:
        return max(self.runs.highest or 0, self.pending_seqs[-1] if self.pending_seqs else 0)

    @property
    def highest_offset(self) -> int | None:
        """The largest offset of a stored or pending reading, where known."""
        offsets = [o for o in (*self.runs.end_offs, *self.pending.values()) if o is not None]
        return max(offsets, default=None)

    def neighbours(self, seq: int) -> tuple[int | None, int | None]:
        below, above = self.runs.neighbours(seq)
        i = bisect_right(self.pending_seqs, seq)
        if i > 0:
            pending_below = self.pending[self.pending_seqs[i - 1]]
            below = pending_below if below is None else max(below, pending_below)
        if i < len(self.pending_seqs):
            pending_above = self.pending[self.pending_seqs[i]]
            above = pending_above if above is None else min(above, pending_above)
        return below, above

    def hold(self, seq: int, offset: int) -> None:
        self.pending[seq] = offset
        insort(self.pending_seqs, seq)

    def release(self, seq: int) -> None:
        if self.pending.pop(seq, None) is not None:
            del self.pending_seqs[bisect_right(self.pending_seqs, seq) - 1]


class Timeline:
    """A device's segments ordered by their first reading's time. Segments never overlap in
    time, so one bisection finds the only one that can cover a time, and a device with years of
    boots costs no more per reading than one with a single boot."""

    def __init__(self) -> None:
        self.segments: list[Segment] = []
        self.latest: int | None = None
        self._starts: list[int] = []
        self._ordered: list[Segment] = []
        self._stale = False

    def add(self, segment: Segment) -> None:
        self.segments.append(segment)
        self.moved(segment, None)

    def moved(self, segment: Segment, old_t_min: int | None) -> None:
        """A segment's range grew: only a new first time reorders the timeline."""
        if segment.t_max is not None and (self.latest is None or segment.t_max > self.latest):
            self.latest = segment.t_max
        if segment.t_min != old_t_min:
            self._stale = True

    def _index(self) -> tuple[list[int], list[Segment]]:
        if self._stale:
            placed = sorted((s for s in self.segments if s.t_min is not None), key=_first_time)
            self._ordered = placed
            self._starts = [_first_time(s) for s in placed]
            self._stale = False
        return self._starts, self._ordered

    def covering(self, time_ms: int) -> Segment | None:
        starts, ordered = self._index()
        i = bisect_right(starts, time_ms) - 1
        return ordered[i] if i >= 0 and ordered[i].covers(time_ms) else None

    def clear_from(self, time_ms: int, reach_ms: int) -> int:
        """The first time from `time_ms` on that no segment covers, past every segment that
        starts within `reach_ms` of the time reached so far."""
        starts, ordered = self._index()
        reached = time_ms
        i = bisect_right(starts, reached) - 1
        if i >= 0 and ordered[i].covers(reached):
            reached = _last_time(ordered[i]) + 1
        i += 1
        while i < len(starts) and starts[i] <= reached + reach_ms:
            reached = max(reached, _last_time(ordered[i]) + 1)
            i += 1
        return reached

    def starting_within(self, low: int, high: int, other_than: Segment) -> Segment | None:
        """A segment, other than `other_than`, whose first reading lies in [low, high]."""
        starts, ordered = self._index()
        i = bisect_left(starts, low)
        while i < len(starts) and starts[i] <= high:
            if ordered[i] is not other_than:
                return ordered[i]
            i += 1
        return None


def _first_time(segment: Segment) -> int:
    assert segment.t_min is not None
    return segment.t_min


def _last_time(segment: Segment) -> int:
    assert segment.t_max is not None
    return segment.t_max
