"""A small raw-InfluxQL query builder, and the InfluxDB query target the SDK does not have.

grafana-foundation-sdk ships no InfluxDB data query, so `InfluxQLTarget` writes the keys
Grafana's InfluxDB backend reads from a query (`pkg/tsdb/influxdb/models/model_parser.go`:
`query`, `rawQuery`, `alias`, `resultFormat`), plus the panel-level `refId` and `datasource`.

Source by range. A panel that can read raw readings or the rollups carries one target per
source; each target is guarded by a comparison of Grafana's `$__interval_ms` with constants, so
InfluxDB reduces the guard of every source but one to false and reads nothing for them. With a
panel's `maxDataPoints` fixed, the interval is a function of the time range only (Grafana:
range / maxDataPoints, rounded by `roundInterval`), so the guard chooses by range.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants

TIME_FILTER = "$timeFilter"
INTERVAL = "$__interval"
INTERVAL_MS = "$__interval_ms"
ResultFormat = Literal["time_series", "table"]


def ident(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def string(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def matches(tag: str, variable: str) -> str:
    """The tag matches a multi-value template variable (Grafana writes `(a|b)` or `.*`)."""
    return f"{ident(tag)} =~ /^${variable}$/"


def equals(tag: str, value: str) -> str:
    return f"{ident(tag)} = {string(value)}"


def not_equals(tag: str, value: str) -> str:
    return f"{ident(tag)} != {string(value)}"


@dataclass(frozen=True)
class Select:
    """One InfluxQL SELECT; `source` is a measurement name or a parenthesised subquery."""

    columns: Sequence[str]
    source: str
    where: Sequence[str] = ()
    group_by: Sequence[str] = ()
    fill: str | None = None
    tail: str = ""

    def __str__(self) -> str:
        text = f"SELECT {', '.join(self.columns)} FROM {self.source}"
        if self.where:
            text += " WHERE " + " AND ".join(self.where)
        if self.group_by:
            text += " GROUP BY " + ", ".join(self.group_by)
        if self.fill is not None:
            text += f" fill({self.fill})"
        if self.tail:
            text += " " + self.tail
        return text

    def subquery(self) -> str:
        return f"({self})"


def measurement(name: str) -> str:
    return ident(name)


def by_time(interval: str = INTERVAL) -> str:
    return f"time({interval})"


def tags(*names: str) -> list[str]:
    return [ident(n) for n in names]


@dataclass(frozen=True)
class Tier:
    """A source of a panel and the `$__interval_ms` it serves: [from_ms, below_ms)."""

    name: str
    measurement: str
    from_ms: int
    below_ms: int | None

    def guard(self) -> list[str]:
        out = [f"{INTERVAL_MS} >= {self.from_ms}"] if self.from_ms else []
        if self.below_ms is not None:
            out.append(f"{INTERVAL_MS} < {self.below_ms}")
        return out

    def serves(self, interval_ms: int) -> bool:
        return interval_ms >= self.from_ms and (
            self.below_ms is None or interval_ms < self.below_ms
        )


MINUTE_MS = 60_000
HOUR_MS = 3_600_000
RAW = Tier("raw", "electricity", 0, MINUTE_MS)
ROLLUP_1M = Tier("1m", "energymon_1m", MINUTE_MS, HOUR_MS)
ROLLUP_1H = Tier("1h", "energymon_1h", HOUR_MS, None)
# Home totals need the meter's role, which only the rollups carry: their shortest source is
# the minute rollup.
ROLLUP_1M_FROM_ZERO = Tier("1m", "energymon_1m", 0, HOUR_MS)
READINGS_TIERS = (RAW, ROLLUP_1M, ROLLUP_1H)
ROLLUP_TIERS = (ROLLUP_1M_FROM_ZERO, ROLLUP_1H)


@dataclass(frozen=True)
class InfluxQL(cogvariants.Dataquery):
    """A raw InfluxQL target as Grafana's InfluxDB data source stores it."""

    ref_id: str
    query: str
    datasource_uid: str
    alias: str = ""
    result_format: ResultFormat = "time_series"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "refId": self.ref_id,
            "datasource": {"type": "influxdb", "uid": self.datasource_uid},
            "query": self.query,
            "rawQuery": True,
            "resultFormat": self.result_format,
        }
        if self.alias:
            out["alias"] = self.alias
        return out


class InfluxQLTarget(cogbuilder.Builder[cogvariants.Dataquery]):
    def __init__(self, target: InfluxQL) -> None:
        self._target = target

    def build(self) -> InfluxQL:
        return self._target
