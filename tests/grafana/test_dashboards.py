"""Every dashboard query, substituted as Grafana does, run against known data in a real influxd."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest

from energymon.influx import InfluxClient, Series
from tests.grafana.grafana_files import (
    DASHBOARDS,
    PanelQuery,
    dashboard,
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

Check = Callable[[list[Series]], None]
HOME = "energymon-home-energy"
HEALTH = "energymon-system-health"


def by_tags(series: list[Series], *keys: str) -> dict[tuple[str, ...], list[object]]:
    out = {tuple(s.tags[k] for k in keys): [row[1] for row in s.values] for s in series}
    assert len(out) == len(series), "two series with the same tags"
    return out


def meters(series: list[Series]) -> dict[tuple[str, ...], list[object]]:
    return by_tags(series, "home", "device", "sensor")


def non_null(values: list[object]) -> list[float]:
    return [float(v) for v in values if v is not None]  # type: ignore[arg-type]


def last(values: list[object]) -> float:
    return non_null(values)[-1]


def each_meter(attr: str) -> Check:
    def check(series: list[Series]) -> None:
        got = meters(series)
        assert set(got) == {m.key for m in METERS}
        for m in METERS:
            assert set(non_null(got[m.key])) == {getattr(m, attr)}, m.sensor

    return check


def power(series: list[Series]) -> None:
    each_meter("power_w")(series)
    [mains] = [s for s in series if s.tags["sensor"] == MAINS.sensor]
    buckets = {row[0]: row[1] for row in mains.values}
    start = KNOWN.now_ms // MINUTE_MS * MINUTE_MS
    # Minutes without readings are empty buckets (gaps in the graph), never 0 W.
    assert [buckets[start - k * MINUTE_MS] for k in MAINS_GAP] == [None] * len(MAINS_GAP)
    assert {buckets[start - k * MINUTE_MS] for k in MAINS.energy} == {MAINS.power_w}
    assert 0.0 not in buckets.values()


def energy_total(series: list[Series]) -> None:
    got = meters(series)
    assert set(got) == {m.key for m in METERS}
    for m in METERS:
        values = non_null(got[m.key])
        assert all(v >= 0 for v in values), f"negative energy for {m.sensor}: {values}"
        assert sum(values) == m.consumption_wh(), m.sensor


def energy_per_bucket(series: list[Series]) -> None:
    energy_total(series)
    # Hours before the data are empty (shown as gaps), not 0 Wh.
    assert any(v is None for v in meters(series)[MAINS.key])


def power_now(series: list[Series]) -> None:
    got = meters(series)
    assert got == {MAINS.key: [MAINS.power_w], HEATPUMP.key: [HEATPUMP.power_w]}


def alarm(series: list[Series]) -> None:
    assert meters(series) == {HEATPUMP.key: [ALARM_MINUTES]}


def homes_last(expected: dict[str, float]) -> Check:
    def check(series: list[Series]) -> None:
        got = by_tags(series, "home")
        assert {h[0]: last(v) for h, v in got.items()} == expected

    return check


def devices_last(expected: dict[tuple[str, str], float]) -> Check:
    def check(series: list[Series]) -> None:
        got = by_tags(series, "home", "device")
        assert {d: last(v) for d, v in got.items()} == expected

    return check


def unreachable(series: list[Series]) -> None:
    got = by_tags(series, "home")
    assert {h[0]: sum(non_null(v)) for h, v in got.items()} == {"home-a": SPOOLING_MINUTES}


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


AGE = {("home-a", "mega-01"): 2.0, ("home-a", "garage"): 900.0 + 60 * 29, ("home-b", "pi-01"): 1.0}
CHECKS: dict[str, dict[str, Check]] = {
    HOME: {
        "Power now/A": power_now,
        "Meter alarm/A": alarm,
        "Power/A": power,
        "Voltage/A": each_meter("voltage_v"),
        "Current/A": each_meter("current_a"),
        "Frequency/A": each_meter("frequency_hz"),
        "Power factor/A": each_meter("power_factor"),
        "Energy per hour/A": energy_per_bucket,
        "Energy per day/A": energy_total,
        "Energy in the time range/A": energy_total,
    },
    HEALTH: {
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
        "Quarantined readings/A": quarantined,
        "Latest quarantined readings/A": quarantine_table,
        "Replication lag/A": homes_last({"home-a": 1200.0, "home-b": 2.0}),
        "Replication backlog/A": homes_last({"home-a": 5000, "home-b": 0}),
        "Consecutive replication failures/A": homes_last({"home-a": 3, "home-b": 0}),
        "Dead letters/A": homes_last({"home-a": 2, "home-b": 0}),
        "Verification (last run)/A": verification,
    },
}
ALL_QUERIES = [q for path in DASHBOARDS for q in panel_queries(load_dashboard(path))]


def test_every_panel_query_has_a_check() -> None:
    shipped = {(q.dashboard, q.key) for q in ALL_QUERIES}
    checked = {(board, key) for board, checks in CHECKS.items() for key in checks}
    assert shipped == checked


@pytest.mark.parametrize("q", ALL_QUERIES, ids=lambda q: f"{q.dashboard}:{q.key}")
def test_panel_query_returns_the_known_data(known: InfluxClient, q: PanelQuery) -> None:
    CHECKS[q.dashboard][q.key](known.query(substitute(q.query)))


def test_power_for_one_selected_meter(known: InfluxClient) -> None:
    [q] = [q for q in panel_queries(dashboard(HOME)) if q.panel == "Power"]
    selected = {"home": "home-a", "device": "mega-01", "sensor": "mains"}
    assert set(meters(known.query(substitute(q.query, selected)))) == {MAINS.key}
    several = {"home": ["home-a", "home-b"], "sensor": ["mains", "solar"]}
    assert set(meters(known.query(substitute(q.query, several)))) == {MAINS.key, SOLAR.key}


def test_energy_across_a_reset_is_never_negative(known: InfluxClient) -> None:
    [q] = [q for q in panel_queries(dashboard(HOME)) if q.panel == "Energy per hour"]
    chosen = {"home": "home-a", "device": "mega-01", "sensor": "mains"}
    series = known.query(substitute(q.query, chosen))
    values = non_null(meters(series)[MAINS.key])
    assert min(values) >= 0
    assert sum(values) == MAINS.consumption_wh()
    # The counter really went down: a plain difference would have shown negative energy.
    assert min(MAINS.energy.values()) == 0 < max(MAINS.energy.values())


def tag_values(
    client: InfluxClient, query: str, variables: Mapping[str, str | list[str]]
) -> set[str]:
    return {row[1] for s in client.query(substitute(query, variables)) for row in s.values}


def test_home_energy_variables(known: InfluxClient) -> None:
    v = variable_queries(dashboard(HOME))
    assert tag_values(known, v["home"], {}) == {"home-a", "home-b"}
    assert tag_values(known, v["device"], {"home": "home-b"}) == {"pi-01"}
    assert tag_values(known, v["sensor"], {"home": "home-a", "device": "mega-01"}) == {
        "mains",
        "heatpump",
    }
    assert tag_values(known, v["sensor"], {}) == {m.sensor for m in METERS}


def test_system_health_variables(known: InfluxClient) -> None:
    v = variable_queries(dashboard(HEALTH))
    assert tag_values(known, v["home"], {}) == {"home-a", "home-b"}
    assert tag_values(known, v["device"], {"home": "home-a"}) == {"mega-01", "garage"}
