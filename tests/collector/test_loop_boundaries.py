"""The collector's background loop cannot die, and its health tells the truth: the maintenance
step stepped by hand on a manual clock against a real influxd (behind a gate that can fail its
writes), with a real full database, a health value InfluxDB cannot hold, InfluxDB gone and back
while no traffic flows, and points parked."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest

from collector import integrity
from collector.health import HealthReporter, snapshot
from collector.maintenance import PROBE_INTERVAL_S, Maintenance
from collector.store import DurableStore
from collector.tally import SpoolTally
from collector.watch import Watch
from energymon import journal
from energymon.clock import ManualClock
from energymon.errors import StoreError
from energymon.influx import InfluxClient
from harness.influxd import InfluxServer
from tests.collector.helpers import batch
from tests.collector.inprocess import InfluxGate
from tests.collector.test_store import ARRIVAL_MS, make_store, submission

HEALTH_INTERVAL_S = 60.0
UNLIMITED_PAGES = 1_073_741_823


def make(influx: InfluxClient, data_dir: Path, clock: ManualClock) -> Maintenance:
    store = make_store(influx, data_dir, clock, write_timeout_s=1.0)
    watch = Watch()
    reporter = HealthReporter(store, clock, HEALTH_INTERVAL_S, watch)
    return Maintenance(
        store,
        reporter,
        clock,
        drain_batch_points=100,
        journal_retention_s=86400.0,
        watch=watch,
    )


def health(m: Maintenance) -> dict[str, object]:
    return snapshot(m.store, m.clock.now_ms(), m.watch).to_json()


def fill_the_disk(store: DurableStore) -> None:
    """Make the state database full, as a full SD card makes it: SQLite's own SQLITE_FULL."""
    store.db.fetch_all("PRAGMA max_page_count = 1")
    with pytest.raises(StoreError, match="full"):
        for i in range(100_000):
            with store.db.transaction() as conn:
                journal.record(conn, recorded_ms=ARRIVAL_MS, min_time_ms=i, max_time_ms=i, points=1)


@pytest.fixture
def gate(influx: InfluxClient) -> InfluxGate:
    g = InfluxGate(influx.url)
    yield g  # type: ignore[misc]
    g.close()


def test_a_full_disk_does_not_stop_draining(
    influx: InfluxClient, gate: InfluxGate, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = ManualClock(ARRIVAL_MS)
    m = make(InfluxClient(gate.url, influx.database, timeout_s=2.0), tmp_path, clock)
    gate.fail()
    m.store.commit([submission(batch(range(1, 4)))])
    assert m.store.spool.depth_points == 3
    gate.failing = False
    fill_the_disk(m.store)

    caplog.set_level(logging.ERROR, logger="energymon.boundary")
    steps = []
    for _ in range(5):
        steps.append(m.run_once())  # raised out of the loop before the boundaries
        clock.advance(70.0)
    assert all("drain" in s.failed for s in steps)
    report = health(m)
    assert report["status"] == "degraded"
    assert any("maintenance: drain is failing" in r and "full" in r for r in report["reasons"])
    drain_logs = [r for r in caplog.records if "maintenance: drain" in r.getMessage()]
    assert len(drain_logs) == 1  # once, with its context; the repetitions are only counted
    assert report["loops"]["faults"][0]["failures"] >= 5

    m.store.db.fetch_all(f"PRAGMA max_page_count = {UNLIMITED_PAGES}")
    clock.advance(120.0)
    while m.run_once().more_work:
        pass
    assert m.store.spool.empty
    seqs = {r["seq"] for s in influx.query("SELECT seq FROM electricity") for r in s.records()}
    assert seqs == {1, 2, 3}
    assert health(m)["loops"]["faults"] == []


def test_a_health_value_over_int64_does_not_stop_draining(
    influx: InfluxClient, gate: InfluxGate, tmp_path: Path
) -> None:
    clock = ManualClock(ARRIVAL_MS)
    m = make(InfluxClient(gate.url, influx.database, timeout_s=2.0), tmp_path, clock)
    # Counts a device may report one by one, whose sum InfluxDB's 64-bit integers cannot hold
    # (the HTTP API refuses this many sensors; another source might not).
    huge = {f"s{i}": 2**53 for i in range(1100)}
    m.store.commit([replace(submission(batch([1])), meter_errors=huge)])
    gate.fail()
    m.store.commit([submission(batch([2, 3]))])
    gate.failing = False
    first = m.run_once()
    assert "health" in first.failed
    assert first.drain is not None and first.drain.written_points == 2
    assert m.store.spool.empty
    assert any("maintenance: health is failing" in r for r in health(m)["reasons"])


def test_influx_death_and_return_show_within_one_probe_when_idle(
    own_influx: InfluxServer, tmp_path: Path
) -> None:
    clock = ManualClock(ARRIVAL_MS)
    m = make(InfluxClient(own_influx.url, "energymon", timeout_s=1.0), tmp_path, clock)
    m.store.influx.create_database()
    m.run_once()
    assert health(m)["influx"]["reachable"] is True
    own_influx.stop()
    clock.advance(PROBE_INTERVAL_S)
    assert PROBE_INTERVAL_S < HEALTH_INTERVAL_S
    m.run_once()  # no traffic, no health record due: only the probe can tell
    report = health(m)
    assert report["influx"]["reachable"] is False and report["status"] == "degraded"
    own_influx.start()
    clock.advance(PROBE_INTERVAL_S)
    m.run_once()
    report = health(m)
    assert report["influx"]["reachable"] is True and report["status"] == "ok"


def test_parked_points_and_stopped_draining_show_in_health(
    influx: InfluxClient, gate: InfluxGate, tmp_path: Path
) -> None:
    clock = ManualClock(ARRIVAL_MS)
    m = make(InfluxClient(gate.url, influx.database, timeout_s=2.0), tmp_path, clock)
    m.run_once()
    assert health(m)["loops"]["drain"] == {"last_success_age_s": 0.0, "error": None}
    gate.fail()
    m.store.commit([submission(batch([1, 2]))])
    clock.advance(40.0)
    m.run_once()
    drain = health(m)["loops"]["drain"]
    assert drain["last_success_age_s"] == 40.0 and "503" in str(drain["error"])
    gate.failing = False
    # A field of another type: InfluxDB refuses the readings for good, and they are parked.
    influx.write([f'electricity,device=mega-01,home=h1,sensor=pzem1 voltage_v="x" {ARRIVAL_MS}'])
    clock.advance(40.0)
    m.run_once()
    report = health(m)
    assert report["parked_points"] == 2 and m.store.spool.empty
    assert report["status"] == "degraded"
    assert report["reasons"] == ["2 acknowledged points are parked: InfluxDB refused them"]


def test_a_damaged_spool_page_is_shown_and_the_rest_goes_on(
    influx: InfluxClient, gate: InfluxGate, tmp_path: Path
) -> None:
    clock = ManualClock(ARRIVAL_MS)
    m = make(InfluxClient(gate.url, influx.database, timeout_s=2.0), tmp_path, clock)
    gate.fail()
    m.store.commit([submission(batch(range(1, 4)))])
    gate.failing = False
    db = m.store.db
    db.fetch_all("PRAGMA wal_checkpoint(TRUNCATE)")
    [(page_size,)] = db.fetch_all("PRAGMA page_size")
    [(root,)] = db.fetch_all("SELECT rootpage FROM sqlite_master WHERE name = 'spool'")
    with open(db.path, "r+b") as f:  # the card returns garbage for the spool's page
        f.seek((root - 1) * page_size)
        f.write(b"\xa5" * page_size)
    db.fetch_all("PRAGMA shrink_memory")  # no cached copy hides the damage

    steps = []
    for _ in range(3):
        steps.append(m.run_once())
        clock.advance(HEALTH_INTERVAL_S)
    # The spool's page cannot be read, nor the health records spooled behind it; the step
    # still returns, InfluxDB is still probed, and the loop is there to try again.
    assert all(s.failed == ("drain", "health") for s in steps)
    assert all(s.probed_reachable is True for s in steps)
    report = health(m)
    assert report["status"] == "degraded"
    assert any("maintenance: drain is failing" in r and "malformed" in r for r in report["reasons"])
    # And the next start refuses this file instead of trusting it.
    assert integrity.check(m.store.db, SpoolTally(tmp_path)).quick_check != "ok"
