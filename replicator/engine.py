"""The replication loop, one steppable `run_once()` at a time.

Each step (1) follows the collector's write journal (once caught up, every `journal_interval_ms`)
and re-copies the ranges of entries that lie behind the watermark (late data), then (2) copies
the next forward window [watermark, now - settle) and advances the watermark. Progress is saved
only after the cloud acknowledged the copies, so the saved state may lag behind but is never
ahead; copying again is harmless because a point's identity is its measurement, tags and time.
See docs/replication.md.

When nothing vouches for the past any more (no state, a journal pruned before it was read or
recreated, a cloud that lost data), a reconciliation checks the whole history point by point and
re-copies what differs: one hour per step, after the live copy of that step, its position saved
with the watermark so that it resumes after a restart.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace

from energymon.clock import Clock
from energymon.influx import InfluxClient
from energymon.journal import JournalEntry, JournalReader
from replicator.copy import FieldTypes, coalesce, copy_range
from replicator.points import TimeRange, earliest_of, earliest_time_ms, latest_time_ms
from replicator.sink import BatchSink
from replicator.state import Reconciliation, ReplicatorState, StateStore
from replicator.verify import HOUR_MS, hour_floor, verify

log = logging.getLogger(__name__)

JOURNAL_PAGE = 1000
# Late ranges less than this apart are copied as one: at steady state the live points between
# two entries' ranges are announced by entries of the same batch anyway, and each copy costs
# queries to the local InfluxDB whatever it holds.
LATE_GAP_MS = 2000


@dataclass(frozen=True, slots=True)
class ReplicatorConfig:
    home: str
    window_ms: int
    settle_ms: int
    journal_settle_ms: int
    # At steady state the watermark moves every step; saving it less often spares the SD card
    # and only means a few seconds are copied again after a crash.
    save_interval_ms: int = 10_000
    # Once caught up, the journal is followed at most this often, so that the entries settled
    # meanwhile are copied together: the rollup worker rewrites the same few points (the
    # current minute, hour, day and month) every few seconds, each rewrite an entry.
    journal_interval_ms: int = 0


@dataclass(frozen=True, slots=True)
class StepResult:
    copied_points: int
    late_ranges: int
    watermark_ms: int
    caught_up: bool


class Replicator:
    def __init__(
        self,
        *,
        local: InfluxClient,
        cloud: InfluxClient,
        sink: BatchSink,
        store: StateStore,
        journal: JournalReader | None,
        clock: Clock,
        config: ReplicatorConfig,
    ) -> None:
        self.local = local
        self.cloud = cloud
        self.sink = sink
        self.store = store
        self.journal = journal
        self.clock = clock
        self.config = config
        self._state: ReplicatorState | None = store.load()
        self._saved: ReplicatorState | None = self._state
        self._saved_at = clock.monotonic()
        # Journal entry id -> monotonic time this process first saw it (see `_settled`).
        self._first_seen: dict[int, float] = {}
        self._followed_at: float | None = None
        # Reconciliations asked for by another thread (the auditor), applied by `run_once`.
        self._requests: list[tuple[str, int | None]] = []
        self._requests_lock = threading.Lock()
        # Read by the auditor's thread: checks wait while the live copy has work to do.
        self.caught_up = False

    @property
    def state(self) -> ReplicatorState | None:
        return self._state

    def run_once(self) -> StepResult:
        """One step; raises `InfluxError` (nothing acknowledged is lost, the step is retried).
        Caught up means: the live copy is, and no reconciliation is pending."""
        state = self._state if self._state is not None else self._bootstrap()
        with self._requests_lock:
            requests, self._requests = self._requests, []
        for reason, until_ms in requests:
            state = self._with_reconcile(state, reason, until_ms)
            self._set(state)
            self.save()
        late_ranges = copied = 0
        types = FieldTypes(self.local)
        if self._journal_due():
            state, late_ranges, copied = self._follow_journal(state, types)
            self._followed_at = self.clock.monotonic()
            self._set(state)
        state, forward, caught_up = self._forward(state, types)
        self._set(state)
        if caught_up and state.reconcile is not None:
            state = self._reconcile_step(state)
            self._set(state)
            self.save()
            caught_up = state.reconcile is None
        since_save_ms = (self.clock.monotonic() - self._saved_at) * 1000
        if not caught_up or since_save_ms >= self.config.save_interval_ms:
            self.save()
        self.caught_up = caught_up
        return StepResult(copied + forward, late_ranges, state.watermark_ms, caught_up)

    def _journal_due(self) -> bool:
        if self.journal is None or not self.journal.exists():
            return False
        if not self.caught_up or self._followed_at is None:
            return True
        return (
            self.clock.monotonic() - self._followed_at
        ) * 1000 >= self.config.journal_interval_ms

    def request_reconcile(self, reason: str, until_ms: int | None = None) -> None:
        """Check and repair the whole history up to `until_ms` (default: the watermark) point by
        point, in the steps to come; the next step saves the request. Thread-safe."""
        with self._requests_lock:
            self._requests.append((reason, until_ms))

    def _with_reconcile(
        self, state: ReplicatorState, reason: str, until_ms: int | None = None
    ) -> ReplicatorState:
        until = state.watermark_ms if until_ms is None else until_ms
        first = earliest_of((self.local, self.cloud), self.config.home, 0)
        if first is None:
            return state
        start = hour_floor(first)
        log.warning("reconciling the whole history from %d to %d ms: %s", start, until, reason)
        current = state.reconcile
        wanted = (
            Reconciliation(start, until, reason) if current is None
            else current.widened(start, until, reason)
        )  # fmt: skip
        return replace(state, reconcile=wanted)

    def _reconcile_step(self, state: ReplicatorState) -> ReplicatorState:
        """Check and repair one hour of the reconciliation; skip stretches empty on both sides."""
        job = state.reconcile
        assert job is not None
        end = min(job.until_ms, hour_floor(job.position_ms) + HOUR_MS)
        window = TimeRange(job.position_ms, end)
        result = verify(self.local, self.cloud, self.sink, self.config.home, window, repair=True)
        if result.mismatches:
            log.info(
                "reconciliation: %d series-hours differed at %d ms, %d repaired, %d still differ",
                len(result.mismatches), window.start_ms, result.repaired_hours,
                result.unresolved_hours,
            )  # fmt: skip
        following = earliest_of((self.local, self.cloud), self.config.home, end)
        position = job.until_ms if following is None else max(end, hour_floor(following))
        if position >= job.until_ms:
            log.info("reconciliation finished up to %d ms (%s)", job.until_ms, job.reason)
            return replace(state, reconcile=None)
        return replace(state, reconcile=Reconciliation(position, job.until_ms, job.reason))

    def save(self) -> None:
        if self._state is not None and self._state != self._saved:
            self.store.save(self._state)
            self._saved = self._state
        self._saved_at = self.clock.monotonic()

    def _set(self, state: ReplicatorState) -> None:
        self._state = state

    def _bootstrap(self) -> ReplicatorState:
        """No state (first start, new SD card, a deleted state file): start where the cloud's
        data of this home ends rather than copying everything again, and reconcile the whole
        history before it, since no journal position vouches for it."""
        journal = self.journal if self.journal is not None and self.journal.exists() else None
        cursor = (journal.last_id() if journal else None) or 0
        latest = latest_time_ms(self.cloud, self.config.home)
        limit = self.clock.now_ms() - self.config.settle_ms
        watermark = 0 if latest is None else min(latest, limit)
        log.info(
            "no replication state: the cloud holds this home's data up to %s ms; starting there",
            latest,
        )
        state = ReplicatorState(watermark, cursor, None, journal.identity() if journal else None)
        if latest is not None:
            state = self._with_reconcile(state, "no replication state")
        self._state = state
        self.store.save(state)
        self._saved = state
        return state

    def _follow_journal(
        self, state: ReplicatorState, types: FieldTypes
    ) -> tuple[ReplicatorState, int, int]:
        assert self.journal is not None
        identity = self.journal.identity()
        if identity != state.journal_id:
            if state.journal_id is not None:
                # A new journal: the entries of the old one not read yet are gone, and the new
                # one's ids mean nothing to the saved cursor.
                state = self._with_reconcile(state, "the collector's journal was recreated")
                state = replace(state, journal_cursor=0)
            state = replace(state, journal_id=identity)
        first, last = self.journal.first_id(), self.journal.last_id()
        cursor = state.journal_cursor
        if (last is not None and last < cursor) or (first is not None and first > cursor + 1):
            # Entries were pruned before they were read (or a journal without identity was
            # recreated): which late points they announced is unknown.
            state = self._with_reconcile(
                state, f"the collector's journal lost entries after {cursor} "
                f"(it now holds {first}..{last})",
            )  # fmt: skip
            return replace(state, journal_cursor=(first or 1) - 1), 0, 0
        entries = self._settled(self.journal.entries_after(cursor, JOURNAL_PAGE))
        if not entries:
            return replace(state, journal_cursor=cursor), 0, 0
        late = coalesce(self._journal_ranges(entries, state.watermark_ms), LATE_GAP_MS)
        copied = 0
        for window in late:
            copied += copy_range(
                self.local, self.sink, self.config.home, window, field_types_of=types
            )
        if late:
            log.info(
                "late data: re-copied %d points in %d ranges behind the watermark",
                copied,
                len(late),
            )
        return replace(state, journal_cursor=entries[-1].id), len(late), copied

    def _journal_ranges(
        self, entries: list[JournalEntry], watermark_ms: int
    ) -> Iterator[TimeRange]:
        """What of the entries' ranges the forward windows will not copy soon: the part behind
        the watermark, and the part stamped ahead of this clock (by a clock that ran ahead and
        was set back), which the forward windows would reach only when the clock does."""
        limit = self.clock.now_ms() - self.config.settle_ms
        for e in entries:
            yield TimeRange(e.min_time_ms, min(e.max_time_ms + 1, watermark_ms))
            yield TimeRange(max(e.min_time_ms, limit, watermark_ms), e.max_time_ms + 1)

    def _settled(self, page: list[JournalEntry]) -> list[JournalEntry]:
        """The leading entries of `page` whose writes have landed. The collector records an
        entry before its write, so an entry is followed once it is `journal_settle_ms` old by
        the wall clock, or once this process has known it that long by the monotonic clock: an
        entry stamped by a clock that ran ahead must not hold the journal up until the wall
        clock catches up with it."""
        now_ms, now = self.clock.now_ms(), self.clock.monotonic()
        settle_s = self.config.journal_settle_ms / 1000
        ready: list[JournalEntry] = []
        for entry in page:
            first_seen = self._first_seen.setdefault(entry.id, now)
            if entry.recorded_ms > now_ms - self.config.journal_settle_ms and (
                now - first_seen < settle_s
            ):
                break
            ready.append(entry)
        # Every entry of the page has started its own wait, so a run of entries stamped ahead
        # settles together rather than one after the other.
        for entry in page[len(ready) :]:
            self._first_seen.setdefault(entry.id, now)
        if ready:
            last = ready[-1].id
            self._first_seen = {i: t for i, t in self._first_seen.items() if i > last}
        return ready

    def _forward(
        self, state: ReplicatorState, types: FieldTypes
    ) -> tuple[ReplicatorState, int, bool]:
        limit = self.clock.now_ms() - self.config.settle_ms
        if state.watermark_ms > limit:
            # The watermark came from a wall clock that ran ahead (or was saved by one). Points
            # stamped from now on would fall behind it, where only the journal looks: pull it
            # back to now. Copying a range again is harmless.
            log.warning(
                "the watermark %d ms is %.1f s ahead of this clock: the clock went back; "
                "copying again from %d ms",
                state.watermark_ms, (state.watermark_ms - limit) / 1000, limit,
            )  # fmt: skip
            state = replace(state, watermark_ms=limit)
        start = state.watermark_ms
        end = min(limit, start + self.config.window_ms)
        if end <= start:
            return state, 0, True
        copied = copy_range(
            self.local, self.sink, self.config.home, TimeRange(start, end), field_types_of=types
        )
        if copied == 0 and end < limit:
            # Skip a quiet stretch in one step instead of one window at a time.
            following = earliest_time_ms(self.local, self.config.home, end)
            end = limit if following is None else max(end, min(following, limit))
        return replace(state, watermark_ms=end), copied, end >= limit
