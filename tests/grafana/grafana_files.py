"""The shipped Grafana files, their InfluxQL, and Grafana's substitutions of it.

Grafana rewrites a query before sending it: `$timeFilter` becomes the dashboard's time range,
`$__interval` the step, and a template variable inside `/^$var$/` the regex-escaped value (or
`(a|b)` for several, or the variable's `allValue` for All). The tests do the same and run the
result against a real influxd.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from energymon_grafana.interval import duration_ms

ROOT = Path(__file__).resolve().parents[2]
GRAFANA = ROOT / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
ALERT_FILES = sorted((GRAFANA / "provisioning" / "alerting").glob("*.yaml"))
DATASOURCE_FILES = sorted((GRAFANA / "provisioning" / "datasources").glob("*.yaml"))

ALL = ".*"
_REGEX_SPECIALS = re.compile(r"[\\^$*+?.()|\[\]{}/]")
_VAR_IN_REGEX = re.compile(r"/\^\$(\w+)\$/")


def load_yaml(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), path
    return data


def load_dashboard(path: Path) -> dict[str, Any]:
    data = json.loads(path.read_text())
    assert isinstance(data, dict), path
    return data


def dashboard(uid: str) -> dict[str, Any]:
    for path in DASHBOARDS:
        board = load_dashboard(path)
        if board["uid"] == uid:
            return board
    raise KeyError(uid)


def alert_rules() -> list[dict[str, Any]]:
    return [
        rule
        for path in ALERT_FILES
        for group in load_yaml(path).get("groups", [])
        for rule in group["rules"]
    ]


def datasource_uids() -> set[str]:
    return {ds["uid"] for path in DATASOURCE_FILES for ds in load_yaml(path)["datasources"]}


@dataclass(frozen=True)
class PanelQuery:
    dashboard: str
    panel: str
    ref_id: str
    query: str
    max_data_points: int | None = None
    min_interval: str | None = None
    time_from: str | None = None

    @property
    def key(self) -> str:
        return f"{self.panel}/{self.ref_id}"


def panel_queries(board: dict[str, Any]) -> list[PanelQuery]:
    return [
        PanelQuery(
            board["uid"],
            panel["title"],
            t["refId"],
            t["query"],
            panel.get("maxDataPoints"),
            panel.get("interval"),
            panel.get("timeFrom"),
        )
        for panel in board["panels"]
        for t in panel.get("targets", [])
    ]


def variable_queries(board: dict[str, Any]) -> dict[str, str]:
    """The InfluxQL of each query variable (a data source variable has none)."""
    return {v["name"]: v["query"] for v in board["templating"]["list"] if v["type"] == "query"}


def datasource_time_interval() -> str:
    """The data source's minimum interval (`jsonData.timeInterval`), Grafana's lower limit of
    `$__interval` for a panel without its own."""
    [ds] = [ds for path in DATASOURCE_FILES for ds in load_yaml(path)["datasources"]]
    interval = ds["jsonData"]["timeInterval"]
    assert isinstance(interval, str)
    return interval


def escape_regex(value: str) -> str:
    """Grafana's escaping of a variable's value used inside a regex."""
    return _REGEX_SPECIALS.sub(lambda m: "\\" + m.group(0), value)


def substitute(
    query: str,
    variables: Mapping[str, str | list[str]] | None = None,
    time_filter: str = "time >= now() - 6h and time <= now()",
    interval: str = "1m",
    interval_ms: int | None = None,
) -> str:
    """The query as Grafana sends it; unset variables are All (`allValue` `.*`)."""
    variables = variables or {}

    def regex_value(match: re.Match[str]) -> str:
        value = variables.get(match.group(1), ALL)
        if isinstance(value, list):
            value = "(" + "|".join(escape_regex(v) for v in value) + ")"
        elif value != ALL:
            value = escape_regex(value)
        return f"/^{value}$/"

    if interval_ms is None:
        interval_ms = duration_ms(interval)
    out = _VAR_IN_REGEX.sub(regex_value, query)
    # Grafana's backend replaces `$__interval_ms` before `$__interval`, which is its prefix
    # (pkg/tsdb/influxdb/models/query.go, Build).
    out = out.replace("$timeFilter", time_filter)
    out = out.replace("$__interval_ms", str(interval_ms)).replace("$__interval", interval)
    assert "$" not in out.replace("$/", ""), f"unsubstituted variable in {out}"
    return out


_IDENT = re.compile(r'"((?:[^"\\]|\\.)+)"')
_ALIAS = re.compile(r'\bAS\s+"([^"]+)"', re.IGNORECASE)


def unknown_names(query: str, schema: dict[str, set[str]]) -> set[str]:
    """Double-quoted identifiers of `query` that are neither a measurement referenced by it, a
    tag or field of such a measurement, nor an alias the query defines itself."""
    names = set(_IDENT.findall(query))
    measurements = names & set(schema)
    allowed = set(measurements) | set(_ALIAS.findall(query))
    for m in measurements:
        allowed |= schema[m]
    if not measurements:
        return names or {"<no measurement>"}
    return names - allowed
