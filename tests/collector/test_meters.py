"""Known meters and the home's profile in `energymon_health` / `energymon_home`, and the rollup
worker's figures in the collector's health."""

from __future__ import annotations

from pathlib import Path

from collector import meters
from collector.health import HealthReporter, snapshot
from collector.statedb import StateDB
from collector.watch import RollupWatch, Watch
from energymon.clock import ManualClock
from energymon.influx import InfluxClient
from energymon.layout import Meter
from energymon.settings import make_settings
from tests.collector.test_store import make_store

START_MS = 1_700_000_000_000


def _fields(influx: InfluxClient, q: str) -> dict[tuple[str, ...], dict[str, object]]:
    out: dict[tuple[str, ...], dict[str, object]] = {}
    for series in influx.query(q):
        for record in series.records():
            key = tuple(series.tags[t] for t in sorted(series.tags))
            out[key] = record
    return out


def test_every_known_meter_is_reported_and_survives_a_restart(
    influx: InfluxClient, tmp_path: Path
) -> None:
    settings = make_settings(
        home="h1",
        layout="mains=mega-01/pzem1;submeter=mega-01/pzem2",
        meter_expected_interval_s=10,
        contracted_va=2200,
        daily_budget_kwh=12,
    )
    clock = ManualClock(START_MS)
    db = StateDB(tmp_path)
    meters.ensure_schema(db)
    with db.transaction() as conn:
        meters.remember(conn, {Meter("mega-01", "pzem1"): START_MS - 5_000})
        meters.remember(conn, {Meter("mega-02", "pzem1"): START_MS - 600_000})
        # A newer reading never moves back.
        meters.remember(conn, {Meter("mega-01", "pzem1"): START_MS - 50_000})
    db.close()

    # After a restart nothing was heard yet: the table still knows both devices.
    store = make_store(influx, tmp_path, clock)
    report = meters.MeterReport(settings, settings.home_layout(), START_MS - 100_000)
    reporter = HealthReporter(
        store,
        clock,
        60,
        Watch(),
        extra=lambda h: report.lines(meters.known(store.db), h.devices, h.now_ms),
    )
    assert reporter.run_once().written
    health = _fields(influx, "SELECT * FROM energymon_health WHERE component = 'meter' GROUP BY *")
    by_meter = {(k[1], k[4]): v for k, v in health.items()}
    assert by_meter[("mega-01", "pzem1")]["online"] == 1
    assert by_meter[("mega-01", "pzem1")]["reading_age_s"] == 5.0
    # Listed by the layout but never seen: its age runs from the collector's start.
    assert by_meter[("mega-01", "pzem2")]["online"] == 0
    assert by_meter[("mega-01", "pzem2")]["reading_age_s"] == 100.0
    assert by_meter[("mega-02", "pzem1")]["online"] == 0
    assert by_meter[("mega-02", "pzem1")]["reading_age_s"] == 600.0
    roles = {(k[1], k[4]): k[3] for k in health}
    assert roles[("mega-01", "pzem2")] == "submeter"
    assert roles[("mega-02", "pzem1")] == "circuit"

    devices = _fields(
        influx,
        "SELECT reading_age_s FROM energymon_health WHERE component = 'collector' "
        "AND device != '' GROUP BY device",
    )
    assert {k: v["reading_age_s"] for k, v in devices.items()} == {
        ("mega-01",): 5.0,
        ("mega-02",): 600.0,
    }

    [home] = _fields(influx, "SELECT * FROM energymon_home GROUP BY *").values()
    assert home["contracted_va"] == 2200.0
    assert home["voltage_low_v"] == 198.0 and home["voltage_high_v"] == 242.0
    assert home["daily_budget_wh"] == 12000.0 and home["daily_budget_cost"] == 0.0
    assert home["currency"] == "IDR" and home["timezone"] == "Asia/Jakarta"
    store.db.close()


def test_a_stuck_rollup_worker_degrades_health(influx: InfluxClient, tmp_path: Path) -> None:
    clock = ManualClock(START_MS)
    store = make_store(influx, tmp_path, clock)
    watch = Watch(rollup=RollupWatch(5.0, START_MS, START_MS - 30_000))
    health = snapshot(store, START_MS + 10_000, watch)
    assert health.status == "ok"
    assert health.loops is not None and health.loops.rollup_lag_s == 40.0
    assert health.to_json()["loops"]["rollup"] == {
        "lag_s": 40.0,
        "last_step_age_s": 10.0,
        "overdue_s": 5.0,
    }
    assert "rollup_lag_s=40.0" in health.to_lines("h1")[0]
    stuck = snapshot(store, START_MS + 16_000, watch)
    assert stuck.reasons == ["the rollup worker has not stepped for 16 s"]
    store.db.close()


def test_a_rollup_worker_pausing_behind_a_backlog_is_not_stuck(
    influx: InfluxClient, tmp_path: Path
) -> None:
    store = make_store(influx, tmp_path, ManualClock(START_MS))
    # A long step, then the long pause that keeps the worker to its share of the time.
    watch = Watch(rollup=RollupWatch(5.0, START_MS, START_MS - 30_000, pause_s=49.0))
    assert snapshot(store, START_MS + 55_000, watch).status == "ok"
    stuck = snapshot(store, START_MS + 60_000, watch)
    assert stuck.reasons == ["the rollup worker has not stepped for 60 s"]
    store.db.close()
