"""What a service reports about itself, in the same shape for every service.

A service builds a frozen report of its figures at one moment. `to_json()` is the body of its
`GET /health`; `to_lines(home)` is its records in `energymon_health`, written into the local
InfluxDB at the report's time. The replicator carries those records to the cloud like any other
point, so Grafana can alert on them locally and a home that goes quiet is visible from outside.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Protocol, runtime_checkable

from energymon.lineproto import FieldValue, format_line
from energymon.schema import HEALTH_MEASUREMENT

Status = Literal["ok", "degraded"]


@runtime_checkable
class HealthReport(Protocol):
    @property
    def status(self) -> Status:
        """ "degraded" when the service cannot do its whole job right now."""
        ...

    def to_json(self) -> dict[str, Any]:
        """The JSON-able body of `GET /health`; its keys are an interface (tests, users)."""
        ...

    def to_lines(self, home: str) -> list[str]:
        """The report as line protocol for `energymon_health`."""
        ...


def health_line(
    component: str,
    home: str,
    fields: Mapping[str, FieldValue],
    time_ms: int,
    extra_tags: Mapping[str, str] | None = None,
) -> str:
    """One `energymon_health` record of `component` ("collector", "replicator") in `home`."""
    tags = {"home": home, "component": component, **(extra_tags or {})}
    return format_line(HEALTH_MEASUREMENT, tags, fields, time_ms)
