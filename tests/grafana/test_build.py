"""The dashboards are generated: the committed JSON is what the code generates, the keys the
SDK does not type are the ones Grafana reads, and the health panels draw at the health
interval."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from energymon.influx import InfluxClient
from energymon.settings import Settings
from energymon_cli.main import main
from energymon_grafana.interval import grafana_interval
from energymon_grafana.render import Options, generated, stale
from tests.grafana.grafana_files import (
    DASHBOARDS,
    GRAFANA,
    dashboard,
    load_dashboard,
    load_yaml,
    panel_queries,
    substitute,
)

# What Grafana's InfluxDB backend reads from a query (pkg/tsdb/influxdb/models/model_parser.go,
# QueryParse: policy, query, rawQuery, alias, tz, limit, slimit, orderByTime, measurement,
# resultFormat, tags, groupBy, select) and what every panel target carries (refId, datasource).
INFLUX_QUERY_KEYS = {
    "policy", "query", "rawQuery", "alias", "tz", "limit", "slimit", "orderByTime",
    "measurement", "resultFormat", "tags", "groupBy", "select",
}  # fmt: skip
TARGET_KEYS = {"refId", "datasource", "hide"}
# Grafana's UnifiedAlertListOptions (public/app/plugins/panel/alertlist/types.ts).
ALERT_LIST_KEYS = {
    "maxItems", "sortOrder", "dashboardAlerts", "groupMode", "groupBy", "alertName",
    "showInstances", "folder", "stateFilter", "alertInstanceLabelFilter", "datasource",
    "viewMode", "showInactiveAlerts",
}  # fmt: skip
STATE_FILTER_KEYS = {"firing", "pending", "noData", "normal", "error", "recovering"}


def test_the_committed_dashboards_are_the_generated_ones() -> None:
    assert stale(GRAFANA / "dashboards", Options()) == []
    assert {p.name for p in DASHBOARDS} == set(generated(Options()))


def test_build_writes_and_check_notices_a_difference(tmp_path: Path) -> None:
    assert main(["grafana", "build", "--out", str(tmp_path)]) == 0
    assert main(["grafana", "build", "--out", str(tmp_path), "--check"]) == 0
    assert main(["grafana", "build", "--out", str(tmp_path), "--check", "--currency", "EUR"]) == 1
    path = tmp_path / "home-energy.json"
    path.write_text(path.read_text().replace("Power now", "Power"))
    assert main(["grafana", "build", "--out", str(tmp_path), "--check"]) == 1
    assert main(["grafana", "build", "--out", str(tmp_path)]) == 0
    assert stale(tmp_path, Options()) == []


def _targets(board: dict[str, Any]) -> list[dict[str, Any]]:
    return [t for p in board["panels"] for t in p.get("targets", [])]


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_query_targets_carry_only_keys_grafana_reads(path: Path) -> None:
    for target in _targets(load_dashboard(path)):
        assert set(target) <= INFLUX_QUERY_KEYS | TARGET_KEYS, target
        assert target["datasource"]["type"] == "influxdb"


def test_alert_list_options_are_grafanas() -> None:
    [alerts] = [p for p in dashboard("energymon-fleet")["panels"] if p["type"] == "alertlist"]
    assert set(alerts["options"]) <= ALERT_LIST_KEYS
    assert set(alerts["options"]["stateFilter"]) <= STATE_FILTER_KEYS


def test_the_fleet_row_repeats_per_home_data_source() -> None:
    board = dashboard("energymon-fleet")
    [variable] = board["templating"]["list"]
    assert (variable["type"], variable["query"]) == ("datasource", "influxdb")
    [row] = [p for p in board["panels"] if p["type"] == "row"]
    assert row["repeat"] == variable["name"]
    after = board["panels"][board["panels"].index(row) + 1 :]
    uids = {p["datasource"]["uid"] for p in after} | {
        t["datasource"]["uid"] for p in after for t in p["targets"]
    }
    assert after and uids == {f"${{{variable['name']}}}"}


HEALTH_PANELS = [
    p for p in dashboard("energymon-system-health")["panels"] if p["type"] == "timeseries"
]


def _seconds(text: str) -> float:
    return float(text[:-1]) * {"s": 1, "m": 60, "h": 3600}[text[-1]]


@pytest.mark.parametrize("panel", HEALTH_PANELS, ids=lambda p: p["title"])
def test_health_graphs_group_by_at_least_the_health_interval_and_draw_points(
    panel: dict[str, Any],
) -> None:
    assert _seconds(panel["interval"]) >= Settings().health_interval_s
    assert panel["fieldConfig"]["defaults"]["custom"]["showPoints"] == "always"


def test_a_health_graph_has_no_isolated_points_at_the_default_range(known: InfluxClient) -> None:
    """Records every minute, grouped by Grafana's interval for six hours: with the panel's
    minimum interval every minute of the record is one value next to another; with the data
    source's ten seconds every value sat alone between nulls (issue 10, item 4)."""
    [q] = [
        q
        for q in panel_queries(dashboard("energymon-system-health"))
        if q.key == "Collector spool depth/A"
    ]

    def isolated(min_interval: str) -> tuple[int, int]:
        interval = grafana_interval(6 * 3_600_000, q.max_data_points or 1000, min_interval)
        [series] = [
            s
            for s in known.query(
                substitute(q.query, {}, interval=interval.text, interval_ms=interval.ms)
            )
            if s.tags["home"] == "home-a"
        ]
        values = [row[1] for row in series.values]
        alone = sum(
            1
            for i, v in enumerate(values)
            if v is not None
            and (i == 0 or values[i - 1] is None)
            and (i == len(values) - 1 or values[i + 1] is None)
        )
        return alone, sum(v is not None for v in values)

    assert q.min_interval == "1m"
    alone, drawn = isolated(q.min_interval)
    assert drawn >= 29 and alone == 0
    alone, drawn = isolated("10s")
    assert alone == drawn >= 29


def test_grafana_interval_follows_grafanas_rounding() -> None:
    day = 86_400_000
    # Grafana's own examples: a range over a resolution rounds to the table's step.
    assert [grafana_interval(r, 720, "10s").text for r in (3_600_000, 6 * 3_600_000)] == [
        "10s",
        "30s",
    ]
    assert [grafana_interval(r * day, 720, "10s").text for r in (1, 7, 30, 365)] == [
        "2m",
        "15m",
        "1h",
        "12h",
    ]
    assert grafana_interval(3_600_000, 720, "1m").ms == 60_000
    assert grafana_interval(400 * day, 10, None).text == "30d"


def test_the_fleet_data_source_example_matches_the_fleet_variable() -> None:
    [home] = load_yaml(GRAFANA / "provisioning" / "datasources" / "energymon.yaml")["datasources"]
    example = GRAFANA / "provisioning" / "datasources" / "fleet.yaml.example"
    [fleet] = load_yaml(example)["datasources"]
    assert set(fleet) == set(home) - {"isDefault"} | {"orgId"}
    assert set(fleet["jsonData"]) == set(home["jsonData"])
    [variable] = dashboard("energymon-fleet")["templating"]["list"]
    pattern = variable["regex"].strip("/")
    assert re.match(pattern, fleet["name"]) and fleet["name"] == fleet["uid"]
    assert not re.match(pattern, home["name"])
