"""Every dashboard query, expanded as Grafana expands it, run against known data in a real
influxd: every panel at 1 h, 24 h, 30 d and 1 y, and the key panels to exact values."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping

import pytest

from energymon.influx import InfluxClient
from energymon.influx_answers import Series
from energymon_grafana.interval import duration_ms, grafana_interval
from tests.grafana.grafana_files import (
    DASHBOARDS,
    PanelQuery,
    dashboard,
    datasource_time_interval,
    load_dashboard,
    panel_queries,
    substitute,
    variable_queries,
)
from tests.grafana.known_data import (
    ALARM_MINUTES,
    HEATPUMP,
    KNOWN,
    MAINS,
    MAINS_GAP,
    METERS,
    MINUTE_MS,
    QUARANTINE_MINUTES,
    SOLAR,
    SPOOLING_MINUTES,
)
from tests.grafana.rollup_data import (
    CONTRACTED_VA,
    NEVER_SEEN,
    Calendar,
    day_cost,
    day_energy_wh,
    month_cost,
    month_energy_wh,
)

Check = Callable[[list[Series]], None]
HOME = "energymon-home-energy"
HEALTH = "energymon-system-health"
FLEET = "energymon-fleet"
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS
RANGES = {"1h": HOUR_MS, "24h": DAY_MS, "30d": 30 * DAY_MS, "1y": 365 * DAY_MS}
DEFAULT_RANGE_MS = 6 * HOUR_MS
ALL_QUERIES = [q for path in DASHBOARDS for q in panel_queries(load_dashboard(path))]
_GUARD_FROM = re.compile(r"\$__interval_ms >= (\d+)")
_GUARD_BELOW = re.compile(r"\$__interval_ms < (\d+)")


def expand(
    q: PanelQuery, range_ms: int, variables: Mapping[str, str | list[str]] | None = None
) -> str:
    """The query as Grafana sends it for a dashboard range ending now: the panel's own
    relative time replaces the range; `$__interval` from the range and the panel's
    resolution and min interval; `$timeFilter` in epoch milliseconds, as the backend writes
    it."""
    if q.time_from is not None:
        range_ms = duration_ms(q.time_from)
    interval = grafana_interval(
        range_ms, q.max_data_points or 1000, q.min_interval or datasource_time_interval()
    )
    now_ms = int(time.time() * 1000)
    time_filter = f"time >= {now_ms - range_ms}ms and time <= {now_ms}ms"
    return substitute(q.query, variables, time_filter, interval.text, interval.ms)


def serves(q: PanelQuery, range_ms: int) -> bool:
    """Whether the target's source guard lets it read at this range (unguarded: always)."""
    if q.time_from is not None:
        range_ms = duration_ms(q.time_from)
    ms = grafana_interval(range_ms, q.max_data_points or 1000, q.min_interval or "10s").ms
    low = _GUARD_FROM.search(q.query)
    below = _GUARD_BELOW.search(q.query)
    return (not low or ms >= int(low.group(1))) and (not below or ms < int(below.group(1)))


def query(
    client: InfluxClient,
    board: str,
    key: str,
    range_ms: int = DEFAULT_RANGE_MS,
    variables: Mapping[str, str | list[str]] | None = None,
) -> list[Series]:
    [q] = [q for q in ALL_QUERIES if (q.dashboard, q.key) == (board, key)]
    return client.query(expand(q, range_ms, variables))


def panel(
    client: InfluxClient,
    board: str,
    title: str,
    range_ms: int = DEFAULT_RANGE_MS,
    variables: Mapping[str, str | list[str]] | None = None,
) -> list[Series]:
    """What a panel shows: the series of the one target that serves the range."""
    shown = [
        client.query(expand(q, range_ms, variables))
        for q in ALL_QUERIES
        if (q.dashboard, q.panel) == (board, title) and serves(q, range_ms)
    ]
    return [s for series in shown for s in series]


def by_tags(series: list[Series], *keys: str) -> dict[tuple[str, ...], list[object]]:
    out = {tuple(s.tags[k] for k in keys): [row[1] for row in s.values] for s in series}
    assert len(out) == len(series), "two series with the same tags"
    return out


def meters(series: list[Series]) -> dict[tuple[str, ...], list[object]]:
    return by_tags(series, "home", "device", "sensor")


def homes(series: list[Series]) -> dict[str, list[object]]:
    return {k[0]: v for k, v in by_tags(series, "home").items()}


def non_null(values: list[object]) -> list[float]:
    return [float(v) for v in values if v is not None]  # type: ignore[arg-type]


def last(values: list[object]) -> float:
    return non_null(values)[-1]


# --- every query, every range -------------------------------------------------------------


@pytest.mark.parametrize("range_name", RANGES)
@pytest.mark.parametrize("q", ALL_QUERIES, ids=lambda q: f"{q.dashboard}:{q.key}")
def test_every_query_runs_and_finds_its_data(
    energy: tuple[InfluxClient, Calendar], q: PanelQuery, range_name: str
) -> None:
    client, _ = energy
    series = client.query(expand(q, RANGES[range_name]))
    if serves(q, RANGES[range_name]):
        assert any(s.values for s in series), "no data where the known data has some"
    else:
        assert series == [], "a source the range does not choose read something"


@pytest.mark.parametrize("range_name", RANGES)
def test_each_tiered_panel_reads_exactly_one_source_per_range(range_name: str) -> None:
    panels: dict[tuple[str, str], list[bool]] = {}
    for q in ALL_QUERIES:
        if _GUARD_FROM.search(q.query) or _GUARD_BELOW.search(q.query):
            panels.setdefault((q.dashboard, q.panel), []).append(serves(q, RANGES[range_name]))
    assert panels
    assert {k: sum(v) for k, v in panels.items()} == dict.fromkeys(panels, 1)


def test_the_source_follows_the_range() -> None:
    [power] = [q for q in ALL_QUERIES if (q.dashboard, q.key) == (HOME, "Power/A")]
    assert "electricity" in power.query
    chosen = {
        name: [
            q.query.split(" FROM ")[1].split()[0]
            for q in ALL_QUERIES
            if (q.dashboard, q.panel) == (HOME, "Power") and serves(q, ms)
        ]
        for name, ms in {"1h": HOUR_MS, **RANGES}.items()
    }
    assert chosen == {
        "1h": ['"electricity"'],
        "24h": ['"energymon_1m"'],
        "30d": ['"energymon_1h"'],
        "1y": ['"energymon_1h"'],
    }


# --- exact values -----------------------------------------------------------------------


def test_power_per_meter_shows_an_outage_as_a_gap(energy: tuple[InfluxClient, Calendar]) -> None:
    client, _ = energy
    got = meters(panel(client, HOME, "Power"))
    assert set(got) == {m.key for m in METERS}
    for m in METERS:
        assert set(non_null(got[m.key])) == {m.power_w}, m.sensor
    [mains] = [s for s in panel(client, HOME, "Power") if s.tags["sensor"] == MAINS.sensor]
    interval_ms = grafana_interval(DEFAULT_RANGE_MS, 720, datasource_time_interval()).ms
    buckets = {row[0]: row[1] for row in mains.values}

    def bucket(k: int) -> int:
        return (KNOWN.now_ms - k * MINUTE_MS) // interval_ms * interval_ms

    assert {buckets[bucket(k)] for k in MAINS_GAP} == {None}
    assert {buckets[bucket(k)] for k in MAINS.energy} == {MAINS.power_w}
    assert 0.0 not in buckets.values()


def test_home_power_does_not_add_the_submeter_and_shows_an_outage_as_null(
    energy: tuple[InfluxClient, Calendar],
) -> None:
    client, _ = energy
    for range_ms in (HOUR_MS, DAY_MS):
        got = homes(panel(client, HOME, "Home power", range_ms))
        # home-a: the mains only, never mains + heat pump (its sub-meter).
        assert set(non_null(got["home-a"])) == {MAINS.power_w}
        assert set(non_null(got["home-b"])) == {SOLAR.power_w}
    [series] = [s for s in panel(client, HOME, "Home power", DAY_MS) if s.tags["home"] == "home-a"]
    step = grafana_interval(DAY_MS, 720, "1m").ms
    values = {row[0]: row[1] for row in series.values}
    middle = MAINS_GAP[len(MAINS_GAP) // 2]
    gap_bucket = (KNOWN.now_ms - middle * MINUTE_MS) // step * step
    # The heat pump read all along, but it is part of the mains: the home's total is unknown.
    assert values[gap_bucket] is None
    for range_ms in (RANGES["30d"], RANGES["1y"]):
        got = homes(panel(client, HOME, "Home power", range_ms))
        assert set(non_null(got["home-a"])) == {MAINS.power_w}


def test_energy_per_circuit_shows_the_submeter_as_a_part(
    energy: tuple[InfluxClient, Calendar],
) -> None:
    client, _ = energy
    got = {
        (s.tags["sensor"], s.tags["role"]): s.values[0][1]
        for s in panel(client, HOME, "Energy per circuit")
    }
    minute = MAINS.consumption_wh() / 1000, HEATPUMP.consumption_wh() / 1000
    assert got[("mains", "mains")] == pytest.approx(minute[0])
    assert got[("heatpump", "submeter")] == pytest.approx(minute[1])
    assert got[("solar", "circuit")] == pytest.approx(SOLAR.consumption_wh() / 1000)


def test_energy_and_cost_today_are_todays_local_day_without_submeters(
    energy: tuple[InfluxClient, Calendar],
) -> None:
    client, _ = energy
    mains_and_solar = {"home-a": (MAINS,), "home-b": (SOLAR,)}
    for title, value in (
        ("Energy today", lambda m: day_energy_wh(m, 0) / 1000),
        ("Cost today", lambda m: day_cost(m, 0)),
    ):
        got = {h: last(v) for h, v in homes(panel(client, HOME, title)).items()}
        want = {h: sum(value(m) for m in ms) for h, ms in mains_and_solar.items()}
        assert got == pytest.approx(want), title
    fleet = {h: last(v) for h, v in homes(panel(client, FLEET, "Cost today")).items()}
    assert fleet == pytest.approx({"home-a": day_cost(MAINS, 0), "home-b": day_cost(SOLAR, 0)})


def test_daily_bars_start_at_local_midnight_across_the_tariff_change(
    energy: tuple[InfluxClient, Calendar],
) -> None:
    client, cal = energy
    [bars] = [s for s in panel(client, HOME, "Cost per day") if s.tags["home"] == "home-a"]
    got = dict(bars.values)
    # The last 30 days: the day points whose local midnight is within the window.
    window_start = int(time.time() * 1000) - 30 * DAY_MS
    want = {t: day_cost(MAINS, d) for d, t in enumerate(cal.days_ms) if t >= window_start}
    assert got == pytest.approx(want)
    # Jakarta is UTC+7: every bar starts at 17:00 UTC, not at a UTC midnight.
    assert {t % DAY_MS for t in got} == {17 * HOUR_MS}
    assert day_cost(MAINS, 9) / day_energy_wh(MAINS, 9) != day_cost(MAINS, 10) / day_energy_wh(
        MAINS, 10
    )


def test_month_bars_and_this_month(energy: tuple[InfluxClient, Calendar]) -> None:
    client, cal = energy
    [bars] = [s for s in panel(client, HOME, "Energy per month") if s.tags["home"] == "home-a"]
    window_start = int(time.time() * 1000) - 365 * DAY_MS
    want = {
        t: month_energy_wh(MAINS, m) / 1000
        for m, t in enumerate(cal.months_ms)
        if t >= window_start
    }
    assert dict(bars.values) == pytest.approx(want)
    assert len(want) == 12
    got = {h: last(v) for h, v in homes(panel(client, HOME, "Cost this month")).items()}
    assert got == pytest.approx({"home-a": month_cost(MAINS, 0), "home-b": month_cost(SOLAR, 0)})


def test_apparent_power_beside_the_contracted_limit(energy: tuple[InfluxClient, Calendar]) -> None:
    client, _ = energy
    in_use = homes(query(client, HOME, "Apparent power vs contracted/A"))
    assert in_use == {"home-a": [pytest.approx(MAINS.voltage_v * MAINS.current_a)]}
    contracted = homes(query(client, HOME, "Apparent power vs contracted/B"))
    assert {h: last(v) for h, v in contracted.items()} == CONTRACTED_VA


def test_voltage_band(energy: tuple[InfluxClient, Calendar]) -> None:
    client, _ = energy
    for range_ms in (HOUR_MS, DAY_MS, RANGES["1y"]):
        series = panel(client, HOME, "Voltage", range_ms)
        for s in series:
            [m] = [m for m in METERS if m.sensor == s.tags["sensor"]]
            assert s.columns == ["time", "min", "mean", "max"]
            rows = [r for r in s.values if r[1] is not None]
            assert rows and {tuple(r[1:]) for r in rows} == {(m.voltage_v,) * 3}


def test_meters_online_lists_every_known_meter(energy: tuple[InfluxClient, Calendar]) -> None:
    client, _ = energy
    got = {
        (s.tags["home"], s.tags["device"], s.tags["sensor"]): s.values[-1][1]
        for s in panel(client, HOME, "Meters online")
    }
    assert got == {MAINS.key: 1, HEATPUMP.key: 1, SOLAR.key: 0, NEVER_SEEN: 0}


def test_now_panels(energy: tuple[InfluxClient, Calendar]) -> None:
    client, _ = energy
    assert meters(panel(client, HOME, "Power now")) == {
        MAINS.key: [MAINS.power_w],
        HEATPUMP.key: [HEATPUMP.power_w],
    }
    assert meters(panel(client, HOME, "Meter alarm")) == {HEATPUMP.key: [ALARM_MINUTES]}
    assert meters(panel(client, HOME, "Voltage now"))[MAINS.key] == [MAINS.voltage_v]


def test_pipeline_row(energy: tuple[InfluxClient, Calendar]) -> None:
    client, _ = energy
    spool, parked = (homes(query(client, HOME, f"Spool and parked/{ref}")) for ref in ("A", "B"))
    assert {h: last(v) for h, v in spool.items()} == {"home-a": 120}
    assert {h: last(v) for h, v in parked.items()} == {"home-a": 7}
    lag = homes(panel(client, HOME, "Replication lag"))
    assert {h: last(v) for h, v in lag.items()} == {"home-a": 1200.0}
    [verify] = panel(client, HOME, "Last verification")
    assert dict(zip(verify.columns[1:], verify.values[-1][1:], strict=True)) == {
        "mismatched": 1,
        "repaired": 0,
        "unresolved": 1,
    }


def test_fleet_newest_reading_is_the_homes_last_reading(
    energy: tuple[InfluxClient, Calendar],
) -> None:
    client, _ = energy
    got = {s.tags["home"]: s.values[-1][0] for s in panel(client, FLEET, "Newest reading")}
    assert got == {"home-a": KNOWN.now_ms - MINUTE_MS, "home-b": KNOWN.now_ms - 40 * MINUTE_MS}


# --- System health (the known data of the alert rules, unchanged) --------------------------


AGE = {("home-a", "mega-01"): 2.0, ("home-a", "garage"): 900.0 + 60 * 29, ("home-b", "pi-01"): 1.0}


def homes_last(expected: dict[str, float]) -> Check:
    def check(series: list[Series]) -> None:
        assert {h: last(v) for h, v in homes(series).items()} == expected

    return check


def devices_last(expected: dict[tuple[str, str], float]) -> Check:
    def check(series: list[Series]) -> None:
        got = by_tags(series, "home", "device")
        assert {d: last(v) for d, v in got.items()} == expected

    return check


def unreachable(series: list[Series]) -> None:
    assert {h: sum(non_null(v)) for h, v in homes(series).items()} == {"home-a": SPOOLING_MINUTES}


def quarantined(series: list[Series]) -> None:
    got = meters(series)
    assert {k: sum(non_null(v)) for k, v in got.items()} == {MAINS.key: len(QUARANTINE_MINUTES)}


def quarantine_table(series: list[Series]) -> None:
    [table] = series
    rows = list(table.records())
    assert [r["seq"] for r in rows] == [1000 + k for k in sorted(QUARANTINE_MINUTES)]
    assert {(r["device"], r["sensor"]) for r in rows} == {("mega-01", "mains")}
    assert all("outside the meter's range" in r["reason"] for r in rows)


def verification(series: list[Series]) -> None:
    got = {s.tags["home"]: dict(zip(s.columns[1:], s.values[-1][1:], strict=True)) for s in series}
    assert got == {
        "home-a": {"mismatched": 1, "repaired": 0, "unresolved": 1},
        "home-b": {"mismatched": 0, "repaired": 0, "unresolved": 0},
    }


def meter_ages(series: list[Series]) -> None:
    got = {k: last(v) for k, v in meters(series).items()}
    assert got[MAINS.key] == 2.0 and got[SOLAR.key] == 2400.0 + 60 * 29
    assert got[NEVER_SEEN] == 600.0 + 60 * 29


HEALTH_CHECKS: dict[str, Check] = {
    "Collector spool depth/A": homes_last({"home-a": 120, "home-b": 0}),
    "InfluxDB unreachable/A": unreachable,
    "Spool full refusals and parked points/A": homes_last({"home-a": 5, "home-b": 0}),
    "Spool full refusals and parked points/B": homes_last({"home-a": 7, "home-b": 7}),
    "Reading age per device/A": devices_last(AGE),
    "Last contact per device/A": devices_last(
        {("home-a", "mega-01"): 1.0, ("home-a", "garage"): 5.0, ("home-b", "pi-01"): 1.0}
    ),
    "Dropped readings and meter errors/A": devices_last(dict.fromkeys(AGE, 4)),
    "Dropped readings and meter errors/B": devices_last(dict.fromkeys(AGE, 3)),
    "Reading age per meter/A": meter_ages,
    "Quarantined readings/A": quarantined,
    "Latest quarantined readings/A": quarantine_table,
    "Replication lag/A": homes_last({"home-a": 1200.0, "home-b": 2.0}),
    "Replication backlog/A": homes_last({"home-a": 5000, "home-b": 0}),
    "Consecutive replication failures/A": homes_last({"home-a": 3, "home-b": 0}),
    "Dead letters/A": homes_last({"home-a": 2, "home-b": 0}),
    "Verification (last run)/A": verification,
}


def test_every_health_query_has_a_check() -> None:
    assert {q.key for q in ALL_QUERIES if q.dashboard == HEALTH} == set(HEALTH_CHECKS)


@pytest.mark.parametrize("key", HEALTH_CHECKS)
def test_health_panel_returns_the_known_data(
    energy: tuple[InfluxClient, Calendar], key: str
) -> None:
    client, _ = energy
    HEALTH_CHECKS[key](query(client, HEALTH, key))


# --- variables ----------------------------------------------------------------------------


def tag_values(client: InfluxClient, q: str, variables: Mapping[str, str | list[str]]) -> set[str]:
    return {row[1] for s in client.query(substitute(q, variables)) for row in s.values}


def test_power_for_selected_meters(energy: tuple[InfluxClient, Calendar]) -> None:
    client, _ = energy
    selected = {"home": "home-a", "device": "mega-01", "sensor": "mains"}
    assert set(meters(panel(client, HOME, "Power", variables=selected))) == {MAINS.key}
    several = {"home": ["home-a", "home-b"], "sensor": ["mains", "solar"]}
    assert set(meters(panel(client, HOME, "Power", variables=several))) == {MAINS.key, SOLAR.key}


def test_home_energy_variables(energy: tuple[InfluxClient, Calendar]) -> None:
    client, _ = energy
    v = variable_queries(dashboard(HOME))
    assert tag_values(client, v["home"], {}) == {"home-a", "home-b"}
    assert tag_values(client, v["device"], {"home": "home-b"}) == {"pi-01"}
    assert tag_values(client, v["sensor"], {"home": "home-a", "device": "mega-01"}) == {
        "mains",
        "heatpump",
    }
    assert tag_values(client, v["sensor"], {}) == {m.sensor for m in METERS}


def test_system_health_variables(energy: tuple[InfluxClient, Calendar]) -> None:
    client, _ = energy
    v = variable_queries(dashboard(HEALTH))
    assert tag_values(client, v["home"], {}) == {"home-a", "home-b"}
    assert tag_values(client, v["device"], {"home": "home-a"}) == {"mega-01", "garage"}
