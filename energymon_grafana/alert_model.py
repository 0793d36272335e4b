"""An alert rule as typed values, and its form in Grafana's alerting provisioning files
(pkg/services/provisioning/alerting/rules_types.go: AlertRuleV1, QueryV1) and HTTP API.

A rule is a chain of steps: InfluxQL queries of the `energymon` data source, then Grafana
server-side expressions (`reduce`, `math`, `threshold`); its condition is the last step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DATASOURCE_UID = "energymon"
# The operator's organisation in the cloud: one data source per home, so named.
HOME_DATASOURCE_PREFIX = "energymon-home-"
EXPR_UID = "__expr__"


@dataclass(frozen=True)
class Query:
    """An InfluxQL query of the energymon data source; its own time condition ends at now()."""

    ref: str
    sql: str
    window_s: int


@dataclass(frozen=True)
class Reduce:
    ref: str
    source: str
    reducer: str = "last"


@dataclass(frozen=True)
class Math:
    ref: str
    expression: str


@dataclass(frozen=True)
class Threshold:
    ref: str
    source: str
    kind: str
    params: tuple[float, ...]


Step = Query | Reduce | Math | Threshold


@dataclass(frozen=True)
class Rule:
    uid: str
    title: str
    steps: tuple[Step, ...]
    severity: str
    summary: str
    description: str
    runbook: str
    for_: str = "0s"
    no_data_state: str = "OK"
    exec_err_state: str = "Error"

    @property
    def condition(self) -> str:
        return self.steps[-1].ref


def _expr(ref: str, body: dict[str, Any]) -> dict[str, Any]:
    return {
        "refId": ref,
        "datasourceUid": EXPR_UID,
        "model": {"refId": ref, **body, "datasource": {"type": EXPR_UID, "uid": EXPR_UID}},
    }


def step_data(step: Step, datasource_uid: str = DATASOURCE_UID) -> dict[str, Any]:
    """One entry of a rule's `data`, as QueryV1 reads it; its queries read `datasource_uid`."""
    if isinstance(step, Query):
        return {
            "refId": step.ref,
            "relativeTimeRange": {"from": step.window_s, "to": 0},
            "datasourceUid": datasource_uid,
            "model": {
                "refId": step.ref,
                "query": step.sql,
                "rawQuery": True,
                "resultFormat": "time_series",
                "intervalMs": 60000,
                "maxDataPoints": 43200,
            },
        }
    if isinstance(step, Reduce):
        return _expr(
            step.ref,
            {
                "type": "reduce",
                "expression": step.source,
                "reducer": step.reducer,
                "settings": {"mode": "dropNN"},
            },
        )
    if isinstance(step, Math):
        return _expr(step.ref, {"type": "math", "expression": step.expression})
    return _expr(
        step.ref,
        {
            "type": "threshold",
            "expression": step.source,
            "conditions": [{"evaluator": {"type": step.kind, "params": list(step.params)}}],
        },
    )


def rule_dict(rule: Rule, datasource_uid: str = DATASOURCE_UID) -> dict[str, Any]:
    """The rule as AlertRuleV1 reads it from a provisioning file, its queries reading the data
    source `datasource_uid`."""
    return {
        "uid": rule.uid,
        "title": rule.title,
        "condition": rule.condition,
        "data": [step_data(s, datasource_uid) for s in rule.steps],
        "noDataState": rule.no_data_state,
        "execErrState": rule.exec_err_state,
        "for": rule.for_,
        "annotations": {
            "summary": rule.summary,
            "description": rule.description,
            "runbook": rule.runbook,
        },
        "labels": {"severity": rule.severity, "product": "energymon"},
        "isPaused": False,
    }
