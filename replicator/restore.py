"""Restore: copy this home's data from the cloud back into a (fresh) local InfluxDB, window by
window, saving the position after each acknowledged window so an interrupted restore resumes."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from energymon.clock import Clock
from energymon.errors import ReplicationError
from energymon.influx import InfluxClient
from replicator.copy import copy_range
from replicator.points import TimeRange, earliest_time_ms
from replicator.sink import BatchSink
from replicator.state import atomic_write_json, read_json

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RestorePlan:
    since_ms: int
    until_ms: int
    position_ms: int

    @property
    def done(self) -> bool:
        return self.position_ms >= self.until_ms

    @property
    def fraction(self) -> float:
        span = self.until_ms - self.since_ms
        return 1.0 if span <= 0 else (self.position_ms - self.since_ms) / span


class Restorer:
    def __init__(
        self,
        *,
        cloud: InfluxClient,
        sink: BatchSink,
        state_path: Path,
        clock: Clock,
        home: str,
        window_ms: int,
    ) -> None:
        self.cloud = cloud
        self.sink = sink
        self.state_path = state_path
        self.clock = clock
        self.home = home
        self.window_ms = window_ms
        self.copied_points = 0

    def plan(self, since_ms: int | None) -> RestorePlan:
        """Resume the saved restore if it covers the same start, else plan a new one up to now."""
        saved = read_json(self.state_path)
        if saved is not None and saved.get("home") == self.home and (
            since_ms is None or saved.get("since_ms") == since_ms
        ):
            try:
                plan = RestorePlan(
                    int(saved["since_ms"]), int(saved["until_ms"]), int(saved["position_ms"])
                )
            except (KeyError, TypeError, ValueError) as exc:
                raise ReplicationError(f"{self.state_path} is malformed: {exc}") from exc
            log.info("resuming the restore at %d ms", plan.position_ms)
            return plan
        start = since_ms if since_ms is not None else earliest_time_ms(self.cloud, self.home, 0)
        until = self.clock.now_ms()
        first = until if start is None else start
        plan = RestorePlan(first, until, first)
        self._save(plan)
        return plan

    def run_once(self, plan: RestorePlan) -> RestorePlan:
        """Copy the next window; the new plan is saved once the local InfluxDB acknowledged it."""
        if plan.done:
            return plan
        end = min(plan.until_ms, plan.position_ms + self.window_ms)
        copied = copy_range(self.cloud, self.sink, self.home, TimeRange(plan.position_ms, end))
        self.copied_points += copied
        if copied == 0 and end < plan.until_ms:
            following = earliest_time_ms(self.cloud, self.home, end)
            end = plan.until_ms if following is None else max(end, min(following, plan.until_ms))
        new = RestorePlan(plan.since_ms, plan.until_ms, end)
        self._save(new)
        return new

    def _save(self, plan: RestorePlan) -> None:
        atomic_write_json(
            self.state_path,
            {
                "home": self.home,
                "since_ms": plan.since_ms,
                "until_ms": plan.until_ms,
                "position_ms": plan.position_ms,
            },
        )
