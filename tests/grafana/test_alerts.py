"""Every alert rule evaluated as Grafana would (query, reduce, threshold) on known data."""

from __future__ import annotations

import operator
import statistics
from collections.abc import Callable
from typing import Any

import pytest

from energymon.influx import InfluxClient
from tests.grafana.grafana_files import alert_rules, datasource_uids, substitute

Labels = tuple[tuple[str, str], ...]
Values = dict[Labels, list[float | None]]
REDUCERS: dict[str, Callable[[list[float]], float]] = {
    "last": lambda v: v[-1],
    "max": max,
    "min": min,
    "sum": sum,
    "mean": statistics.fmean,
    "count": len,
}
EVALUATORS: dict[str, Callable[[float, float], bool]] = {
    "gt": operator.gt,
    "lt": operator.lt,
    "ge": operator.ge,
    "le": operator.le,
}


def run_query(client: InfluxClient, data: dict[str, Any]) -> Values:
    rng = data["relativeTimeRange"]
    time_filter = f"time >= now() - {rng['from']}s and time <= now() - {rng['to']}s"
    series = client.query(substitute(data["model"]["query"], time_filter=time_filter))
    return {tuple(sorted(s.tags.items())): [row[1] for row in s.values] for s in series}


def evaluate(client: InfluxClient, rule: dict[str, Any]) -> set[Labels]:
    """The label sets for which the rule's condition holds (Grafana's "firing" instances)."""
    results: dict[str, Values] = {}
    for data in rule["data"]:
        model = data["model"]
        if data["datasourceUid"] != "__expr__":
            results[data["refId"]] = run_query(client, data)
        elif model["type"] == "reduce":
            assert model["settings"]["mode"] == "dropNN"
            source = results[model["expression"]]
            reduce = REDUCERS[model["reducer"]]
            results[data["refId"]] = {
                labels: [reduce([v for v in values if v is not None])]
                for labels, values in source.items()
                if any(v is not None for v in values)
            }
        elif model["type"] == "threshold":
            [condition] = model["conditions"]
            check = EVALUATORS[condition["evaluator"]["type"]]
            [limit] = condition["evaluator"]["params"]
            results[data["refId"]] = {
                labels: [1.0 if check(float(values[0] or 0), limit) else 0.0]
                for labels, values in results[model["expression"]].items()
            }
        else:
            raise AssertionError(f"expression type {model['type']} not evaluated by this test")
    return {labels for labels, values in results[rule["condition"]].items() if values[0]}


def home(h: str) -> Labels:
    return (("home", h),)


def device(h: str, d: str) -> Labels:
    return (("device", d), ("home", h))


def meter(h: str, d: str, s: str) -> Labels:
    return (("device", d), ("home", h), ("sensor", s))


# What fires on the known data; every other home, device and meter there is healthy.
FIRING: dict[str, set[Labels]] = {
    "energymon-device-quiet": {device("home-a", "garage")},
    "energymon-meter-quiet": {meter("home-b", "pi-01", "solar")},
    "energymon-collector-spooling": {home("home-a")},
    "energymon-spool-full": {home("home-a")},
    "energymon-parked-points": {home("home-a")},
    "energymon-replication-lag": {home("home-a")},
    "energymon-home-quiet": {home("home-b")},
    "energymon-dead-letters": {home("home-a")},
    "energymon-verify-mismatch": {home("home-a")},
    "energymon-quarantine-growing": {meter("home-a", "mega-01", "mains")},
    "energymon-meter-alarm": {meter("home-a", "mega-01", "heatpump")},
}
RULES = alert_rules()


def test_every_rule_is_tested() -> None:
    assert {r["uid"] for r in RULES} == set(FIRING)


@pytest.mark.parametrize("rule", RULES, ids=lambda r: str(r["uid"]))
def test_rule_fires_exactly_for_the_unhealthy(known: InfluxClient, rule: dict[str, Any]) -> None:
    assert evaluate(known, rule) == FIRING[rule["uid"]]


@pytest.mark.parametrize("rule", RULES, ids=lambda r: str(r["uid"]))
def test_rule_is_well_formed(rule: dict[str, Any]) -> None:
    refs = [d["refId"] for d in rule["data"]]
    assert len(refs) == len(set(refs)) and rule["condition"] in refs
    uids = datasource_uids() | {"__expr__"}
    for data in rule["data"]:
        assert data["datasourceUid"] in uids
        model = data["model"]
        assert model["refId"] == data["refId"]
        if data["datasourceUid"] == "__expr__":
            assert model["expression"] in refs[: refs.index(data["refId"])]
        else:
            assert model["rawQuery"] is True and data["relativeTimeRange"]["from"] > 0
            # Some Grafana versions expand "$NAME" in provisioned models as an environment
            # variable, which would silently empty a macro.
            assert "$" not in model["query"]
    assert rule["annotations"]["summary"] and rule["annotations"]["description"]
    assert rule["noDataState"] in {"OK", "NoData", "Alerting"}
    assert rule["execErrState"] in {"OK", "Error", "Alerting"}
    assert not any("$" in v for v in rule["labels"].values())


def test_rule_uids_are_unique() -> None:
    uids = [r["uid"] for r in RULES]
    assert len(uids) == len(set(uids))
