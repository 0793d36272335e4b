"""The collector's background work stepped by hand on a manual clock, against real influxd:
health records on schedule, the spool drained with back-off, the journal pruned."""

from __future__ import annotations

from pathlib import Path

from collector.health import HealthReporter
from collector.maintenance import PRUNE_EVERY_S, Maintenance
from energymon import journal
from energymon.clock import ManualClock
from energymon.influx import InfluxClient
from harness.influxd import InfluxServer
from tests.collector.helpers import batch
from tests.collector.test_store import ARRIVAL_MS, make_store, submission

HEALTH_INTERVAL_S = 60.0
RETENTION_S = 7 * 86400.0


def make(influx: InfluxClient, data_dir: Path, clock: ManualClock) -> Maintenance:
    store = make_store(influx, data_dir, clock, write_timeout_s=1.0)
    reporter = HealthReporter(store, clock, HEALTH_INTERVAL_S)
    return Maintenance(
        store, reporter, clock, drain_batch_points=4, journal_retention_s=RETENTION_S
    )


def health_records(influx: InfluxClient) -> int:
    series = influx.query("SELECT count(spool_points) FROM energymon_health")
    return sum(int(str(r["count"])) for s in series for r in s.records())


def test_health_is_written_once_per_interval(influx: InfluxClient, tmp_path: Path) -> None:
    clock = ManualClock(ARRIVAL_MS)
    maintenance = make(influx, tmp_path, clock)
    maintenance.store.commit([submission(batch(range(1, 3)))])
    first = maintenance.run_once()
    assert first.health_points == 2  # the collector's record and the device's
    assert maintenance.run_once().health_points == 0
    clock.advance(HEALTH_INTERVAL_S)
    assert maintenance.run_once().health_points == 2
    assert health_records(influx) == 2


def test_the_spool_drains_with_back_off_once_influx_is_back(
    own_influx: InfluxServer, tmp_path: Path
) -> None:
    influx = InfluxClient(own_influx.url, "energymon", timeout_s=1.0)
    clock = ManualClock(ARRIVAL_MS)
    maintenance = make(influx, tmp_path / "state", clock)
    store = maintenance.store
    store.commit([submission(batch(range(1, 2)))])
    own_influx.stop()
    for first in (2, 5, 8):
        store.commit([submission(batch(range(first, first + 3)))])
    assert store.spool.depth_points == 9

    failed = maintenance.run_once()
    assert failed.drain is not None and failed.drain.error is not None
    assert not failed.more_work
    own_influx.start()
    assert maintenance.run_once().drain is None  # still backing off
    clock.advance(1.0)
    steps = [maintenance.run_once()]
    while steps[-1].more_work:
        steps.append(maintenance.run_once())
    # Spooled rows of three readings, then the health record spooled by the failed step.
    assert [s.drain.written_points for s in steps if s.drain] == [3, 3, 3, 2]
    assert store.spool.empty
    rows = [r for s in influx.query("SELECT seq FROM electricity") for r in s.records()]
    assert sorted(int(str(r["seq"])) for r in rows) == list(range(1, 11))


def test_the_journal_is_pruned_past_its_retention(influx: InfluxClient, tmp_path: Path) -> None:
    clock = ManualClock(ARRIVAL_MS)
    maintenance = make(influx, tmp_path, clock)
    maintenance.store.commit([submission(batch(range(1, 3)))])
    assert maintenance.run_once().pruned_journal_entries == 0
    clock.advance(RETENTION_S + PRUNE_EVERY_S)
    step = maintenance.run_once()
    # The readings' entry is older than the retention; the health record just written is not.
    assert step.pruned_journal_entries == 2
    reader = journal.JournalReader(tmp_path)
    try:
        assert [e.points for e in reader.entries_after(0)] == [2]
    finally:
        reader.close()
