"""The durable store against real influxd processes: direct writes, spool, drain, parking."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from collector.payload import parse_submission
from collector.statedb import StateDB
from collector.store import DurableStore
from collector.submission import Submission
from energymon.clock import ManualClock
from energymon.errors import SpoolFullError
from energymon.influx import InfluxClient
from energymon.settings import Settings
from harness.influxd import InfluxServer
from tests.collector.helpers import batch

ARRIVAL_MS = 1_700_000_000_000


def make_store(
    influx: InfluxClient, data_dir: Path, clock: ManualClock, spool_max_bytes: int = 10**8
) -> DurableStore:
    return DurableStore(
        StateDB(data_dir),
        influx,
        home="h1",
        spool_max_bytes=spool_max_bytes,
        clock=clock,
        write_timeout_s=2.0,
    )


def submission(body: dict[str, Any], arrival_ms: int = ARRIVAL_MS) -> Submission:
    return parse_submission(body, 1000, arrival_ms)


def stored(influx: InfluxClient, measurement: str = "electricity") -> list[dict[str, Any]]:
    return [
        r for s in influx.query(f'SELECT * FROM "{measurement}" ORDER BY time') for r in s.records()
    ]


def test_readings_land_at_anchor_plus_uptime(influx: InfluxClient, tmp_path: Path) -> None:
    store = make_store(influx, tmp_path, ManualClock(ARRIVAL_MS))
    body = batch(range(1, 4), uptime_ms=10_000)
    [outcome] = store.commit([submission(body)])
    assert (outcome.ack, outcome.accepted, outcome.duplicates, outcome.rejected) == (3, 3, 0, ())
    rows = stored(influx)
    anchor = ARRIVAL_MS - 10_000
    assert [r["time"] for r in rows] == [anchor + 1000, anchor + 2000, anchor + 3000]
    assert rows[0]["seq"] == 1 and rows[0]["boot"] == 1 and rows[0]["home"] == "h1"
    assert rows[0]["energy_wh"] == 123457 and rows[0]["alarm"] is False


def test_resent_batch_is_duplicate_and_lands_on_same_points(
    influx: InfluxClient, tmp_path: Path
) -> None:
    store = make_store(influx, tmp_path, ManualClock(ARRIVAL_MS))
    store.commit([submission(batch(range(1, 6), uptime_ms=10_000))])
    # The same batch arrives again a minute later, from a device that lost the reply.
    [again] = store.commit([submission(batch(range(1, 6), uptime_ms=70_000), ARRIVAL_MS + 60_000)])
    assert (again.accepted, again.duplicates, again.ack) == (0, 5, 5)
    rows = stored(influx)
    assert len(rows) == 5
    assert rows[0]["time"] == ARRIVAL_MS - 10_000 + 1000


def test_out_of_order_and_late_batches_are_all_stored(influx: InfluxClient, tmp_path: Path) -> None:
    store = make_store(influx, tmp_path, ManualClock(ARRIVAL_MS))
    store.commit([submission(batch(range(11, 21), uptime_ms=30_000))])
    [late] = store.commit([submission(batch(range(1, 11), uptime_ms=31_000), ARRIVAL_MS + 1000)])
    assert (late.accepted, late.duplicates) == (10, 0)
    rows = stored(influx)
    assert [r["seq"] for r in rows] == list(range(1, 21))
    # Both batches share one anchor, so the late readings keep the times they were measured.
    assert rows[0]["time"] == ARRIVAL_MS - 30_000 + 1000


def test_overlapping_batches_in_one_group_commit(influx: InfluxClient, tmp_path: Path) -> None:
    store = make_store(influx, tmp_path, ManualClock(ARRIVAL_MS))
    first, second = store.commit([submission(batch(range(1, 6))), submission(batch(range(4, 9)))])
    assert (first.accepted, second.accepted, second.duplicates) == (5, 3, 2)
    assert len(stored(influx)) == 8


def test_anchor_and_ledger_survive_restart(influx: InfluxClient, tmp_path: Path) -> None:
    make_store(influx, tmp_path, ManualClock(ARRIVAL_MS)).commit(
        [submission(batch(range(1, 3), uptime_ms=5000))]
    )
    later = make_store(influx, tmp_path, ManualClock(ARRIVAL_MS + 3_600_000))
    [outcome] = later.commit(
        [submission(batch(range(1, 5), uptime_ms=9000), ARRIVAL_MS + 3_600_000)]
    )
    assert (outcome.accepted, outcome.duplicates) == (2, 2)
    rows = stored(influx)
    assert [r["time"] - (ARRIVAL_MS - 5000) for r in rows] == [1000, 2000, 3000, 4000]


def test_invalid_measurements_are_quarantined_not_stored(
    influx: InfluxClient, tmp_path: Path
) -> None:
    store = make_store(influx, tmp_path, ManualClock(ARRIVAL_MS))
    body = batch(range(1, 5))
    body["readings"][1]["voltage_v"] = 300.0
    body["readings"][2]["power_factor"] = float("nan")
    body["readings"][3]["energy_wh"] = "lots"
    [outcome] = store.commit([submission(body)])
    assert outcome.accepted == 1
    assert [seq for seq, _ in outcome.rejected] == [2, 3, 4]
    assert "voltage_v 300.0 V is outside" in outcome.rejected[0][1]
    assert [r["seq"] for r in stored(influx)] == [1]
    quarantined = stored(influx, "energymon_quarantine")
    assert [r["seq"] for r in quarantined] == [2, 3, 4]
    assert '"energy_wh": "lots"' in quarantined[2]["payload"]
    # Re-sent quarantined readings are duplicates, not quarantined twice.
    [again] = store.commit([submission(body)])
    assert (again.duplicates, again.rejected) == (4, ())


def test_decreasing_energy_is_a_reset_not_an_error(influx: InfluxClient, tmp_path: Path) -> None:
    store = make_store(influx, tmp_path, ManualClock(ARRIVAL_MS))
    body = batch(range(1, 3))
    body["readings"][1]["energy_wh"] = 0
    [outcome] = store.commit([submission(body)])
    assert (outcome.accepted, outcome.rejected) == (2, ())


def test_influx_down_spools_then_drains_in_order_exactly_once(
    own_influx: InfluxServer, tmp_path: Path
) -> None:
    influx = InfluxClient(own_influx.url, "energymon", timeout_s=1.0)
    clock = ManualClock(ARRIVAL_MS)
    store = make_store(influx, tmp_path / "state", clock)
    store.commit([submission(batch(range(1, 4)))])
    own_influx.stop()
    for start in (4, 7, 10):
        [outcome] = store.commit([submission(batch(range(start, start + 3)))])
        assert outcome.accepted == 3  # acknowledged: durable in the spool
    assert store.spool.depth_points == 9
    assert store.influx_reachable is False
    assert store.drain_once(100).error is not None

    own_influx.start()
    # Written while the spool is not empty: queued behind it, so the order is kept.
    store.commit([submission(batch(range(13, 15)))])
    results = [store.drain_once(4) for _ in range(5)]
    assert sum(r.written_points for r in results) == 11
    assert store.spool.empty
    rows = stored(influx)
    assert [r["seq"] for r in rows] == list(range(1, 15))


def test_spool_bound_refuses_instead_of_dropping(
    own_influx: InfluxServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    influx = InfluxClient(own_influx.url, "energymon", timeout_s=1.0)
    store = make_store(influx, tmp_path / "state", ManualClock(ARRIVAL_MS), spool_max_bytes=3000)
    own_influx.stop()
    store.commit([submission(batch(range(1, 6)))])
    with pytest.raises(SpoolFullError):
        store.commit([submission(batch(range(6, 40)))])
    assert store.spool.full_refusals == 1
    assert any("spool is full" in r.message for r in caplog.records)
    # Refused readings are not marked seen: the device's re-send is stored once there is room.
    own_influx.start()
    assert store.drain_once(100).written_points == 5
    [outcome] = store.commit([submission(batch(range(6, 40)))])
    assert (outcome.accepted, outcome.duplicates) == (34, 0)


def test_permanently_refused_points_are_parked_not_lost(
    influx: InfluxClient, tmp_path: Path
) -> None:
    # Someone else wrote voltage_v as a string: InfluxDB refuses ours for a type conflict.
    # Type conflicts are checked per shard, so the foreign point lies in the same week.
    influx.write([f'electricity,home=h1,device=other,sensor=s voltage_v="x" {ARRIVAL_MS}'])
    store = make_store(influx, tmp_path, ManualClock(ARRIVAL_MS))
    [outcome] = store.commit([submission(batch(range(1, 3)))])
    assert outcome.accepted == 2
    [parked] = store.spool.parked()
    assert parked.points == 2 and "conflict" in parked.reason
    # Still known after a restart, so health keeps showing it until an operator acts.
    assert make_store(influx, tmp_path, ManualClock(ARRIVAL_MS)).spool.parked_points == 2


def test_parked_batches_can_be_replayed_once_the_conflict_is_gone(
    influx: InfluxClient,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    use_settings: Callable[..., Settings],
) -> None:
    from energymon_cli.main import main

    influx.write([f'electricity,home=h1,device=other,sensor=s voltage_v="x" {ARRIVAL_MS}'])
    store = make_store(influx, tmp_path, ManualClock(ARRIVAL_MS))
    store.commit([submission(batch(range(1, 3)))])
    store.db.close()
    use_settings(data_dir=tmp_path, influx_url=influx.url, influx_db=influx.database)
    assert main(["parked", "list"]) == 0
    assert "2 points" in capsys.readouterr().out
    assert main(["parked", "replay"]) == 2  # InfluxDB still refuses: the batch stays
    # The operator removes the foreign points that caused the conflict.
    influx.query("DROP MEASUREMENT electricity", method="POST")
    assert main(["parked", "replay"]) == 0
    assert main(["parked", "list"]) == 0
    assert "no parked batches" in capsys.readouterr().out
    assert [r["seq"] for r in stored(influx)] == [1, 2]


def test_empty_heartbeat_anchors_the_boot(influx: InfluxClient, tmp_path: Path) -> None:
    # The firmware's first request of a boot is empty, so that readings it spills to its SD card
    # can still be timed after a power cut.
    store = make_store(influx, tmp_path, ManualClock(ARRIVAL_MS))
    [heartbeat] = store.commit([submission(batch([], uptime_ms=2000))])
    assert heartbeat.ack is None
    [outcome] = store.commit([submission(batch([5], uptime_ms=9000), ARRIVAL_MS + 3_600_000)])
    assert outcome.accepted == 1
    assert stored(influx)[0]["time"] == ARRIVAL_MS - 2000 + 5000
