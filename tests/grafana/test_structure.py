"""The shipped Grafana files are well formed and only name what the schema has."""

from __future__ import annotations

import re
from typing import Any

import pytest

from energymon.schema import Measurement, QuarantinedReading, Reading
from replicator.health import ReplicatorHealth, VerifySummary
from tests.grafana.grafana_files import (
    DASHBOARDS,
    DATASOURCE_FILES,
    GRAFANA,
    ROOT,
    alert_rules,
    datasource_uids,
    load_dashboard,
    load_yaml,
    panel_queries,
    unknown_names,
    variable_queries,
)
from tests.grafana.known_data import collector_figures, device_figures


def _names(lines: list[str]) -> dict[str, set[str]]:
    """Measurement -> tag and field keys, from line protocol without escaped separators."""
    schema: dict[str, set[str]] = {}
    for line in lines:
        series, fields, _ = line.split(" ")
        measurement, *tags = series.split(",")
        keys = {t.split("=")[0] for t in tags} | {f.split("=")[0] for f in fields.split(",")}
        schema.setdefault(measurement, set()).update(keys)
    return schema


def schema() -> dict[str, set[str]]:
    """Every tag and field the project writes, from its own line formats."""
    m = Measurement(230.0, 1.0, 230.0, 10, 50.0, 1.0, alarm=False)
    lines = [
        Reading("d", "s", 1, 1, 0, m).to_line("h"),
        QuarantinedReading("d", "s", 1, 1, 0, "why", "{}").to_line("h"),
        *collector_figures(1, {"d": device_figures(1.0, 1.0)}, 0).to_lines("h"),
        *ReplicatorHealth(0, "u", 0, 0, 0, 0, None, 0, VerifySummary(0, 1, 0, 0, 0)).to_lines("h"),
    ]
    return _names(lines)


SCHEMA = schema()
_ROLLUP = {"home", "device", "sensor", "role", "energy_wh", "cost", "samples"}
# The rollup engineer's measurements and fields (issue 10's contract), named here until their
# line formats land and `schema()` reads them from the code.
CONTRACT: dict[str, set[str]] = {
    "energymon_1m": _ROLLUP | {"apparent_power_va_mean"},
    "energymon_day": set(_ROLLUP),
    "energymon_home": {
        "home",
        "contracted_va",
        "nominal_voltage_v",
        "voltage_low_v",
        "voltage_high_v",
        "min_power_factor",
        "daily_budget_wh",
        "daily_budget_cost",
    },
    "energymon_health": SCHEMA["energymon_health"] | {"sensor", "role", "online"},
}
QUERIES = [
    (f"{p.dashboard}:{p.key}", p.query)
    for path in DASHBOARDS
    for p in panel_queries(load_dashboard(path))
]
QUERIES += [
    (f"{load_dashboard(path)['uid']}:${name}", q)
    for path in DASHBOARDS
    for name, q in variable_queries(load_dashboard(path)).items()
]
QUERIES += [
    (f"{r['uid']}:{d['refId']}", d["model"]["query"])
    for r in alert_rules()
    for d in r["data"]
    if d["datasourceUid"] != "__expr__"
]


def test_the_schema_is_the_documented_one() -> None:
    docs = (ROOT / "docs" / "schema.md").read_text() + (
        ROOT / "docs" / "replication.md"
    ).read_text()
    for measurement, names in SCHEMA.items():
        assert f"`{measurement}`" in docs
        for name in names:
            assert f"`{name}`" in docs or (name.startswith("verify_") and "`verify_*`" in docs), (
                name
            )


@pytest.mark.parametrize(("where", "query"), QUERIES, ids=[w for w, _ in QUERIES])
def test_queries_name_only_schema_tags_and_fields(where: str, query: str) -> None:
    assert unknown_names(query, SCHEMA | CONTRACT) == set(), where


def test_a_misspelt_field_or_tag_is_caught() -> None:
    assert unknown_names('SELECT mean("power") FROM "electricity" WHERE $timeFilter', SCHEMA) == {
        "power"
    }
    assert unknown_names(
        'SELECT last("spool_points") FROM "energymon_health" GROUP BY "sensor"', SCHEMA
    ) == {"sensor"}
    assert unknown_names('SELECT mean("power_w") FROM "electricty"', SCHEMA) == {
        "power_w",
        "electricty",
    }


def _datasource_refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["datasource"]["uid"]] if isinstance(node.get("datasource"), dict) else []
        return found + [u for v in node.values() for u in _datasource_refs(v)]
    if isinstance(node, list):
        return [u for v in node for u in _datasource_refs(v)]
    return []


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_is_well_formed(path: Any) -> None:
    board = load_dashboard(path)
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    refs = _datasource_refs(board)
    assert refs and set(refs) <= datasource_uids()
    for panel in board["panels"]:
        assert panel["targets"] and panel["title"] and panel["description"]
        for t in panel["targets"]:
            assert t["rawQuery"] is True and t["resultFormat"] in {"time_series", "table"}
        # Missing readings must show as gaps, never as 0 W.
        for t in panel["targets"]:
            assert "fill(0)" not in t["query"] and "fill(previous)" not in t["query"]
        custom = panel["fieldConfig"]["defaults"].get("custom", {})
        assert custom.get("spanNulls", False) is False
    names = [v["name"] for v in board["templating"]["list"]]
    assert "home" in names
    for v in board["templating"]["list"]:
        assert v["multi"] and v["includeAll"] and v["allValue"] == ".*"


def test_home_energy_has_home_device_and_sensor_variables() -> None:
    [home] = [
        load_dashboard(p) for p in DASHBOARDS if load_dashboard(p)["uid"].endswith("home-energy")
    ]
    assert [v["name"] for v in home["templating"]["list"]] == ["home", "device", "sensor"]


def test_dashboard_uids_are_unique() -> None:
    uids = [load_dashboard(p)["uid"] for p in DASHBOARDS]
    assert len(uids) == len(set(uids)) == len(DASHBOARDS) >= 2


def test_datasource_comes_from_the_environment() -> None:
    [path] = DATASOURCE_FILES
    [ds] = load_yaml(path)["datasources"]
    assert ds["type"] == "influxdb" and ds["jsonData"]["version"] == "InfluxQL"
    env = re.compile(r"^\$\{[A-Z_]+\}$")
    for value in (
        ds["url"],
        ds["user"],
        ds["jsonData"]["dbName"],
        ds["secureJsonData"]["password"],
    ):
        assert env.match(value), value


def test_dashboard_provider_points_at_the_mounted_dashboards() -> None:
    [provider] = load_yaml(GRAFANA / "provisioning" / "dashboards" / "energymon.yaml")["providers"]
    assert provider["type"] == "file"
    assert provider["options"]["path"] == "/var/lib/grafana/dashboards"
