"""What following the journal costs at steady state, with the collector's rollup worker
rewriting the current minute, hour, day and month every few seconds (one journal entry each):
the entries settled together are copied together, and everything still reaches the cloud
exactly."""

from __future__ import annotations

import sqlite3

import requests

from energymon import journal
from energymon.lineproto import format_line
from replicator.service import JOURNAL_INTERVAL_MS
from tests.replicator.helpers import HOME, Rig, points, reading

ROLLUPS = ("energymon_1m", "energymon_1h", "energymon_day", "energymon_month")
SENSORS = ("mains", "heatpump", "solar")
ROLLUP_INTERVAL_S = 5
SECONDS = 60
MEASURED_FROM_S = 30


def queries(rig: Rig) -> int:
    """Queries the local influxd has answered since it started (`/debug/vars`)."""
    stats = requests.get(rig.local.url + "/debug/vars", timeout=10).json()
    return sum(v["values"]["queryReq"] for k, v in stats.items() if k.startswith("httpd"))


def rollup_lines(now_ms: int, value: float) -> list[tuple[int, str]]:
    """The points one rollup step rewrites: one per level, each at its bucket's start."""
    starts = (
        now_ms - now_ms % 60_000,
        now_ms - now_ms % 3_600_000,
        now_ms - now_ms % 86_400_000,
        now_ms - now_ms % (30 * 86_400_000),
    )
    return [
        (t, format_line(m, {"home": HOME, "sensor": "mains"}, {"energy_wh": value}, t))
        for m, t in zip(ROLLUPS, starts, strict=True)
    ]


def live(rig: Rig, second: int) -> None:
    """One second of the collector: a reading of each meter, each its own entry, and every
    few seconds a rollup step, one entry per level."""
    now = rig.clock.now_ms()
    for n, sensor in enumerate(SENSORS):
        rig.write_readings([reading(f"mega-0{n + 1}", sensor, second, now + 10 * n)])
    if second % ROLLUP_INTERVAL_S == 0:
        for t, line in rollup_lines(now, float(second)):
            with sqlite3.connect(rig.data_dir / journal.STATE_DB_NAME) as conn:
                journal.record(
                    conn, recorded_ms=now, min_time_ms=t, max_time_ms=t, points=1,
                    kind=journal.ROLLUP,
                )  # fmt: skip
            rig.local.write([line])


def test_rollup_rewrites_are_copied_together_and_exactly(rig: Rig) -> None:
    replicator = rig.replicator(journal_interval_ms=JOURNAL_INTERVAL_MS)
    live(rig, 0)
    rig.run_until_caught_up(replicator)
    before = 0
    for second in range(1, SECONDS + 1):
        if second == MEASURED_FROM_S:
            before = queries(rig)
        live(rig, second)
        for _ in range(2):
            rig.clock.advance(0.5)
            replicator.run_once()
    spent = queries(rig) - before
    measured_s = SECONDS - MEASURED_FROM_S + 1
    # Per step of half a second, the forward copy: which measurements hold points, their field
    # types, the points. Per journal batch: the field types, then per copy (the live readings,
    # and the four rewritten rollups) which measurements, and the points.
    batches = measured_s * 1000 // JOURNAL_INTERVAL_MS + 1
    assert spent <= 2 * measured_s * 3 + batches * (1 + 2 * 5)

    rig.clock.advance(30)
    rig.run_until_caught_up(replicator)
    rig.clock.advance(JOURNAL_INTERVAL_MS / 1000)
    rig.run_until_caught_up(replicator)
    for measurement in ("electricity", *ROLLUPS):
        assert points(rig.cloud, measurement) == points(rig.local, measurement), measurement
