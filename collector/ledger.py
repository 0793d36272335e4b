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
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from operator import attrgetter

from collector.lives import Life, LifeKey, Segment, SegmentRow, Timeline
from collector.runs import held_by_another, reading_digest, stretch_ends
from collector.statedb import StateDB
from collector.submission import Candidate

log = logging.getLogger(__name__)

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
        self._timelines: dict[str, Timeline] = {}
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

    def _timeline(self, device: str) -> Timeline:
        timeline = self._timelines.get(device)
        if timeline is None:
            timeline = self._timelines[device] = Timeline()
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
                or any(held_by_another(life.runs, r) for r in readings)
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
            for r in stretch_ends(marked, seqs):
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


_SEQ = attrgetter("seq")


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
