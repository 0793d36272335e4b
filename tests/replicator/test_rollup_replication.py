"""The collector's rollups reach the cloud like readings and verify exactly, late
recomputations included: they are journalled (kind `rollup`) before they are written."""

from __future__ import annotations

from collector.rollup import RollupConfig, RollupWorker
from collector.statedb import StateDB
from energymon.settings import make_settings
from replicator.points import TimeRange
from replicator.verify import compare
from tests.replicator.helpers import HOME, T0, Rig, points, reading

ROLLUPS = ("energymon_1m", "energymon_1h", "energymon_day", "energymon_month")
# Local time zone days and months reach far behind the readings' hours.
WINDOW = TimeRange(T0 - 40 * 86_400_000, T0 + 2 * 86_400_000)


def _run(worker: RollupWorker) -> None:
    while worker.run_once().more_work:
        pass


def test_rollups_replicate_and_verify_exactly(rig: Rig) -> None:
    settings = make_settings(home=HOME, data_dir=rig.data_dir, layout="mains=mega-01/mains")
    db = StateDB(rig.data_dir)
    worker = RollupWorker(db, rig.local, RollupConfig.from_settings(settings), rig.clock)
    rig.write_readings([reading("mega-01", "mains", s, T0 + s * 20_000) for s in range(1, 150)])
    rig.clock.advance(20)
    _run(worker)
    replicator = rig.replicator()
    rig.run_until_caught_up(replicator)
    for measurement in ROLLUPS:
        assert points(rig.local, measurement), measurement
        assert points(rig.cloud, measurement) == points(rig.local, measurement), measurement

    # A late reading behind the watermark: its minute, hour, day and month are recomputed
    # and the journal carries the recomputed ranges to the cloud.
    rig.clock.advance(600)
    rig.write_readings([reading("mega-01", "mains", 500, T0 - 3_600_000)])
    rig.clock.advance(20)
    _run(worker)
    rig.clock.advance(20)
    rig.run_until_caught_up(replicator)
    for measurement in ROLLUPS:
        assert points(rig.cloud, measurement) == points(rig.local, measurement), measurement
    hours, mismatches = compare(rig.local, rig.cloud, HOME, WINDOW, measurements=list(ROLLUPS))
    assert hours > 0 and mismatches == []
    db.close()
