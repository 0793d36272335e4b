"""The collector's health: what `GET /health` answers and what goes to `energymon_health`.

`snapshot()` copies the store's figures into a frozen `CollectorHealth` (the conventions are
`energymon.health`'s); `HealthReporter` writes its records every `interval_s`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from collector.store import DurableStore
from collector.submission import ResetReport
from collector.watch import Watch
from energymon.boundary import Fault
from energymon.clock import Clock
from energymon.health import Status, health_line
from energymon.lineproto import FieldValue

COMPONENT = "collector"
# The rollup worker counts as stuck once its next step is this many of its intervals late.
ROLLUP_STALL_INTERVALS = 2


@dataclass(frozen=True, slots=True)
class InfluxHealth:
    # None until the first write told either way.
    reachable: bool | None
    url: str

    def to_json(self) -> dict[str, Any]:
        return {"reachable": self.reachable, "url": self.url}


@dataclass(frozen=True, slots=True)
class SpoolHealth:
    depth_points: int
    size_bytes: int
    max_bytes: int
    full_refusals: int

    def to_json(self) -> dict[str, Any]:
        return {
            "depth_points": self.depth_points,
            "bytes": self.size_bytes,
            "max_bytes": self.max_bytes,
            "full_refusals": self.full_refusals,
        }


@dataclass(frozen=True, slots=True)
class DeviceHealth:
    boot: int
    last_seq: int | None
    last_reading_ms: int | None
    reading_age_s: float | None
    last_contact_age_s: float
    # As the device last reported them.
    dropped: int
    meter_errors: Mapping[str, int]
    # Why the current boot began, when the firmware says (older firmware does not).
    reset: ResetReport | None = None

    def to_json(self) -> dict[str, Any]:
        report: dict[str, Any] = {
            "boot": self.boot,
            "last_seq": self.last_seq,
            "last_reading_ms": self.last_reading_ms,
            "age_s": self.reading_age_s,
            "last_contact_age_s": self.last_contact_age_s,
            "dropped": self.dropped,
            "meter_errors": dict(self.meter_errors),
        }
        if self.reset is not None:
            report["reset"] = {
                "cause": self.reset.cause,
                "stage": self.reset.stage,
                "watchdog_resets": self.reset.watchdog_resets,
            }
        return report

    def fields(self) -> dict[str, FieldValue]:
        fields: dict[str, FieldValue] = {
            "boot": self.boot,
            "last_contact_age_s": float(self.last_contact_age_s),
            "dropped": self.dropped,
            "meter_errors": sum(self.meter_errors.values()),
        }
        if self.last_seq is not None:
            fields["last_seq"] = self.last_seq
        if self.reading_age_s is not None:
            fields["reading_age_s"] = float(self.reading_age_s)
        if self.reset is not None:
            fields["reset_cause"] = self.reset.cause
            fields["watchdog_resets"] = self.reset.watchdog_resets
        return fields


@dataclass(frozen=True, slots=True)
class CounterHealth:
    """Totals since the collector started."""

    accepted: int
    duplicates: int
    quarantined: int
    spooled_points: int
    group_commits: int = 0


@dataclass(frozen=True, slots=True)
class LossHealth:
    """Acknowledged points found missing from a damaged spool at a start, until cleared."""

    points: int
    ranges: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"points": self.points, "ranges": list(self.ranges)}


@dataclass(frozen=True, slots=True)
class LoopHealth:
    """What the background loops report: their open faults and whether draining progresses."""

    faults: tuple[Fault, ...]
    # Seconds since a drain step last moved points into InfluxDB or found the spool empty;
    # None before the first step.
    last_drain_age_s: float | None
    drain_error: str | None
    refused_not_durable: int
    # Seconds the oldest change not yet rolled up has waited (0: none waits); None without a
    # rollup worker.
    rollup_lag_s: float | None = None
    # Seconds since the rollup worker's last step; None without one.
    rollup_step_age_s: float | None = None
    # Seconds its next step is overdue (0: not yet due); None without a worker.
    rollup_overdue_s: float | None = None
    rollup_interval_s: float | None = None

    @property
    def rollup_stalled(self) -> bool:
        return (
            self.rollup_overdue_s is not None
            and self.rollup_interval_s is not None
            and self.rollup_overdue_s > ROLLUP_STALL_INTERVALS * self.rollup_interval_s
        )

    def to_json(self, now_ms: int) -> dict[str, Any]:
        rollup: dict[str, Any] = {}
        if self.rollup_step_age_s is not None:
            rollup["rollup"] = {
                "lag_s": self.rollup_lag_s,
                "last_step_age_s": self.rollup_step_age_s,
                "overdue_s": self.rollup_overdue_s,
            }
        return {
            "faults": [
                {
                    "loop": f.loop,
                    "reason": f.reason,
                    "failures": f.failures,
                    "age_s": (now_ms - f.since_ms) / 1000,
                }
                for f in self.faults
            ],
            "drain": {"last_success_age_s": self.last_drain_age_s, "error": self.drain_error},
            **rollup,
        }


@dataclass(frozen=True, slots=True)
class CollectorHealth:
    now_ms: int
    influx: InfluxHealth
    spool: SpoolHealth
    parked_points: int
    devices: Mapping[str, DeviceHealth]
    counters: CounterHealth
    # None when the report is built without the loops (a store on its own).
    loops: LoopHealth | None = None
    # None when the report is built without a store.
    spool_lost: LossHealth | None = None

    @property
    def reasons(self) -> list[str]:
        """Why the collector is degraded; empty when it is ok."""
        reasons = []
        if self.influx.reachable is False:
            reasons.append("InfluxDB does not answer")
        if self.spool.depth_points:
            reasons.append(f"{self.spool.depth_points} acknowledged points wait in the spool")
        if self.parked_points:
            reasons.append(
                f"{self.parked_points} acknowledged points are parked: InfluxDB refused them"
            )
        if self.loops is not None:
            reasons += [f"{f.loop} is failing: {f.reason}" for f in self.loops.faults]
            if self.loops.rollup_stalled:
                reasons.append(
                    f"the rollup worker has not stepped for {self.loops.rollup_step_age_s:.0f} s"
                )
        if self.spool_lost is not None and self.spool_lost.points:
            reasons.append(
                f"{self.spool_lost.points} acknowledged points were lost from a damaged spool: "
                + (", ".join(self.spool_lost.ranges) or "health records only")
            )
        return reasons

    @property
    def status(self) -> Status:
        return "degraded" if self.reasons else "ok"

    @property
    def refused_not_durable(self) -> int:
        return self.spool.full_refusals if self.loops is None else self.loops.refused_not_durable

    def to_json(self) -> dict[str, Any]:
        c = self.counters
        extra: dict[str, Any] = {}
        if self.loops is not None:
            extra["loops"] = self.loops.to_json(self.now_ms)
        if self.spool_lost is not None:
            extra["spool_lost"] = self.spool_lost.to_json()
        return {
            "status": self.status,
            "influx": self.influx.to_json(),
            "spool": self.spool.to_json(),
            "parked_points": self.parked_points,
            "devices": {name: d.to_json() for name, d in self.devices.items()},
            "counters": {
                "accepted": c.accepted,
                "duplicates": c.duplicates,
                "quarantined": c.quarantined,
                "spooled_points": c.spooled_points,
                "group_commits": c.group_commits,
                # Every request answered 503 `not_durable`: spool full or disk failing.
                "refused_not_durable": self.refused_not_durable,
            },
            "reasons": self.reasons,
            **extra,
        }

    def to_lines(self, home: str) -> list[str]:
        fields: dict[str, FieldValue] = {
            # Unknown counts as reachable: no write has failed yet.
            "influx_reachable": self.influx.reachable is not False,
            "spool_points": self.spool.depth_points,
            "spool_bytes": self.spool.size_bytes,
            "spool_full_refusals": self.spool.full_refusals,
            "parked_points": self.parked_points,
            "accepted": self.counters.accepted,
            "duplicates": self.counters.duplicates,
            "quarantined": self.counters.quarantined,
            "group_commits": self.counters.group_commits,
            "devices": len(self.devices),
        }
        if self.loops is not None:
            fields["refused_not_durable"] = self.loops.refused_not_durable
            fields["loop_faults"] = len(self.loops.faults)
            if self.loops.last_drain_age_s is not None:
                fields["drain_age_s"] = float(self.loops.last_drain_age_s)
            if self.loops.rollup_lag_s is not None:
                fields["rollup_lag_s"] = float(self.loops.rollup_lag_s)
        if self.spool_lost is not None:
            fields["spool_lost_points"] = self.spool_lost.points
        lines = [health_line(COMPONENT, home, fields, self.now_ms)]
        lines += [
            health_line(COMPONENT, home, d.fields(), self.now_ms, {"device": name})
            for name, d in self.devices.items()
        ]
        return lines


def snapshot(store: DurableStore, now_ms: int, watch: Watch | None = None) -> CollectorHealth:
    """The store's health now, with the loops' when `watch` is given; call on the store's
    thread, between commits."""
    spool = store.spool
    c = store.counters
    loops = None
    if watch is not None:
        rollup = watch.rollup
        loops = LoopHealth(
            faults=watch.faults.current(),
            last_drain_age_s=(
                None if watch.last_drain_ms is None else (now_ms - watch.last_drain_ms) / 1000
            ),
            drain_error=watch.drain_error,
            refused_not_durable=watch.refused_not_durable,
            rollup_lag_s=(
                None
                if rollup is None
                else 0.0
                if rollup.oldest_pending_ms is None
                else max(0.0, (now_ms - rollup.oldest_pending_ms) / 1000)
            ),
            rollup_step_age_s=(
                None if rollup is None else max(0.0, (now_ms - rollup.last_step_ms) / 1000)
            ),
            rollup_overdue_s=(
                None if rollup is None else max(0.0, (now_ms - rollup.next_step_ms) / 1000)
            ),
            rollup_interval_s=None if rollup is None else rollup.interval_s,
        )
    return CollectorHealth(
        now_ms=now_ms,
        influx=InfluxHealth(store.influx_reachable, store.influx.url),
        spool=SpoolHealth(spool.depth_points, spool.bytes, spool.max_bytes, spool.full_refusals),
        parked_points=spool.parked_points,
        devices={
            name: DeviceHealth(
                boot=s.boot,
                last_seq=s.last_seq,
                last_reading_ms=s.last_reading_ms,
                reading_age_s=(
                    None if s.last_reading_ms is None else (now_ms - s.last_reading_ms) / 1000
                ),
                last_contact_age_s=(now_ms - s.last_contact_ms) / 1000,
                dropped=s.dropped,
                meter_errors=dict(s.meter_errors),
                reset=s.reset,
            )
            for name, s in sorted(store.devices.items())
        },
        counters=CounterHealth(
            c.accepted, c.duplicates, c.quarantined, c.spooled_points, c.group_commits
        ),
        loops=loops,
        spool_lost=LossHealth(spool.lost_points, tuple(map(str, spool.lost_ranges))),
    )


@dataclass(frozen=True, slots=True)
class HealthStep:
    written: bool
    points: int


class HealthReporter:
    """Writes health records every `interval_s`; call `run_once()` on the store's thread."""

    def __init__(
        self,
        store: DurableStore,
        clock: Clock,
        interval_s: float,
        watch: Watch | None = None,
        extra: Callable[[CollectorHealth], list[str]] | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.interval_s = interval_s
        self.watch = watch
        # More records written with each report (the known meters and the home's profile).
        self.extra = extra
        self._next_due = clock.monotonic()

    def run_once(self) -> HealthStep:
        if self.clock.monotonic() < self._next_due:
            return HealthStep(False, 0)
        self._next_due = self.clock.monotonic() + self.interval_s
        now_ms = self.clock.now_ms()
        health = snapshot(self.store, now_ms, self.watch)
        lines = health.to_lines(self.store.home)
        if self.extra is not None:
            lines += self.extra(health)
        self.store.write_points(lines, now_ms)
        return HealthStep(True, len(lines))
