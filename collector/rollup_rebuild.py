"""Recomputing every rollup of a time range from raw (`energymon rollup rebuild`): the worker
of `collector.rollup`, stepped without pauses over a range marked dirty at once, with the
collector's state database, so that a running collector's worker shares the work and the
replicator copies the result."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from collector.rollup import RollupConfig, RollupWorker
from collector.rollup_compute import HOUR_MS
from collector.statedb import StateDB
from energymon.clock import Clock, SystemClock
from energymon.influx import InfluxClient, quote_string
from energymon.schema import MEASUREMENT
from energymon.settings import Settings

# Most raw spans a rebuild queues as one: six hours of three meters at 1 Hz is 64,800 rows.
REBUILD_SPAN_MS = 6 * HOUR_MS
# A rebuild has the process to itself: larger steps cost fewer of the per-step queries.
REBUILD_STEP_READINGS = 100_000


def first_reading_ms(client: InfluxClient, settings: Settings) -> int | None:
    """The time of the home's oldest reading, where a rebuild of everything starts."""
    q = f"SELECT first(energy_wh) FROM {MEASUREMENT} WHERE home = {quote_string(settings.home)}"
    for series in client.query(q):
        for row in series.values:
            return int(row[0])
    return None


def rebuild(
    client: InfluxClient,
    settings: Settings,
    since_ms: int,
    until_ms: int,
    *,
    db: StateDB | None = None,
    clock: Clock | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> int:
    """Recompute every rollup of [since_ms, until_ms) from raw; the points written. Uses the
    collector's state database (`settings.data_dir`) for the dirty set and the journal, so
    a running collector's worker shares the work and the replicator copies the result."""
    own = db is None
    state = StateDB(settings.data_dir) if db is None else db
    try:
        worker = RollupWorker(
            state,
            client,
            replace(RollupConfig.from_settings(settings), step_readings=REBUILD_STEP_READINGS),
            clock or SystemClock(),
            follow_journal=False,
        )
        now = worker.clock.now_ms()
        worker.mark(since_ms, until_ms - 1, since_ms=now, span_ms=REBUILD_SPAN_MS)
        total = worker.pending_count()
        points = 0
        while True:
            step = worker.run_once()
            points += step.points
            if progress is not None:
                progress(total - min(step.pending, total), total)
            if step.pending == 0 or not step.more_work:
                return points
    finally:
        if own:
            state.close()
