from __future__ import annotations

from pathlib import Path

import pytest

from energymon.errors import InfluxUnavailableError
from energymon.influx import InfluxClient
from energymon.lineproto import format_line
from harness.influxd import InfluxServer
from replicator.state import StateStore
from tests.replicator.helpers import HOME, T0, Rig, points, reading


def test_copies_every_measurement_with_exact_types_and_only_this_home(rig: Rig) -> None:
    rig.write_readings(
        [reading("mega-01", s, i, T0 + i * 1000) for s in ("a", "b") for i in range(1, 300)]
    )
    rig.write(
        [
            format_line(
                "energymon_quarantine",
                {"home": HOME, "device": "mega-01", "sensor": "a"},
                {"reason": 'voltage "300" V, out of range', "payload": "{}", "boot": 1, "seq": 7},
                T0 + 5000,
            ),
            format_line(
                "energymon_health",
                {"home": HOME, "process": "collector"},
                {"spool_bytes": 0, "status": "ok"},
                T0 + 6000,
            ),
            # A derived measurement added later, with a float that looks like an integer.
            format_line("energy_hourly", {"home": HOME, "sensor": "a"}, {"kwh": 2.0}, T0),
            format_line(
                "electricity",
                {"home": "home-b", "device": "x", "sensor": "y"},
                {"power_w": 1.0},
                T0 + 7000,
            ),
        ]
    )
    replicator = rig.replicator()
    results = [replicator.run_once() for _ in range(3)]

    # The first step finds the cloud empty and skips to the oldest local point.
    assert [r.caught_up for r in results] == [False, True, True]
    assert sum(r.copied_points for r in results) == 2 * 299 + 3
    for measurement in ("electricity", "energymon_quarantine", "energymon_health", "energy_hourly"):
        assert points(rig.cloud, measurement) == points(rig.local, measurement), measurement
    assert points(rig.cloud, "electricity", home="home-b") == set()
    types = {tuple(row) for s in rig.cloud.query("SHOW FIELD KEYS") for row in s.values}
    assert ("energy_wh", "integer") in types
    assert ("kwh", "float") in types
    assert ("alarm", "boolean") in types
    assert StateStore(rig.data_dir / "replicator" / "state.json").load() is not None


def test_watermark_advances_and_new_points_follow(rig: Rig) -> None:
    replicator = rig.replicator()
    rig.write_readings([reading("d", "s", 1, T0 + 1000)])
    rig.run_until_caught_up(replicator)
    first = replicator.state
    assert first is not None
    rig.clock.advance(5)
    rig.write_readings([reading("d", "s", 2, rig.clock.now_ms() - 2000)])
    result = replicator.run_once()
    assert result.watermark_ms == rig.clock.now_ms() - 1000 > first.watermark_ms
    assert len(points(rig.cloud)) == 2


def test_late_data_behind_the_watermark_follows_through_the_journal(rig: Rig) -> None:
    replicator = rig.replicator()
    rig.write_readings([reading("d", "s", i, T0 + i * 1000) for i in range(1, 11)])
    rig.run_until_caught_up(replicator)
    # A device that buffered during an outage sends readings taken an hour ago.
    late = [reading("late", "s", i, T0 - 3_600_000 + i * 1000) for i in range(1, 51)]
    rig.write_readings(late)
    assert replicator.run_once().late_ranges == 0  # its journal entry has not settled yet
    rig.clock.advance(11)
    result = replicator.run_once()
    assert result.late_ranges == 1
    assert points(rig.cloud) == points(rig.local)
    assert len(points(rig.cloud)) == 60


def test_a_write_landing_after_its_window_was_copied_is_not_lost(rig: Rig) -> None:
    replicator = rig.replicator()
    rig.write_readings([reading("d", "s", 1, T0)])
    rig.run_until_caught_up(replicator)
    rig.clock.advance(5)
    slow = [reading("d", "s", 2, rig.clock.now_ms() - 3000).to_line(HOME)]
    # The collector records the range, but its write lands only after the next copy.
    rig.record(slow)
    replicator.run_once()
    rig.local.write(slow)
    assert len(points(rig.cloud)) == 1
    rig.clock.advance(11)
    replicator.run_once()
    assert points(rig.cloud) == points(rig.local)
    assert len(points(rig.cloud)) == 2


def test_cloud_outage_builds_a_backlog_that_drains(rig: Rig, tmp_path: Path) -> None:
    cloud_server = InfluxServer(tmp_path / "cloud")
    cloud_server.start()
    try:
        rig.cloud = InfluxClient(cloud_server.url, "energymon", timeout_s=2)
        replicator = rig.replicator(window_ms=600_000)
        rig.write_readings([reading("d", "s", 1, T0)])
        rig.run_until_caught_up(replicator)
        cloud_server.kill()
        before = replicator.state
        assert before is not None
        for minute in range(1, 121):
            rig.clock.advance(60)
            rig.write_readings(
                [
                    reading("d", s, minute * 60 + i, rig.clock.now_ms() - 60_000 + i * 1000)
                    for s in ("a", "b", "c")
                    for i in range(60)
                ]
            )
            if minute % 30 == 0:
                with pytest.raises(InfluxUnavailableError):
                    replicator.run_once()
                # Only the journal cursor may move: those entries lie ahead of the watermark.
                assert replicator.state is not None
                assert replicator.state.watermark_ms == before.watermark_ms
        cloud_server.start()
        rig.clock.advance(2)
        steps = 0
        while not replicator.run_once().caught_up:
            steps += 1
        assert steps >= 10  # window by window, each acknowledged before the next
        assert len(points(rig.cloud)) == 1 + 120 * 180
        assert points(rig.cloud) == points(rig.local)
    finally:
        cloud_server.kill()


def test_restart_with_state_resumes_where_it_stopped(rig: Rig) -> None:
    rig.write_readings([reading("d", "s", i, T0 + i * 1000) for i in range(1, 1001)])
    first = rig.replicator(window_ms=100_000)
    first.run_once()
    first.run_once()
    state = first.state
    assert state is not None and T0 < state.watermark_ms < T0 + 1_000_000
    # SIGKILL: nothing else is saved; a new process starts from the file.
    second = rig.replicator(window_ms=100_000)
    assert second.state == state
    copied = 0
    while not (result := second.run_once()).caught_up:
        copied += result.copied_points
    copied += result.copied_points
    assert copied == 1000 - (state.watermark_ms - T0) // 1000 + 1
    assert points(rig.cloud) == points(rig.local)


def test_restart_without_state_asks_the_cloud_and_repairs_recent_holes(rig: Rig) -> None:
    rig.write_readings([reading("d", "s", i, T0 - 7_200_000 + i * 1000) for i in range(1, 7201)])
    rig.run_until_caught_up(rig.replicator())
    # The SD card is replaced: replicator state gone; and one hour in the cloud got lost.
    (rig.data_dir / "replicator" / "state.json").unlink()
    rig.cloud.query(
        f"DELETE FROM electricity WHERE time >= {T0 - 3_600_000}ms AND time < {T0 - 3_000_000}ms",
        method="POST",
    )
    rig.clock.advance(60)
    rig.write_readings([reading("d", "s", 7201, rig.clock.now_ms() - 30_000)])
    fresh = rig.replicator()
    rig.run_until_caught_up(fresh)
    state = fresh.state
    assert state is not None and state.reconcile is None
    assert points(rig.cloud) == points(rig.local)
    assert rig.dead_letters().count() == 0
