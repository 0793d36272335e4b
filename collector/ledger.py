"""What the collector knows of each device's boots: where their readings lie in time, and which
are already durable. `docs/api.md` states the rules for devices; this module enforces them.

Identity. A boot is a *life*: (device, boot, nonce). The nonce is the random number the firmware
draws at each boot (0 when a device sends none). A board whose EEPROM was erased starts at boot 1
again with another nonce: a new life, not a re-send. Without a nonce, a request whose uptime is
below a reading already stored for its boot can only come from a new life, since uptime never
goes back within one; so can one for a boot above the current life's whose newest life came
before the current one, since boots follow each other; one that carries the first reading
of a life the device has left, which the device forgot when it was first acknowledged; and one
that carries a held seq with an uptime a re-send cannot have, or, at either end of a run, a
reading whose digest (meter, uptime, measured values) is not the stored one's. Each gets the
next unused negative nonce. Inside a run nothing is kept per reading: a request's batch starts
at the device's oldest unacknowledged reading, so a new life's holds the start of every run of
the left life it overlaps.

Time. A life's readings are placed by segments: from `first_seq` on, time = anchor + offset. The
first segment's anchor is the one the life's first request proposed (arrival minus uptime), but
never before the last time stored for the device plus one millisecond, so two boots never share a
time stamp. When the device's current life proposes an anchor that differs from its segment's
by more than a resonator's drift explains (the Pi's clock was wrong at first contact, or stepped
since) and the proposed place is free, readings from the next seq on are placed by the new
proposal: a new segment. Back in time only for an error of an hour or more, since the next
readings then land on the boot's own latest ones (quarantined) until real time catches up; and
never right behind readings of the device within the hour ahead (stamped ahead while the Pi's
clock was wrong): the segment starts after them.
Every segment records the time range its points cover, and a reading whose time falls within
another segment's range is quarantined, never written over that segment's points.

Order. Within a life, uptime grows with seq. Each run of durable seqs records the offsets of its
first and last reading, and readings prepared but not yet durable are held as pending, so a new
reading must lie strictly between the offsets of its neighbours: two readings of one life never
share a time stamp. One that does not fit is quarantined.

Bounds. A life keeps at most `MAX_RUNS` runs (two offsets and two digests each, in memory and
in the `runs` rows), whatever the history of gaps: when more are open, the oldest are given up,
and a reading that arrives for a given-up seq is quarantined (kept and acknowledged, but not
placed, since whether it was stored before can no longer be told).
"""

from __future__ import annotations

import logging
import sqlite3
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from hashlib import blake2b
from itertools import pairwise
from operator import attrgetter

from collector.runs import Runs
from collector.statedb import StateDB
from collector.submission import Candidate
from energymon.schema import FIELDS

log = logging.getLogger(__name__)

LifeKey = tuple[str, int, int]
SegmentRow = tuple[str, int, int, int, int, int, int | None, int | None]
MAX_RUNS = 64
# Beyond this disagreement between a device's proposed anchor and its segment's, the anchor is
# wrong, not the resonator: a floor for short uptimes, a share of the uptime for long ones.
REANCHOR_MIN_MS = 60_000
REANCHOR_DRIFT = 0.01
# Moving a boot back in time puts its next readings on its own latest ones until real time
# catches up, and those are quarantined: worth it only to undo a large error.
REANCHOR_BACK_MIN_MS = 3_600_000

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS lives (
        device TEXT NOT NULL, boot INTEGER NOT NULL, nonce INTEGER NOT NULL,
        adopted INTEGER NOT NULL, floor_seq INTEGER NOT NULL DEFAULT 0, floor_off INTEGER,
        PRIMARY KEY (device, boot, nonce))""",
    """CREATE TABLE IF NOT EXISTS segments (
        device TEXT NOT NULL, boot INTEGER NOT NULL, nonce INTEGER NOT NULL,
        first_seq INTEGER NOT NULL, anchor_ms INTEGER NOT NULL, proposed_ms INTEGER NOT NULL,
        t_min INTEGER, t_max INTEGER, PRIMARY KEY (device, boot, nonce, first_seq))""",
    """CREATE TABLE IF NOT EXISTS runs (
        device TEXT NOT NULL, boot INTEGER NOT NULL, nonce INTEGER NOT NULL,
        lo INTEGER NOT NULL, hi INTEGER NOT NULL, lo_off INTEGER, hi_off INTEGER,
        lo_digest INTEGER, hi_digest INTEGER, PRIMARY KEY (device, boot, nonce, lo))""",
)
# Columns added since the table was first made: (name, type).
RUN_COLUMNS_ADDED = (("lo_digest", "INTEGER"), ("hi_digest", "INTEGER"))


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


class _Timeline:
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


@dataclass(frozen=True, slots=True)
class LedgerRows:
    """Lives and segments as they were when a group was prepared (its write stage stores them
    on another thread while the next group changes the segments)."""

    lives: list[tuple[LifeKey, int]]
    segments: list[SegmentRow]

    def __bool__(self) -> bool:
        return bool(self.lives or self.segments)


class Ledger:
    def __init__(self, db: StateDB) -> None:
        self._db = db
        with db.transaction() as conn:
            for statement in SCHEMA:
                conn.execute(statement)
            _add_run_columns(conn)
            _migrate(conn)
        self._lives: dict[LifeKey, Life] = {}
        self._timelines: dict[str, _Timeline] = {}
        # Per device its newest life, and per (device, boot) the newest life of that boot.
        self._current: dict[str, Life] = {}
        self._newest: dict[tuple[str, int], Life] = {}
        self._adopted = 0
        for device, boot, nonce, adopted, floor_seq, floor_off in db.fetch_all(
            "SELECT device, boot, nonce, adopted, floor_seq, floor_off FROM lives ORDER BY adopted"
        ):
            life = self._add_life((device, boot, nonce), adopted)
            life.runs.floor_seq, life.runs.floor_off = floor_seq, floor_off
        for device, boot, nonce, first, anchor, proposed, t_min, t_max in db.fetch_all(
            "SELECT device, boot, nonce, first_seq, anchor_ms, proposed_ms, t_min, t_max "
            "FROM segments ORDER BY first_seq"
        ):
            key = (device, boot, nonce)
            segment = Segment(key, first, anchor, proposed, t_min, t_max)
            self._lives[key].segments.append(segment)
            self._timeline(device).add(segment)
        for device, boot, nonce, lo, hi, lo_off, hi_off, lo_digest, hi_digest in db.fetch_all(
            "SELECT device, boot, nonce, lo, hi, lo_off, hi_off, lo_digest, hi_digest FROM runs "
            "ORDER BY lo"
        ):
            runs = self._lives[(device, boot, nonce)].runs
            runs.load((lo, hi, lo_off, hi_off, lo_digest, hi_digest))
        # Lives and segments adopted in memory whose rows are not yet durable.
        self._unstored: dict[LifeKey, Life] = {}
        self._changed_segments: dict[tuple[LifeKey, int], Segment] = {}

    def _add_life(self, key: LifeKey, adopted: int) -> Life:
        life = Life(key, adopted)
        self._lives[key] = life
        device, boot, _ = key
        # Lives are added in the order they were adopted.
        self._current[device] = life
        self._newest[(device, boot)] = life
        self._adopted = max(self._adopted, adopted)
        return life

    def _timeline(self, device: str) -> _Timeline:
        timeline = self._timelines.get(device)
        if timeline is None:
            timeline = self._timelines[device] = _Timeline()
        return timeline

    def _new_segment(self, life: Life, first_seq: int, anchor_ms: int, proposed_ms: int) -> None:
        segment = Segment(life.key, first_seq, anchor_ms, proposed_ms)
        life.segments.append(segment)
        self._timeline(life.key[0]).add(segment)
        self._changed_segments[(life.key, first_seq)] = segment

    # --- identity ------------------------------------------------------------------------------

    def life_of(
        self,
        device: str,
        boot: int,
        nonce: int | None,
        proposed_ms: int,
        uptime_ms: int,
        *,
        readings: Sequence[Candidate] = (),
    ) -> Life:
        """The life a request belongs to, adopted now when it is new."""
        if nonce is None:
            # Older firmware sends no nonce, and newer firmware none with an earlier boot's
            # batches (it kept no nonce with them): the newest life of that boot is meant.
            life = self._newest_of_boot(device, boot)
            if life is None:
                return self._adopt((device, boot, 0), proposed_ms)
            highest = life.highest_offset
            current = self._current[device]
            if (
                (highest is not None and uptime_ms < highest)
                # Boots follow each other and only earlier boots' batches are sent: a boot
                # above the current life's, last heard from before it, was counted anew.
                or (life is not current and boot > current.key[1])
                # A device forgets its boot's first reading at the boot's first
                # acknowledgement, and sends an earlier boot's batches only when acknowledged.
                or (life is not current and any(r.seq == 1 for r in readings) and 1 in life.runs)
                # A re-sent reading is the reading it was: one with an uptime it cannot have,
                # or other values than the reading kept at a run's end, is another's.
                or any(_held_elsewhen(life.runs, r) for r in readings)
            ):
                fresh = min(n for (d, b, n) in self._lives if (d, b) == (device, boot)) - 1
                fresh = min(fresh, -1)
                log.warning(
                    "device %s: boot %d again (uptime %d ms, its readings up to %s ms, the "
                    "device's current boot %d): a new life of the device (erased EEPROM or new "
                    "board)",
                    device, boot, uptime_ms, highest, current.key[1],
                )  # fmt: skip
                return self._adopt((device, boot, fresh), proposed_ms)
            return life
        life = self._lives.get((device, boot, nonce))
        return life if life is not None else self._adopt((device, boot, nonce), proposed_ms)

    def _newest_of_boot(self, device: str, boot: int) -> Life | None:
        return self._newest.get((device, boot))

    def _adopt(self, key: LifeKey, proposed_ms: int) -> Life:
        floor = self.device_floor(key[0])
        anchor = proposed_ms if floor is None else max(proposed_ms, floor + 1)
        if anchor != proposed_ms:
            log.info(
                "device %s boot %d: placed %d ms later than proposed, after the device's last "
                "stored reading (its previous boot's clock ran ahead, or the Pi's stepped back)",
                key[0], key[1], anchor - proposed_ms,
            )  # fmt: skip
        life = self._add_life(key, self._adopted + 1)
        self._new_segment(life, 1, anchor, proposed_ms)
        self._unstored[key] = life
        return life

    def is_current(self, life: Life) -> bool:
        """The device's newest life: the only one whose requests carry a meaningful uptime."""
        return self._current[life.key[0]] is life

    def reanchor_if_wrong(self, life: Life, proposed_ms: int, uptime_ms: int) -> None:
        """A new segment from the next seq when the device's proposal and its segment's anchor
        disagree by more than drift explains: at the proposal, or right after the device's
        readings within the hour ahead of it; none when one of them is at the proposed place
        and they reach further."""
        segment = life.segments[-1]
        drift_ms = uptime_ms * REANCHOR_DRIFT
        shift_ms = proposed_ms - segment.anchor_ms
        if shift_ms >= 0 and shift_ms <= max(REANCHOR_MIN_MS, drift_ms):
            return
        if shift_ms < 0 and -shift_ms <= max(REANCHOR_BACK_MIN_MS, drift_ms):
            return
        following = proposed_ms + (life.highest_offset or 0) + 1
        timeline = self._timeline(life.key[0])
        # Readings stamped ahead of real time while the Pi's clock was wrong may lie just in
        # front of the proposed place, where the boot's next readings would walk into them (to
        # be quarantined): it is placed after them when they end within the hour.
        landing = timeline.clear_from(following, REANCHOR_BACK_MIN_MS)
        if landing - following > REANCHOR_BACK_MIN_MS:
            if timeline.covering(following) is not None:
                # Moved after a previous boot's readings: it stays there, rather than have its
                # readings quarantined for landing on that boot's.
                return
            landing = following
        anchor_ms = proposed_ms + landing - following
        if anchor_ms <= segment.anchor_ms + max(REANCHOR_MIN_MS, drift_ms) and (
            anchor_ms >= segment.anchor_ms - max(REANCHOR_BACK_MIN_MS, drift_ms)
        ):
            return
        first = life.highest_seq + 1
        device, boot, _ = life.key
        log.warning(
            "device %s boot %d: its uptime puts the boot %d ms from where it was anchored (the "
            "Pi's clock was wrong, or stepped); readings from seq %d on are placed anew, %d ms "
            "after the proposed place",
            device, boot, proposed_ms - segment.anchor_ms, first, anchor_ms - proposed_ms,
        )  # fmt: skip
        if segment.first_seq == first:
            # Never placed a reading: replaced, not kept as an empty stretch.
            life.segments.pop()
            self._timeline(device).segments.remove(segment)
        self._new_segment(life, first, anchor_ms, proposed_ms)

    def device_floor(self, device: str) -> int | None:
        """The latest time taken by any of the device's readings, stored or prepared."""
        return self._timeline(device).latest

    # --- placing a reading ---------------------------------------------------------------------

    def place(self, life: Life, seq: int, offset: int) -> int | str:
        """The time of a new reading, held as pending; or why it cannot be placed."""
        if seq <= life.runs.floor_seq and seq not in life.runs:
            return "arrived after the collector stopped waiting for its seq"
        below, above = life.neighbours(seq)
        if (below is not None and offset <= below) or (above is not None and offset >= above):
            return "uptime_ms does not grow with seq: the device's clock went back"
        segment = life.segment_for(seq)
        time_ms = segment.anchor_ms + offset
        problem = self._overlap(life, segment, seq, time_ms)
        if problem is not None:
            return problem
        segment = life.segment_for(seq)
        old_t_min = segment.t_min
        if segment.t_min is None or segment.t_max is None:
            segment.t_min = segment.t_max = time_ms
        else:
            segment.t_min = min(segment.t_min, time_ms)
            segment.t_max = max(segment.t_max, time_ms)
        self._timeline(life.key[0]).moved(segment, old_t_min)
        self._changed_segments[(life.key, segment.first_seq)] = segment
        life.hold(seq, offset)
        return time_ms

    def place_run(
        self, life: Life, seqs: Sequence[int], offsets: Sequence[int]
    ) -> list[int] | None:
        """The times of new readings that all come after everything the life holds, placed and
        held at once as `place` would place and hold them one by one: seqs ascending above its
        highest seq (durable or pending, so above any given-up one), uptimes ascending above
        its newest, all in its last segment, on a stretch of time no other segment's readings
        cover. None when any of that does not hold: the caller then places them one by one.
        What a device sends while it runs is such a run, so the common case costs one set of
        checks, not one per reading."""
        segment = life.segments[-1]
        first = seqs[0]
        if first <= life.highest_seq or first < segment.first_seq:
            return None
        if any(b <= a for a, b in pairwise(seqs)) or any(b <= a for a, b in pairwise(offsets)):
            return None
        below, _ = life.neighbours(first)
        if below is not None and offsets[0] <= below:
            return None
        anchor_ms = segment.anchor_ms
        times = [anchor_ms + offset for offset in offsets]
        timeline = self._timeline(life.key[0])
        other = timeline.covering(times[0])
        if other is not None and other is not segment:
            return None
        # A segment's readings then span [low, high]: another segment starting in it would be
        # covered, as one covering any of these times would cover the first of them.
        low = times[0] if segment.t_min is None else min(segment.t_min, times[0])
        high = times[-1] if segment.t_max is None else max(segment.t_max, times[-1])
        if timeline.starting_within(low, high, segment) is not None:
            return None
        old_t_min = segment.t_min
        segment.t_min, segment.t_max = low, high
        timeline.moved(segment, old_t_min)
        self._changed_segments[(life.key, segment.first_seq)] = segment
        life.pending.update(zip(seqs, offsets, strict=True))
        life.pending_seqs.extend(seqs)
        return times

    def _overlap(self, life: Life, segment: Segment, seq: int, time_ms: int) -> str | None:
        timeline = self._timeline(life.key[0])
        other = timeline.covering(time_ms)
        if other is not None and other is not segment:
            return f"its time is taken by readings of boot {other.life[1]}"
        if segment.t_min is None or segment.t_max is None:
            return None
        low, high = min(segment.t_min, time_ms), max(segment.t_max, time_ms)
        between = timeline.starting_within(low, high, segment)
        if between is None:
            return None
        if time_ms > segment.t_max and segment is life.segments[-1] and seq > life.highest_seq:
            # Past another segment's readings: go on beyond them, with the same anchor.
            self._new_segment(life, seq, segment.anchor_ms, segment.proposed_ms)
            return None
        return f"its time lies beyond readings of boot {between.life[1]}"

    # --- durability ----------------------------------------------------------------------------

    def unstored(self) -> LedgerRows:
        """Rows of lives and segments changed since the last call: to be stored, in the
        transaction that precedes the points placed by them."""
        rows = LedgerRows(
            [(key, life.adopted) for key, life in self._unstored.items()],
            [s.row() for s in self._changed_segments.values()],
        )
        self._unstored.clear()
        self._changed_segments.clear()
        return rows

    def requeue(self, rows: LedgerRows) -> None:
        """Rows a failed group did not store: owed by the next one."""
        for key, _ in rows.lives:
            self._unstored[key] = self._lives[key]
        for row in rows.segments:
            key, first = (row[0], row[1], row[2]), row[3]
            for segment in self._lives[key].segments:
                if segment.first_seq == first:
                    self._changed_segments[(key, first)] = segment

    @staticmethod
    def write_rows(conn: sqlite3.Connection, rows: LedgerRows) -> None:
        conn.executemany(
            "INSERT OR IGNORE INTO lives (device, boot, nonce, adopted) VALUES (?, ?, ?, ?)",
            [(*key, adopted) for key, adopted in rows.lives],
        )
        conn.executemany(
            "INSERT OR REPLACE INTO segments (device, boot, nonce, first_seq, anchor_ms, "
            "proposed_ms, t_min, t_max) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            rows.segments,
        )

    def is_seen(self, life: Life, seq: int) -> bool:
        return seq in life.runs

    def release(self, life: Life, seqs: Iterable[int]) -> None:
        for seq in seqs:
            life.release(seq)

    def mark_seen(self, marks: Mapping[LifeKey, list[Candidate]]) -> None:
        """Pending readings made durable. Written without an fsync: losing this record costs
        only an idempotent re-write of the same points, never a lost or moved reading."""
        for key, marked in marks.items():
            life = self._lives[key]
            runs, pending = life.runs, life.pending
            seqs = sorted(map(_SEQ, marked))
            offsets = [pending.pop(seq, None) for seq in seqs]
            first, last = offsets[0], offsets[-1]
            if not (
                seqs[-1] - seqs[0] == len(seqs) - 1
                and first is not None
                and last is not None
                and None not in offsets
                and runs.add_stretch(seqs[0], seqs[-1], first, last)
            ):
                for seq, offset in zip(seqs, offsets, strict=True):
                    runs.add(seq, offset)
            for r in _stretch_ends(marked, seqs):
                if runs.is_end(r.seq):
                    runs.seal(r.seq, reading_digest(r))
            # Released all at once: one pass over the pending seqs, not one deletion each.
            life.pending_seqs = [seq for seq in life.pending_seqs if seq in pending]
            while len(life.runs) > MAX_RUNS:
                life.runs.give_up_oldest()
        with self._db.transaction(durable=False) as conn:
            for key in marks:
                runs = self._lives[key].runs
                conn.execute("DELETE FROM runs WHERE device = ? AND boot = ? AND nonce = ?", key)
                conn.executemany(
                    "INSERT INTO runs (device, boot, nonce, lo, hi, lo_off, hi_off, lo_digest, "
                    "hi_digest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [(*key, *row) for row in runs.rows()],
                )
                conn.execute(
                    "UPDATE lives SET floor_seq = ?, floor_off = ? "
                    "WHERE device = ? AND boot = ? AND nonce = ?",
                    (runs.floor_seq, runs.floor_off, *key),
                )

    def life(self, key: LifeKey) -> Life:
        return self._lives[key]


def _held_elsewhen(runs: Runs, reading: Candidate) -> bool:
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
_SEQ = attrgetter("seq")


def reading_digest(reading: Candidate) -> int:
    """What a re-send of `reading` repeats exactly (its meter, uptime and measured values as
    sent, valid or not), in a signed 64-bit integer: stable across processes, unlike `hash`."""
    text = ascii((reading.sensor, reading.offset_ms, *map(reading.raw.get, _MEASURED)))
    return int.from_bytes(blake2b(text.encode(), digest_size=8).digest(), "big", signed=True)


def _stretch_ends(readings: list[Candidate], seqs: list[int]) -> list[Candidate]:
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


def _add_run_columns(conn: sqlite3.Connection) -> None:
    """Give a runs table made by an older version the columns added since (unknown: NULL)."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(runs)")}
    for name, kind in RUN_COLUMNS_ADDED:
        if name not in columns:
            conn.execute(f"ALTER TABLE runs ADD COLUMN {name} {kind}")


def _migrate(conn: sqlite3.Connection) -> None:
    """Anchors and seen-sets kept by versions without lives become lives with unknown offsets;
    each segment takes the whole span from its anchor to now, so that nothing new lands on it."""
    if conn.execute("SELECT count(*) FROM lives").fetchone()[0]:
        return
    if not conn.execute("SELECT name FROM sqlite_master WHERE name = 'anchors'").fetchone():
        return
    rows = conn.execute("SELECT device, boot, anchor_ms FROM anchors ORDER BY rowid").fetchall()
    for adopted, (device, boot, anchor) in enumerate(rows, start=1):
        conn.execute(
            "INSERT INTO lives (device, boot, nonce, adopted) VALUES (?, ?, 0, ?)",
            (device, boot, adopted),
        )
        conn.execute(
            "INSERT INTO segments (device, boot, nonce, first_seq, anchor_ms, proposed_ms, "
            "t_min, t_max) VALUES (?, ?, 0, 1, ?, ?, ?, "
            "(SELECT max(max_time_ms) FROM write_journal))",
            (device, boot, anchor, anchor, anchor),
        )
    conn.execute(
        "INSERT INTO runs (device, boot, nonce, lo, hi) SELECT device, boot, 0, lo, hi FROM seen"
    )
