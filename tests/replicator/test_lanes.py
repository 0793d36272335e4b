"""A catch-up in lanes: consecutive parts of a window copied at once, acknowledged together."""

from __future__ import annotations

from pathlib import Path

import pytest

from energymon.errors import InfluxUnavailableError
from energymon.influx import InfluxClient
from harness.influxd import InfluxServer
from tests.replicator.helpers import T0, Rig, points, reading


def test_lanes_copy_a_backlog_exactly(rig: Rig) -> None:
    rig.write_readings(
        [reading("d", s, i, T0 - 7_200_000 + i * 1000) for s in ("a", "b") for i in range(7000)]
    )
    replicator = rig.replicator(copy_lanes=3)
    results = []
    while not (result := replicator.run_once()).caught_up:
        results.append(result)
    assert sum(r.copied_points for r in [*results, result]) == 14_000
    assert points(rig.cloud) == points(rig.local)
    assert all(lane.stats.points > 0 for lane in replicator.lanes)


def test_a_failing_lane_leaves_the_watermark_where_it_was(rig: Rig, tmp_path: Path) -> None:
    rig.write_readings([reading("d", "a", i, T0 - 7_200_000 + i * 1000) for i in range(7000)])
    cloud = InfluxServer(tmp_path / "cloud")
    cloud.start()
    try:
        rig.cloud = InfluxClient(cloud.url, "energymon", timeout_s=2)
        replicator = rig.replicator(copy_lanes=2, window_ms=2 * 3_600_000)
        replicator.run_once()  # finds the cloud empty: the watermark goes to the oldest point
        before = replicator.state
        assert before is not None
        cloud.kill()
        with pytest.raises(InfluxUnavailableError):
            replicator.run_once()
        assert replicator.state == before
        cloud.start()
        rig.run_until_caught_up(replicator)
        assert points(rig.cloud) == points(rig.local)
    finally:
        cloud.kill()
