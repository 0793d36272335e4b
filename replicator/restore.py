"""Restore: copy this home's data from the cloud back into the local InfluxDB, window by window,
saving the position after each acknowledged window so an interrupted restore resumes.

A restore does what it is asked every time: a finished plan is not resumed but planned again.
A window with no local points is copied whole (the fresh SD card). Otherwise the two sides are
compared series-hour by series-hour (`replicator.digest`): equal hours are skipped, points
missing locally are written, and a local point whose values differ from the cloud's is kept and
reported as a conflict, unless `overwrite` says the cloud's values win.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from energymon.clock import Clock
from energymon.errors import LineProtocolError, ReplicationError
from energymon.influx import InfluxClient
from energymon.lineproto import format_line
from replicator.copy import copy_range
from replicator.digest import (
    HourKey,
    digest_window,
    measurements_of_both,
    same_point,
    series_hour_points,
)
from replicator.points import TimeRange, earliest_time_ms
from replicator.rows import BadPoint
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


@dataclass(frozen=True, slots=True)
class Conflict:
    """A point both sides hold with different values."""

    measurement: str
    tags: tuple[tuple[str, str], ...]
    time_ms: int
    local: dict[str, Any]
    cloud: dict[str, Any]


# Conflicts kept for the report; the rest are counted.
CONFLICTS_KEPT = 100


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
        overwrite: bool = False,
    ) -> None:
        self.cloud = cloud
        self.local = sink.client
        self.overwrite = overwrite
        self.conflicts: list[Conflict] = []
        self.conflict_count = 0
        self.sink = sink
        self.state_path = state_path
        self.clock = clock
        self.home = home
        self.window_ms = window_ms
        self.copied_points = 0

    def plan(self, since_ms: int | None) -> RestorePlan:
        """Resume the saved restore if it is unfinished and covers the same start, else plan a
        new one up to now."""
        saved = read_json(self.state_path)
        if (
            saved is not None
            and saved.get("home") == self.home
            and (since_ms is None or saved.get("since_ms") == since_ms)
            and saved.get("position_ms", 0) < saved.get("until_ms", 0)
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
        window = TimeRange(plan.position_ms, end)
        names = measurements_of_both(self.local, self.cloud, self.home)
        mine = digest_window(self.local, self.home, window, names)
        if mine:
            copied = self._merge(window, names, mine)
        else:
            copied = copy_range(self.cloud, self.sink, self.home, window)
        self.copied_points += copied
        if copied == 0 and end < plan.until_ms:
            following = earliest_time_ms(self.cloud, self.home, end)
            end = plan.until_ms if following is None else max(end, min(following, plan.until_ms))
        new = RestorePlan(plan.since_ms, plan.until_ms, end)
        self._save(new)
        return new

    def _merge(self, window: TimeRange, names: list[str], mine: dict[HourKey, Any]) -> int:
        """Into a window that holds local points: what is missing, and what differs only with
        `overwrite`; one series-hour in memory at a time."""
        theirs = digest_window(self.cloud, self.home, window, names)
        written = 0
        for key in sorted(k for k in theirs if mine.get(k) != theirs[k]):
            local = series_hour_points(self.local, self.home, key)
            lines = []
            for time_ms, values in sorted(series_hour_points(self.cloud, self.home, key).items()):
                if not window.start_ms <= time_ms < window.end_ms:
                    continue
                here = local.get(time_ms)
                if here is not None and not same_point(here, values):
                    self._conflict(Conflict(key[0], key[1], time_ms, here, values))
                    if not self.overwrite:
                        continue
                if here is None or not same_point(here, values):
                    line = self._line(key, time_ms, values)
                    if line is not None:
                        lines.append(line)
            for start in range(0, len(lines), self.sink.batch_size):
                self.local.write(lines[start : start + self.sink.batch_size])
            written += len(lines)
        return written

    def _conflict(self, conflict: Conflict) -> None:
        self.conflict_count += 1
        if len(self.conflicts) < CONFLICTS_KEPT:
            self.conflicts.append(conflict)
        log.warning(
            "%s %s at %d ms: local %s, cloud %s (%s)", conflict.measurement, conflict.tags,
            conflict.time_ms, conflict.local, conflict.cloud,
            "taking the cloud's" if self.overwrite else "keeping the local values",
        )  # fmt: skip

    def _line(self, key: HourKey, time_ms: int, values: dict[str, Any]) -> str | None:
        measurement, tags, _ = key
        try:
            return format_line(measurement, dict(tags), values, time_ms)
        except LineProtocolError as exc:
            self.sink.bad_point(BadPoint(measurement, time_ms, f"{tags!r} {values!r}", str(exc)))
            return None

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
