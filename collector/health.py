"""The collector's health: what `GET /health` answers and what goes to `energymon_health`.

Writing the same figures into InfluxDB every minute lets Grafana alert on them locally, and the
replicator carries them to the cloud, so a home that goes quiet is visible from outside.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from collector.store import DurableStore
from energymon.clock import Clock
from energymon.lineproto import FieldValue, format_line
from energymon.schema import HEALTH_MEASUREMENT


def snapshot(store: DurableStore, now_ms: int) -> dict[str, Any]:
    """Health figures; call on the store's thread, between commits."""
    spool = store.spool
    degraded = store.influx_reachable is False or not spool.empty
    devices = {
        name: {
            "boot": s.boot,
            "last_seq": s.last_seq,
            "last_reading_ms": s.last_reading_ms,
            "age_s": None if s.last_reading_ms is None else (now_ms - s.last_reading_ms) / 1000,
            "last_contact_age_s": (now_ms - s.last_contact_ms) / 1000,
            "dropped": s.dropped,
            "meter_errors": dict(s.meter_errors),
        }
        for name, s in sorted(store.devices.items())
    }
    c = store.counters
    return {
        "status": "degraded" if degraded else "ok",
        "influx": {"reachable": store.influx_reachable, "url": store.influx.url},
        "spool": {
            "depth_points": spool.depth_points,
            "bytes": spool.bytes,
            "max_bytes": spool.max_bytes,
            "full_refusals": spool.full_refusals,
        },
        "parked_points": spool.parked_points,
        "devices": devices,
        "counters": {
            "accepted": c.accepted,
            "duplicates": c.duplicates,
            "quarantined": c.quarantined,
            "spooled_points": c.spooled_points,
            "refused_not_durable": spool.full_refusals,
        },
    }


def health_lines(figures: dict[str, Any], home: str, now_ms: int) -> list[str]:
    tags = {"home": home, "component": "collector"}
    spool = figures["spool"]
    counters = figures["counters"]
    fields: dict[str, FieldValue] = {
        "influx_reachable": figures["influx"]["reachable"] is not False,
        "spool_points": spool["depth_points"],
        "spool_bytes": spool["bytes"],
        "spool_full_refusals": spool["full_refusals"],
        "parked_points": figures["parked_points"],
        "accepted": counters["accepted"],
        "duplicates": counters["duplicates"],
        "quarantined": counters["quarantined"],
        "devices": len(figures["devices"]),
    }
    lines = [format_line(HEALTH_MEASUREMENT, tags, fields, now_ms)]
    for name, d in figures["devices"].items():
        device_fields: dict[str, FieldValue] = {
            "boot": d["boot"],
            "last_contact_age_s": float(d["last_contact_age_s"]),
            "dropped": d["dropped"],
            "meter_errors": sum(d["meter_errors"].values()),
        }
        if d["last_seq"] is not None:
            device_fields["last_seq"] = d["last_seq"]
        if d["age_s"] is not None:
            device_fields["reading_age_s"] = float(d["age_s"])
        lines.append(
            format_line(HEALTH_MEASUREMENT, {**tags, "device": name}, device_fields, now_ms)
        )
    return lines


@dataclass(frozen=True, slots=True)
class HealthStep:
    written: bool
    points: int


class HealthReporter:
    """Writes health records every `interval_s`; call `run_once()` on the store's thread."""

    def __init__(self, store: DurableStore, clock: Clock, interval_s: float) -> None:
        self.store = store
        self.clock = clock
        self.interval_s = interval_s
        self._next_due = clock.monotonic()

    def run_once(self) -> HealthStep:
        if self.clock.monotonic() < self._next_due:
            return HealthStep(False, 0)
        self._next_due = self.clock.monotonic() + self.interval_s
        now_ms = self.clock.now_ms()
        lines = health_lines(snapshot(self.store, now_ms), self.store.home, now_ms)
        self.store.write_points(lines, now_ms)
        return HealthStep(True, len(lines))
