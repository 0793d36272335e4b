"""An alert rule evaluated as Grafana's alerting evaluates it, against a real influxd, at a
chosen `now`.

What it follows in Grafana's source:
- pkg/services/ngalert/eval/eval.go: a data source query that returns no series makes the whole
  evaluation NoData; otherwise each series of the condition is an instance, firing when its
  value is non-zero (NaN included), normal at 0.
- pkg/services/ngalert/state (ApplyNoDataAndErrorToAllStates, the default of Grafana 11 and the
  only behaviour of 12): NoData applies the rule's `noDataState` to every instance it has.
- pkg/expr/nodes.go and mathexp: `reduce` (mode dropNN) turns each series into one number,
  NaN when nothing is left; `math` joins its operands by labels (mathexp/exp.go `union`: equal
  label sets, or one contains the other and the result takes the larger, an unlabelled side
  joins everything, and one value against one value joins whatever their labels); `threshold`
  knows only the functions of pkg/expr/threshold.go.
- A rule's `for`: an instance is Pending from its first alerting evaluation and Alerting once
  `for` has passed. A series that disappears is dropped at once (Grafana keeps it two more
  evaluations before resolving it), so "stays firing" is tested the strict way.

Rule queries carry their own time condition ending at now(); evaluating at another time writes
that instant in place of InfluxQL's now(), which is what the real server's clock gives when
Grafana runs the rule then.
"""

from __future__ import annotations

import math
import operator
import re
import statistics
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from energymon.influx import InfluxClient

Labels = tuple[tuple[str, str], ...]
Numbers = dict[Labels, float]

# pkg/expr/threshold.go: supportedThresholdFuncs.
THRESHOLDS: dict[str, Callable[[float, list[float]], bool]] = {
    "gt": lambda v, p: v > p[0],
    "lt": lambda v, p: v < p[0],
    "eq": lambda v, p: v == p[0],
    "ne": lambda v, p: v != p[0],
    "gte": lambda v, p: v >= p[0],
    "lte": lambda v, p: v <= p[0],
    "within_range": lambda v, p: p[0] < v < p[1],
    "outside_range": lambda v, p: v < p[0] or v > p[1],
    "within_range_included": lambda v, p: p[0] <= v <= p[1],
    "outside_range_included": lambda v, p: v <= p[0] or v >= p[1],
}
RANGED = {"within_range", "outside_range", "within_range_included", "outside_range_included"}
REDUCERS: dict[str, Callable[[list[float]], float]] = {
    "last": lambda v: v[-1],
    "max": max,
    "min": min,
    "sum": math.fsum,
    "mean": statistics.fmean,
    "count": lambda v: float(len(v)),
    "median": statistics.median,
}
NO_DATA_STATES = {"Alerting", "NoData", "OK", "KeepLast"}
ERROR_STATES = {"Alerting", "Error", "OK", "KeepLast"}


class UnknownExpressionError(AssertionError):
    """A rule uses something Grafana's expression engine would refuse."""


def _iso(now_ms: int) -> str:
    return datetime.fromtimestamp(now_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def at(query: str, now_ms: int) -> str:
    """The query as the server runs it at `now_ms`."""
    assert "$" not in query, query
    return query.replace("now()", f"'{_iso(now_ms)}'")


def run_query(client: InfluxClient, query: str, now_ms: int) -> dict[Labels, list[float | None]]:
    series = client.query(at(query, now_ms))
    return {tuple(sorted(s.tags.items())): [row[1] for row in s.values] for s in series}


def threshold(kind: str, params: list[float]) -> Callable[[float], bool]:
    if kind not in THRESHOLDS:
        raise UnknownExpressionError(
            f"expected threshold function to be one of {sorted(THRESHOLDS)}, got {kind}"
        )
    need = 2 if kind in RANGED else 1
    if len(params) < need:
        raise UnknownExpressionError(f"{kind} needs {need} parameters, got {len(params)}")
    check = THRESHOLDS[kind]
    return lambda v: check(v, params)


def reduce(values: list[float | None], reducer: str, mode: str) -> float:
    if reducer not in REDUCERS:
        raise UnknownExpressionError(f"reducer {reducer} is not one of {sorted(REDUCERS)}")
    if mode != "dropNN":
        raise UnknownExpressionError(f"reduce mode {mode!r} is not evaluated here")
    kept = [v for v in values if v is not None and not math.isnan(v)]
    return REDUCERS[reducer](kept) if kept else math.nan


# ---- math expressions: the subset of mathexp/parse our rules use, with Go's precedence.

_TOKEN = re.compile(r"\s*(?:(\d+(?:\.\d*)?)|\$\{?(\w+)\}?|(\|\||&&|[<>!=]=|[-+*/()<>!]))")
_PRECEDENCE = [("||",), ("&&",), ("==", "!=", "<", ">", "<=", ">="), ("+", "-"), ("*", "/")]
_OPS: dict[str, Callable[[float, float], float]] = {
    "||": lambda a, b: float(a != 0 or b != 0),
    "&&": lambda a, b: float(a != 0 and b != 0),
    "==": lambda a, b: float(a == b),
    "!=": lambda a, b: float(a != b),
    "<": lambda a, b: float(a < b),
    ">": lambda a, b: float(a > b),
    "<=": lambda a, b: float(a <= b),
    ">=": lambda a, b: float(a >= b),
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": lambda a, b: a / b if b else math.copysign(math.inf, a) if a else math.nan,
}
Value = float | Numbers


def _tokens(expression: str) -> list[str]:
    out, pos = [], 0
    while pos < len(expression.rstrip()):
        m = _TOKEN.match(expression, pos)
        if m is None:
            raise UnknownExpressionError(f"cannot parse {expression!r} at {pos}")
        number, var, op = m.groups()
        out.append(number if number else f"${var}" if var else op)
        pos = m.end()
    return out


def _contains(big: Labels, small: Labels) -> bool:
    return set(small) <= set(big)


def union(a: Numbers, b: Numbers) -> list[tuple[Labels, float, float]]:
    """Pairs of a and b that Grafana's mathexp `union` joins, with the joined labels."""
    out = []
    for la, va in a.items():
        for lb, vb in b.items():
            if la == lb or not la or not lb:
                labels = la or lb
            elif len(la) == len(lb):
                continue
            elif _contains(la, lb):
                labels = la
            elif _contains(lb, la):
                labels = lb
            else:
                continue
            out.append((labels, va, vb))
    if not out and len(a) == 1 and len(b) == 1:
        [(_, va)] = a.items()
        [(_, vb)] = b.items()
        out.append(((), va, vb))
    return out


def _binary(op: str, a: Value, b: Value) -> Value:
    f = _OPS[op]

    def apply(x: float, y: float) -> float:
        # mathexp binaryOp: the short circuits come before the NaN test.
        if op == "||" and x != 0:
            return 1.0
        if op == "&&" and x == 0:
            return 0.0
        if math.isnan(x) or math.isnan(y):
            return math.nan
        return f(x, y)

    if isinstance(a, dict) and isinstance(b, dict):
        return {labels: apply(x, y) for labels, x, y in union(a, b)}
    if isinstance(a, dict):
        return {labels: apply(x, b) for labels, x in a.items()}  # type: ignore[arg-type]
    if isinstance(b, dict):
        return {labels: apply(a, y) for labels, y in b.items()}
    return apply(a, b)


@dataclass
class _Parser:
    tokens: list[str]
    variables: dict[str, Numbers]
    pos: int = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def expression(self, level: int = 0) -> Value:
        if level == len(_PRECEDENCE):
            return self.unary()
        left = self.expression(level + 1)
        while self.peek() in _PRECEDENCE[level]:
            op = self.take()
            left = _binary(op, left, self.expression(level + 1))
        return left

    def unary(self) -> Value:
        token = self.take()
        if token == "(":
            inner = self.expression()
            if self.take() != ")":
                raise UnknownExpressionError("unbalanced parenthesis")
            return inner
        if token in ("!", "-"):
            operand = self.unary()
            neg: Callable[[float], float] = (
                (lambda v: float(v == 0)) if token == "!" else operator.neg
            )
            if isinstance(operand, dict):
                return {k: neg(v) for k, v in operand.items()}
            return neg(operand)
        if token.startswith("$"):
            if token[1:] not in self.variables:
                raise UnknownExpressionError(f"math refers to {token}, not computed before it")
            return self.variables[token[1:]]
        return float(token)


def evaluate_math(expression: str, variables: dict[str, Numbers]) -> Numbers:
    parser = _Parser(_tokens(expression), variables)
    result = parser.expression()
    if parser.pos != len(parser.tokens):
        raise UnknownExpressionError(f"trailing tokens in {expression!r}")
    return result if isinstance(result, dict) else {(): result}


@dataclass(frozen=True)
class Evaluation:
    """One evaluation: NoData, or the condition's value per instance."""

    no_data: bool
    values: Numbers = field(default_factory=dict)


def evaluate(client: InfluxClient, rule: dict[str, Any], now_ms: int) -> Evaluation:
    results: dict[str, Numbers] = {}
    raw: dict[str, dict[Labels, list[float | None]]] = {}
    for data in rule["data"]:
        ref, model = data["refId"], data["model"]
        if data["datasourceUid"] != "__expr__":
            raw[ref] = run_query(client, model["query"], now_ms)
            if not raw[ref]:
                return Evaluation(no_data=True)
            continue
        kind = model["type"]
        if kind == "reduce":
            source = raw[model["expression"]]
            mode = model.get("settings", {}).get("mode", "")
            results[ref] = {
                labels: reduce(values, model["reducer"], mode) for labels, values in source.items()
            }
        elif kind == "math":
            results[ref] = evaluate_math(model["expression"], results)
        elif kind == "threshold":
            [condition] = model["conditions"]
            check = threshold(condition["evaluator"]["type"], condition["evaluator"]["params"])
            results[ref] = {
                labels: float(not math.isnan(v) and check(v))
                for labels, v in results[model["expression"]].items()
            }
        else:
            raise UnknownExpressionError(f"expression type {kind} is not evaluated here")
    return Evaluation(no_data=False, values=results[rule["condition"]])


def parse_duration_s(text: str) -> int:
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    return sum(int(n) * units[u] for n, u in re.findall(r"(\d+)([smhd])", text))


@dataclass
class Instance:
    state: str  # Normal, Pending, Alerting, NoData
    active_since_ms: int = 0


@dataclass
class RuleState:
    """The instances of one rule across evaluations, as Grafana's state manager keeps them."""

    rule: dict[str, Any]
    instances: dict[Labels, Instance] = field(default_factory=dict)

    def step(self, client: InfluxClient, now_ms: int) -> set[Labels]:
        """Evaluate at `now_ms`; the instances firing (Alerting) after it."""
        result = evaluate(client, self.rule, now_ms)
        if result.no_data:
            self._no_data(now_ms)
        else:
            for labels in set(self.instances) - set(result.values):
                del self.instances[labels]
            for labels, value in result.values.items():
                self._set(labels, value != 0, now_ms)
        return {k for k, v in self.instances.items() if v.state == "Alerting"}

    def _set(self, labels: Labels, alerting: bool, now_ms: int) -> None:
        current = self.instances.get(labels)
        if not alerting:
            self.instances[labels] = Instance("Normal")
            return
        since = (
            current.active_since_ms
            if current is not None and current.state in ("Pending", "Alerting")
            else now_ms
        )
        due = now_ms - since >= parse_duration_s(self.rule["for"]) * 1000
        self.instances[labels] = Instance("Alerting" if due else "Pending", since)

    def _no_data(self, now_ms: int) -> None:
        state = self.rule["noDataState"]
        targets = self.instances or {(): Instance("Normal")}
        for labels in list(targets):
            if state == "Alerting":
                self._set(labels, True, now_ms)
            elif state == "OK":
                self.instances[labels] = Instance("Normal")
            elif state == "NoData":
                self.instances[labels] = Instance("NoData")
            elif labels not in self.instances:
                self.instances[labels] = Instance("Normal")


def run(client: InfluxClient, rule: dict[str, Any], times_ms: Iterable[int]) -> list[set[Labels]]:
    """The firing instances after each evaluation at `times_ms`, in order."""
    state = RuleState(rule)
    return [state.step(client, t) for t in times_ms]
