"""The rollup worker on a real influxd: exact values on seeded raw data (a tariff change within
the day, a meter reset, a gap, the local day boundary of Asia/Jakarta at 17:00 UTC, a month
bar, a sub-meter), late data recomputing the past and journalled, a crash redone."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from collector.rollup import RollupConfig, RollupStep, RollupWorker
from collector.rollup_rebuild import rebuild
from collector.statedb import StateDB
from collector.watch import Watch
from energymon import journal
from energymon.clock import ManualClock
from energymon.errors import InfluxError
from energymon.influx import InfluxClient
from energymon.schema import Measurement, Reading
from energymon.settings import Settings, make_settings
from harness.influxd import InfluxServer

HOME = "home-r"
MAINS = ("mega-01", "pzem1")
SUB = ("mega-01", "pzem2")
# Flat 1000 per kWh, 3000 from 17:00 to 22:00 local: the price changes within the day.
TARIFF = json.dumps(
    [
        {
            "from": "2026-01-01",
            "price_per_kwh": 1000,
            "windows": [{"start": "17:00", "end": "22:00", "price_per_kwh": 3000}],
        }
    ]
)


def ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).replace(tzinfo=UTC).timestamp() * 1000)


def reading(meter: tuple[str, str], seq: int, time_ms: int, counter: int, k: int = 0) -> Reading:
    m = Measurement(220.0 + k % 3, 1.0 + (k % 4) / 10, 200.0 + k, counter, 50.0, 0.9, k == 3)
    return Reading(meter[0], meter[1], 1, seq, time_ms, m)


def mains_readings() -> list[Reading]:
    """Local Feb 28 23:59:30, Mar 1 00:00:30 and 00:01:30, then (after a nine-day outage)
    Mar 10 16:50:00-17:09:30 every 30 s with a reset at 17:05:00 local."""
    out = [
        reading(MAINS, 1, ms("2026-02-28T16:59:30"), 499),
        reading(MAINS, 2, ms("2026-02-28T17:00:30"), 500),
        reading(MAINS, 3, ms("2026-02-28T17:01:30"), 510),
    ]
    base = ms("2026-03-10T09:50:00")
    for k in range(40):
        counter = 1000 + 5 * k if k < 30 else 3 + 5 * (k - 30)
        out.append(reading(MAINS, 10 + k, base + k * 30_000, counter, k))
    return out


def sub_readings() -> list[Reading]:
    base = ms("2026-03-10T09:50:00")
    return [reading(SUB, 1 + k, base + k * 60_000, 100 + 2 * k, k) for k in range(20)]


class Rig:
    def __init__(self, influx: InfluxClient, data_dir: Path, **settings: Any) -> None:
        self.influx = influx
        self.data_dir = data_dir
        self.settings: Settings = make_settings(
            home=HOME,
            data_dir=data_dir,
            influx_db=influx.database,
            tariff=TARIFF,
            layout=f"mains={MAINS[0]}/{MAINS[1]};submeter={SUB[0]}/{SUB[1]}",
            **settings,
        )
        self.clock = ManualClock(ms("2026-03-10T10:30:00"))
        self.db = StateDB(data_dir)
        self.watch = Watch()

    def worker(self) -> RollupWorker:
        config = RollupConfig.from_settings(self.settings)
        return RollupWorker(self.db, self.influx, config, self.clock, self.watch)

    def store(self, readings: Sequence[Reading]) -> None:
        """What the collector's store does: journal the range durably, then write."""
        times = [r.time_ms for r in readings]
        with self.db.transaction() as conn:
            journal.record(
                conn,
                recorded_ms=self.clock.now_ms(),
                min_time_ms=min(times),
                max_time_ms=max(times),
                points=len(times),
            )
        self.influx.write([r.to_line(HOME) for r in readings])

    def settle_and_run(self, worker: RollupWorker) -> list[RollupStep]:
        self.clock.advance(10)
        steps = [worker.run_once()]
        while steps[-1].more_work:
            steps.append(worker.run_once())
        assert steps[-1].pending == 0
        return steps

    def rows(self, measurement: str, sensor: str = MAINS[1]) -> dict[int, dict[str, Any]]:
        q = f"SELECT * FROM {measurement} WHERE home = '{HOME}' AND sensor = '{sensor}'"
        return {int(r["time"]): r for s in self.influx.query(q) for r in s.records()}


@pytest.fixture
def rig(influx: InfluxClient, tmp_path: Path) -> Iterator[Rig]:
    rig = Rig(influx, tmp_path / "data")
    yield rig
    rig.db.close()


def test_days_hours_and_months_are_exact(rig: Rig) -> None:
    worker = rig.worker()
    rig.store(mains_readings())
    rig.store(sub_readings())
    rig.settle_and_run(worker)

    days = rig.rows("energymon_day")
    # Local days start at 17:00 UTC in Asia/Jakarta; the reading at 16:59:30 UTC is Feb 28's.
    assert sorted(days) == [
        ms("2026-02-27T17:00:00"),
        ms("2026-02-28T17:00:00"),
        ms("2026-03-09T17:00:00"),
    ]
    assert days[ms("2026-02-27T17:00:00")]["energy_wh"] == 0.0
    assert days[ms("2026-02-27T17:00:00")]["samples"] == 1
    assert days[ms("2026-02-28T17:00:00")]["energy_wh"] == 11.0
    assert days[ms("2026-02-28T17:00:00")]["cost"] == pytest.approx(11.0)
    today = days[ms("2026-03-09T17:00:00")]
    # 490 Wh across the outage land on its first reading (16:50 local, flat price); 95 Wh
    # before 17:00 at 1000; 50 Wh, the reset's 3 Wh and 45 Wh after it at 3000.
    assert today["energy_wh"] == 490 + 95 + 50 + 3 + 45
    assert today["cost"] == pytest.approx(490 + 95 + (50 + 3 + 45) * 3)
    assert today["samples"] == 40
    assert today["role"] == "mains"
    assert today["voltage_v_min"] == 220.0 and today["voltage_v_max"] == 222.0

    # The outage is a gap: no day, hour or minute inside it, never a zero.
    assert not [
        t for t in rig.rows("energymon_1m") if ms("2026-03-01T00:00") < t < ms("2026-03-10T09:00")
    ]

    months = rig.rows("energymon_month")
    assert sorted(months) == [ms("2026-01-31T17:00:00"), ms("2026-02-28T17:00:00")]
    march = months[ms("2026-02-28T17:00:00")]
    assert march["energy_wh"] == 11 + 683
    assert march["cost"] == pytest.approx(11 + 490 + 95 + 294)
    assert march["samples"] == 42

    hours = rig.rows("energymon_1h")
    assert hours[ms("2026-03-10T09:00:00")]["energy_wh"] == 490 + 95
    assert hours[ms("2026-03-10T10:00:00")]["energy_wh"] == 98
    assert hours[ms("2026-03-10T10:00:00")]["cost"] == pytest.approx(294)
    assert hours[ms("2026-03-10T10:00:00")]["samples"] == 20

    minute = rig.rows("energymon_1m")[ms("2026-03-10T09:51:00")]
    ks = (2, 3)
    vas = [(220.0 + k % 3) * (1.0 + (k % 4) / 10) for k in ks]
    assert minute["samples"] == 2
    assert minute["apparent_power_va_mean"] == pytest.approx(sum(vas) / 2)
    assert minute["apparent_power_va_max"] == pytest.approx(max(vas))
    assert minute["power_w_min"] == 202.0 and minute["power_w_max"] == 203.0
    assert minute["alarm_readings"] == 1
    assert minute["energy_wh"] == 10.0

    sub_day = rig.rows("energymon_day", SUB[1])[ms("2026-03-09T17:00:00")]
    assert sub_day["role"] == "submeter"
    assert sub_day["energy_wh"] == 2 * 19


def test_late_data_recomputes_the_past_and_is_journalled(rig: Rig) -> None:
    worker = rig.worker()
    rig.store(mains_readings())
    rig.settle_and_run(worker)
    before_id = rig.db.fetch_all("SELECT max(id) FROM write_journal")[0][0]

    # A reading from inside the outage arrives late (a device's buffer).
    rig.clock.advance(3600)
    late = ms("2026-03-05T05:00:10")
    rig.store([reading(MAINS, 5, late, 700)])
    rig.settle_and_run(worker)

    days = rig.rows("energymon_day")
    assert days[ms("2026-03-04T17:00:00")]["energy_wh"] == 190
    # The first reading after it now counts from 700, not from 510.
    assert days[ms("2026-03-09T17:00:00")]["energy_wh"] == 683 - 190
    assert rig.rows("energymon_month")[ms("2026-02-28T17:00:00")]["energy_wh"] == 694
    assert rig.rows("energymon_1h")[ms("2026-03-10T09:00:00")]["energy_wh"] == 300 + 95

    entries = rig.db.fetch_all(
        "SELECT min_time_ms, max_time_ms FROM write_journal WHERE id > ? AND kind = 'rollup'",
        (before_id,),
    )
    covered = [(lo, hi) for lo, hi in entries]
    for t in (ms("2026-03-05T05:00:00"), ms("2026-03-10T09:50:00"), ms("2026-03-04T17:00:00")):
        assert any(lo <= t <= hi for lo, hi in covered), t


def test_own_entries_do_not_wake_the_worker(rig: Rig) -> None:
    worker = rig.worker()
    rig.store(mains_readings()[:3])
    rig.settle_and_run(worker)
    rig.clock.advance(60)
    step = worker.run_once()
    assert (step.entries, step.raw_spans, step.points) == (0, 0, 0)


def test_a_crash_redoes_work_and_never_skips_it(own_influx: InfluxServer, tmp_path: Path) -> None:
    influx = InfluxClient(own_influx.url, "rollup_crash")
    influx.create_database()
    rig = Rig(influx, tmp_path / "data")
    worker = rig.worker()
    rig.store(mains_readings())
    rig.clock.advance(10)
    own_influx.stop()
    # The journal was followed (durably) but nothing could be computed or written.
    with pytest.raises(InfluxError):
        worker.run_once()
    assert worker.pending_count() > 0
    assert rig.watch.rollup is not None and rig.watch.rollup.oldest_pending_ms is not None
    rig.db.close()

    own_influx.start()
    rig.db = StateDB(rig.data_dir)
    rig.settle_and_run(rig.worker())
    today = rig.rows("energymon_day")[ms("2026-03-09T17:00:00")]
    assert today["energy_wh"] == 683
    rig.db.close()
    influx.close()


def test_rebuild_writes_the_same_rollups(rig: Rig) -> None:
    rig.store(mains_readings())
    rig.settle_and_run(rig.worker())
    before = {m: rig.rows(m) for m in ("energymon_1m", "energymon_1h", "energymon_day")}
    seen: list[tuple[int, int]] = []
    points = rebuild(
        rig.influx,
        rig.settings,
        ms("2026-02-01T00:00:00"),
        ms("2026-04-01T00:00:00"),
        db=rig.db,
        clock=rig.clock,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert points > 0 and seen[-1][0] == seen[-1][1]
    assert {m: rig.rows(m) for m in before} == before


def test_an_entry_stamped_ahead_is_followed_once_known_long_enough(rig: Rig) -> None:
    worker = rig.worker()
    rig.clock.jump(3600)
    rig.store(mains_readings()[:3])
    # The wall clock is set back an hour: by its stamp the entry is an hour in the future.
    rig.clock.jump(-3600)
    assert worker.run_once().entries == 0
    rig.clock.advance(1)
    assert worker.run_once().entries == 0
    rig.clock.advance(RollupConfig.from_settings(rig.settings).settle_ms / 1000)
    assert worker.run_once().entries == 1


def test_days_follow_daylight_saving_time(influx: InfluxClient, tmp_path: Path) -> None:
    rig = Rig(influx, tmp_path / "data", timezone="Europe/Berlin")
    worker = rig.worker()
    # One reading an hour from Saturday 20:00 UTC to Monday 02:00 UTC; Berlin moves its clocks
    # forward on Sunday, 2026-03-29, whose day has 23 hours.
    start = ms("2026-03-28T20:00:00")
    rig.store([reading(MAINS, 1 + h, start + h * 3_600_000, 100 + 10 * h) for h in range(31)])
    rig.settle_and_run(worker)
    days = rig.rows("energymon_day")
    assert sorted(days) == [
        ms("2026-03-27T23:00:00"),
        ms("2026-03-28T23:00:00"),
        ms("2026-03-29T22:00:00"),
    ]
    # 23:00 UTC Saturday to 22:00 UTC Sunday: 23 readings, 10 Wh each.
    assert days[ms("2026-03-28T23:00:00")]["samples"] == 23
    assert days[ms("2026-03-28T23:00:00")]["energy_wh"] == 230.0
    [month] = rig.rows("energymon_month").values()
    assert month["time"] == ms("2026-02-28T23:00:00") and month["energy_wh"] == 300.0
    rig.db.close()


def test_whole_volt_readings_keep_rollup_fields_float(rig: Rig) -> None:
    """InfluxQL's JSON prints 230.0 as 230: a minute whose extremes are whole volts must still
    be written with float fields, or the next minute's 230.5 V is refused for good. A client's
    first query is answered in JSON (it learns the server's version, and with it MessagePack,
    from the answer): the worker gets a client of its own that has not asked anything yet."""
    fresh = InfluxClient(rig.influx.url, rig.influx.database)
    config = RollupConfig.from_settings(rig.settings)
    worker = RollupWorker(rig.db, fresh, config, rig.clock, rig.watch)
    base = ms("2026-03-10T10:00:00")
    whole = Measurement(230.0, 1.0, 230.0, 1000, 50.0, 1.0, False)
    half = Measurement(230.5, 1.5, 345.75, 1001, 50.0, 1.0, False)
    rig.store([Reading(MAINS[0], MAINS[1], 1, 1, base, whole)])
    rig.settle_and_run(worker)
    rig.store([Reading(MAINS[0], MAINS[1], 1, 2, base + 60_000, half)])
    rig.settle_and_run(worker)
    minutes = rig.rows("energymon_1m")
    assert minutes[base + 60_000]["voltage_v_max"] == 230.5
    [keys] = rig.influx.query("SHOW FIELD KEYS FROM energymon_1m")
    types = dict(keys.values)
    assert types["voltage_v_max"] == types["power_w_min"] == "float"
