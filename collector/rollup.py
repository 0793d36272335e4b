"""The rollup worker: keeps `energymon_1m`, `energymon_1h`, `energymon_day` and
`energymon_month` equal to what the raw `electricity` points say (docs/rollups.md).

It follows the collector's write journal. Every entry not of its own kind marks the minutes of
its time range dirty (`rollup_pending` in `collector.db`, keyed by level and bucket, with the
cursor in `meta`, both in one transaction); a step then recomputes dirty minutes
from raw, the hours holding them from their minutes, the local days from their minutes and the
months from their days, each level only once the one below it is clean. A recomputed range
whose raw data changed also recomputes the minute of the next reading after it, whose
consumption is counted from the readings before it. Rollup points are written like any other:
their range is journalled (kind `rollup`) durably before the write, so the replicator copies
and verifies them. A dirty bucket is forgotten only after its points were written, so a crash
redoes work and never skips it. Only those journal entries are fsynced at once: the dirty set's
changes are committed without an fsync (the next durable commit takes them along), since a power
cut that loses them costs a redo, and each fsync of the worker's would hold up the store's.

A step reads back a bounded number of raw readings (`STEP_READINGS`), streamed in pieces, and
the collector's loop keeps the worker to a share of the time while a backlog remains, so that
rolling up never slows the acknowledgement of new readings by much.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from collector import meters
from collector.rollup_compute import (
    HOUR_MS,
    MINUTE_MS,
    Bucket,
    MinuteFolder,
    floor_ms,
    local_day_start,
    local_month_start,
    minute_price,
    next_local_day,
    next_local_month,
)
from collector.rollup_query import (
    DAY,
    HOUR,
    MINUTE,
    MONTH,
    RollupSource,
    bucket_lines,
    point_lines,
)
from collector.statedb import StateDB
from collector.watch import RollupWatch, Watch
from energymon import journal
from energymon.clock import Clock
from energymon.influx import InfluxClient
from energymon.layout import Layout, Meter
from energymon.settings import Settings
from energymon.tariff import Tariff

log = logging.getLogger(__name__)

PENDING_SCHEMA = """CREATE TABLE IF NOT EXISTS rollup_pending (
    level TEXT NOT NULL, start_ms INTEGER NOT NULL, lo_ms INTEGER NOT NULL,
    hi_ms INTEGER NOT NULL, follow INTEGER NOT NULL, since_ms INTEGER NOT NULL,
    PRIMARY KEY (level, start_ms))"""
CURSOR_KEY = "rollup_journal_cursor"
RAW, HOURLY, DAILY, MONTHLY = "raw", "hour", "day", "month"
JOURNAL_PAGE = 1000
# Raw readings one step reads back at most (a window is never shorter than a minute, the unit a
# bucket cannot be split below): a step's time, and so what it takes from the commit path, does
# not grow with the number of meters or their rate. Its memory is bounded apart from this, by
# the streamed answer's pieces.
STEP_READINGS = 2_000
# What a window is sized for before a home's rate was seen: the PZEM's rate, per meter.
READINGS_PER_METER_S = 1
# While a backlog remains the worker keeps to at most this share of the time (it pauses for the
# rest, and at least `BACKLOG_PAUSE_S`): its queries and arithmetic hold the interpreter lock
# and a CPU, and about this share of the posts arriving meanwhile wait for a step: it sets the
# tail of the acknowledgement's latency while the worker catches up.
BACKLOG_SHARE = 0.02
BACKLOG_PAUSE_S = 0.2
# How long the home's meter count, which sizes the raw windows, is reused before it is counted
# again: it is an index query, and a new meter only makes the next windows a little larger.
METER_COUNT_TTL_S = 60.0


@dataclass(frozen=True, slots=True)
class RollupConfig:
    home: str
    zone_name: str
    tariff: Tariff
    layout: Layout
    # A journal entry is followed once it is this old, so that its write has landed (a write
    # slower than the store's timeout is spooled and journalled again when drained).
    settle_ms: int
    interval_s: float
    # Work per step: raw readings read back, then hours, days and months recomputed at most.
    step_readings: int = STEP_READINGS
    budget: tuple[int, int, int] = (24, 8, 2)

    @staticmethod
    def from_settings(settings: Settings) -> RollupConfig:
        return RollupConfig(
            home=settings.home,
            zone_name=settings.timezone,
            tariff=settings.tariff_schedule(),
            layout=settings.home_layout(),
            settle_ms=int((settings.influx_timeout_s + 1.0) * 1000),
            interval_s=settings.rollup_interval_s,
        )


@dataclass(frozen=True, slots=True)
class RollupStep:
    entries: int
    # Raw spans worked on (finished or not) and the raw readings read back.
    raw_spans: int
    readings: int
    hours: int
    days: int
    months: int
    points: int
    # Dirty buckets left after this step.
    pending: int

    @property
    def more_work(self) -> bool:
        return self.pending > 0 and (self.raw_spans + self.hours + self.days + self.months) > 0


def backlog_pause_s(step_s: float) -> float:
    """How long the service pauses after a step that left work: the step kept to
    `BACKLOG_SHARE` of the time."""
    return max(BACKLOG_PAUSE_S, step_s * (1 - BACKLOG_SHARE) / BACKLOG_SHARE)


@dataclass(frozen=True, slots=True)
class _Pending:
    level: str
    start_ms: int
    lo_ms: int
    hi_ms: int
    follow: int
    since_ms: int


def _upsert(conn: sqlite3.Connection, rows: Sequence[_Pending]) -> None:
    conn.executemany(
        "INSERT INTO rollup_pending (level, start_ms, lo_ms, hi_ms, follow, since_ms) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (level, start_ms) DO UPDATE SET "
        "lo_ms = min(lo_ms, excluded.lo_ms), hi_ms = max(hi_ms, excluded.hi_ms), "
        "follow = max(follow, excluded.follow), since_ms = min(since_ms, excluded.since_ms)",
        [(r.level, r.start_ms, r.lo_ms, r.hi_ms, r.follow, r.since_ms) for r in rows],
    )


def _done(conn: sqlite3.Connection, row: _Pending) -> None:
    """Forget a dirty bucket unless it was widened meanwhile (by a rebuild in another process)."""
    conn.execute(
        "DELETE FROM rollup_pending WHERE level = ? AND start_ms = ? AND lo_ms = ? "
        "AND hi_ms = ? AND follow = ?",
        (row.level, row.start_ms, row.lo_ms, row.hi_ms, row.follow),
    )


def raw_spans(lo_ms: int, hi_ms: int, since_ms: int, follow: int, span_ms: int) -> list[_Pending]:
    """Dirty raw rows for the minutes of [lo_ms, hi_ms], one per `span_ms`-aligned span."""
    first, end = floor_ms(lo_ms, MINUTE_MS), floor_ms(hi_ms, MINUTE_MS) + MINUTE_MS
    rows = []
    start = floor_ms(first, span_ms)
    while start < end:
        lo, hi = max(first, start), min(end, start + span_ms)
        rows.append(_Pending(RAW, start, lo, hi, follow, since_ms))
        start += span_ms
    return rows


def _advance(conn: sqlite3.Connection, row: _Pending, lo_ms: int) -> None:
    """Record that a dirty raw span is done up to `lo_ms`, unless it was widened meanwhile."""
    conn.execute(
        "UPDATE rollup_pending SET lo_ms = ? WHERE level = ? AND start_ms = ? AND lo_ms = ? "
        "AND hi_ms = ? AND follow = ?",
        (lo_ms, row.level, row.start_ms, row.lo_ms, row.hi_ms, row.follow),
    )


class RollupWorker:
    """One step at a time (`run_once()`), on its own thread: see the module's docstring."""

    def __init__(
        self,
        db: StateDB,
        influx: InfluxClient,
        config: RollupConfig,
        clock: Clock,
        watch: Watch | None = None,
        *,
        follow_journal: bool = True,
    ) -> None:
        self.db = db
        self.influx = influx
        self.config = config
        self.clock = clock
        self.zone = ZoneInfo(config.zone_name)
        self.source = RollupSource(influx, config.home)
        self.price_at = minute_price(config.tariff, self.zone)
        self.follow_journal = follow_journal
        # Journal entry id -> when this worker first saw it unsettled (monotonic seconds).
        self._first_seen: dict[int, float] = {}
        # The home's meter count and when it was counted (monotonic seconds), and its raw
        # readings per minute in the last window read: they size the windows.
        self._meter_count: tuple[int, float] | None = None
        self._seen_rate = 0
        with db.transaction() as conn:
            conn.execute(PENDING_SCHEMA)
        meters.ensure_schema(db)
        self.watch = watch
        if watch is not None:
            watch.rollup = RollupWatch(config.interval_s, clock.now_ms(), self.oldest_pending_ms())

    def run_once(self) -> RollupStep:
        try:
            entries = self._ingest() if self.follow_journal else 0
            raw_spans_worked, readings, points = self._raw_level()
            counts = [0, 0, 0]
            for i, (level, process) in enumerate(self._calendar_levels()):
                for row in self._ready(level, self.config.budget[i]):
                    points += process(row)
                    counts[i] += 1
            pending = self.pending_count()
        finally:
            if self.watch is not None:
                self.watch.rollup = RollupWatch(
                    self.config.interval_s, self.clock.now_ms(), self.oldest_pending_ms()
                )
        hours, days, months = counts
        return RollupStep(entries, raw_spans_worked, readings, hours, days, months, points, pending)

    def _raw_level(self) -> tuple[int, int, int]:
        """Raw spans worked on, readings read back and points written, within the step's
        readings."""
        spans = readings = points = 0
        for row in self._ready(RAW, self.config.step_readings):
            if readings >= self.config.step_readings:
                break
            read, written = self._raw(row, self.config.step_readings - readings)
            spans, readings, points = spans + 1, readings + read, points + written
        return spans, readings, points

    def _calendar_levels(self) -> list[tuple[str, Callable[[_Pending], int]]]:
        return [(HOURLY, self._hour), (DAILY, self._day), (MONTHLY, self._month)]

    # --- the dirty set ---------------------------------------------------------------------

    def pending_count(self) -> int:
        [(n,)] = self.db.fetch_all("SELECT count(*) FROM rollup_pending")
        return int(n)

    def oldest_pending_ms(self) -> int | None:
        [(oldest,)] = self.db.fetch_all("SELECT min(since_ms) FROM rollup_pending")
        return None if oldest is None else int(oldest)

    def mark(self, lo_ms: int, hi_ms: int, *, since_ms: int, span_ms: int = HOUR_MS) -> None:
        """Mark the minutes of [lo_ms, hi_ms] dirty, as if their raw data had changed."""
        with self.db.transaction() as conn:
            _upsert(conn, raw_spans(lo_ms, hi_ms, since_ms, 1, span_ms))

    def _ingest(self) -> int:
        cursor = self.db.meta(CURSOR_KEY) or 0
        entries, after = journal.entries_of_other_kinds(
            self.db, cursor, journal.ROLLUP, settled=self._settled, limit=JOURNAL_PAGE
        )
        if after == cursor:
            return 0
        self._first_seen = {i: t for i, t in self._first_seen.items() if i > after}
        rows: list[_Pending] = []
        for e in entries:
            rows += raw_spans(e.min_time_ms, e.max_time_ms, e.recorded_ms, 1, HOUR_MS)
        with self.db.transaction(durable=False) as conn:
            _upsert(conn, rows)
            self.db.set_meta(conn, CURSOR_KEY, after)
        return len(entries)

    def _settled(self, entry: journal.JournalEntry) -> bool:
        """Whether an entry's write has landed: it is `settle_ms` old by the wall clock, or
        this worker has known it that long (an entry stamped by a clock that ran ahead, or by
        another process's clock, must not hold the journal up until the wall clock catches up)."""
        if entry.recorded_ms <= self.clock.now_ms() - self.config.settle_ms:
            return True
        first_seen = self._first_seen.setdefault(entry.id, self.clock.monotonic())
        return self.clock.monotonic() - first_seen >= self.config.settle_ms / 1000

    def _ready(self, level: str, limit: int) -> list[_Pending]:
        """Dirty buckets of `level` none of whose lower-level parts are still dirty."""
        blockers = {
            RAW: "",
            HOURLY: "AND NOT EXISTS (SELECT 1 FROM rollup_pending r WHERE r.level = 'raw' "
            "AND r.lo_ms < p.hi_ms AND r.hi_ms > p.start_ms)",
            DAILY: "AND NOT EXISTS (SELECT 1 FROM rollup_pending r WHERE r.level IN "
            "('raw', 'hour') AND r.lo_ms < p.hi_ms AND r.hi_ms > p.start_ms)",
            MONTHLY: "AND NOT EXISTS (SELECT 1 FROM rollup_pending r WHERE r.level IN "
            "('raw', 'hour', 'day') AND r.lo_ms < p.hi_ms AND r.hi_ms > p.start_ms)",
        }[level]
        # A bucket recomputed before its parts would only be recomputed again: each part
        # marks the bucket above it dirty when it is done.
        rows = self.db.fetch_all(
            "SELECT level, start_ms, lo_ms, hi_ms, follow, since_ms FROM rollup_pending p "
            f"WHERE level = ? {blockers} ORDER BY start_ms LIMIT ?",
            (level, limit),
        )
        return [_Pending(*row) for row in rows]

    # --- the levels --------------------------------------------------------------------------

    def _raw(self, row: _Pending, budget: int) -> tuple[int, int]:
        """Recompute a dirty raw span's minutes from its start, in windows, until it is done or
        about `budget` readings were read; the readings read and the points written."""
        lo, readings, points = row.lo_ms, 0, 0
        newest: dict[Meter, int] = {}
        while lo < row.hi_ms and readings < budget:
            minutes = max(1, (budget - readings) // self._per_minute())
            hi = min(row.hi_ms, floor_ms(lo, MINUTE_MS) + minutes * MINUTE_MS)
            read, written, seen = self._raw_window(lo, hi)
            readings, points, newest = readings + read, points + written, newest | seen
            if read:
                self._seen_rate = read * MINUTE_MS // (hi - floor_ms(lo, MINUTE_MS))
                lo = hi
            else:
                # A gap is crossed in one query, not window by window.
                found = self.source.first_reading(hi, row.hi_ms)
                lo = row.hi_ms if found is None else max(hi, floor_ms(found, MINUTE_MS))
        later: list[_Pending] = []
        if lo >= row.hi_ms and row.follow:
            every = sorted(meters.known(self.db).keys() | newest.keys())
            for t in self.source.next_readings(row.hi_ms, every, self.clock.now_ms()).values():
                later += raw_spans(t, t, row.since_ms, 0, HOUR_MS)
        hours = range(floor_ms(row.lo_ms, HOUR_MS), lo, HOUR_MS)
        with self.db.transaction(durable=False) as conn:
            if lo >= row.hi_ms:
                _done(conn, row)
            else:
                _advance(conn, row, lo)
            _upsert(conn, later)
            _upsert(conn, [_Pending(HOURLY, h, h, h + HOUR_MS, 0, row.since_ms) for h in hours])
            meters.remember(conn, newest)
        return readings, points

    def _raw_window(self, lo_ms: int, hi_ms: int) -> tuple[int, int, dict[Meter, int]]:
        """Recompute the minutes of [lo_ms, hi_ms) from the raw readings, streamed; the
        readings read, the points written, and each meter's newest reading."""
        near = self.source.baselines_near(lo_ms)

        def baseline_of(meter: Meter) -> float | None:
            if meter in near:
                return near[meter]
            return self.source.baseline(lo_ms, meter)

        folder = MinuteFolder(baseline_of, self.price_at)
        # A window holds about a step's readings, so its buckets are written at once: one
        # journal entry, one fsync. A minute emitted twice keeps its last bucket.
        out: dict[tuple[Meter, int], Bucket] = {}
        for meter, readings in self.source.reading_pieces(lo_ms, hi_ms):
            out.update({(m, b.start_ms): b for m, b in folder.add(meter, readings)})
        out.update({(m, b.start_ms): b for m, b in folder.finish()})
        by_meter: dict[Meter, list[Bucket]] = {}
        for (meter, _), bucket in out.items():
            by_meter.setdefault(meter, []).append(bucket)
        self._write(MINUTE, [start for _, start in out], by_meter)
        points = len(out)
        return folder.readings, points, folder.newest_ms

    def _per_minute(self) -> int:
        """The home's raw readings per minute: as the last window had them, but never fewer
        than its meters send at the PZEM's rate."""
        now = self.clock.monotonic()
        if self._meter_count is None or now - self._meter_count[1] >= METER_COUNT_TTL_S:
            self._meter_count = (self.source.meter_count(), now)
        return max(1, self._seen_rate, self._meter_count[0] * 60 * READINGS_PER_METER_S)

    def _hour(self, row: _Pending) -> int:
        hours = {m: [b] for m, b in self.source.hour(row.start_ms, row.start_ms + HOUR_MS).items()}
        if hours:
            self._write(HOUR, [row.start_ms], hours)
        days = {local_day_start(t, self.zone) for t in (row.start_ms, row.start_ms + HOUR_MS - 1)}
        with self.db.transaction(durable=False) as conn:
            _done(conn, row)
            _upsert(conn, [self._calendar_row(DAILY, d, row.since_ms) for d in sorted(days)])
        return len(hours)

    def _calendar_row(self, level: str, start_ms: int, since_ms: int) -> _Pending:
        end = (
            next_local_day(start_ms, self.zone)
            if level == DAILY
            else next_local_month(start_ms, self.zone)
        )
        return _Pending(level, start_ms, start_ms, end, 0, since_ms)

    def _day(self, row: _Pending) -> int:
        fields = self.source.calendar(MINUTE, row.start_ms, row.hi_ms)
        lines = point_lines(DAY, self.config.home, self.config.layout, row.start_ms, fields)
        self._write_lines(lines, [row.start_ms])
        month = local_month_start(row.start_ms, self.zone)
        with self.db.transaction(durable=False) as conn:
            _done(conn, row)
            _upsert(conn, [self._calendar_row(MONTHLY, month, row.since_ms)])
        return len(lines)

    def _month(self, row: _Pending) -> int:
        fields = self.source.calendar(DAY, row.start_ms, row.hi_ms)
        lines = point_lines(MONTH, self.config.home, self.config.layout, row.start_ms, fields)
        self._write_lines(lines, [row.start_ms])
        with self.db.transaction(durable=False) as conn:
            _done(conn, row)
        return len(lines)

    # --- writing -----------------------------------------------------------------------------

    def _write(
        self, measurement: str, times: Sequence[int], buckets: Mapping[Meter, Sequence[Bucket]]
    ) -> None:
        self._write_lines(
            bucket_lines(measurement, self.config.home, self.config.layout, buckets), times
        )

    def _write_lines(self, lines: list[str], times: Sequence[int]) -> None:
        """Journal the points' range durably, then write them (the store's order)."""
        if not lines:
            return
        with self.db.transaction() as conn:
            journal.record(
                conn,
                recorded_ms=self.clock.now_ms(),
                min_time_ms=min(times),
                max_time_ms=max(times),
                points=len(lines),
                kind=journal.ROLLUP,
            )
        self.influx.write(lines)
