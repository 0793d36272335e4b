"""Whole-history coverage: the checks that prove, over time, that the cloud holds every point.

The `Auditor` works in slices (one hour or one day of one check) so that it can be stopped,
throttled and driven by tests; in the service it runs on its own thread with its own sink, and
only while the replicator is caught up, so a check never delays the live copy. Its jobs:

- **recent**: every `verify_interval`, the last `verify_days` up to the watermark, exactly
  (digests of every point), repaired when configured; its result is the health's `verify`.
- **sweep**: every `history_check_interval`, the whole history, cheaply (per series and day:
  count, minimum and maximum of every field, computed by InfluxDB); a day that differs is then
  checked and repaired point by point. At its end it remembers how many points the cloud held
  for the history it found equal.
- **cloud check**: every `cloud_check_interval`, one count in the cloud over that history; if
  the cloud holds fewer points than it did (database dropped, data deleted, retention), the
  replicator is asked to reconcile the whole history, without an operator.
- **rolling**: the exact check paced through the whole history, one hour per slice, so that a
  loss anywhere is found (and repaired) within one `exact_cycle`; its position is saved.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from energymon.clock import Clock
from energymon.errors import EnergymonError
from energymon.influx import InfluxClient, quote_ident, quote_string
from replicator.engine import Replicator
from replicator.health import VerifySummary
from replicator.points import HOME_TAG, TimeRange, earliest_of, query
from replicator.sink import BatchSink
from replicator.state import atomic_write_json, read_json
from replicator.verify import (
    DAY_MS,
    HOUR_MS,
    VerifyResult,
    cheap_differences,
    hour_floor,
    verify,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AuditConfig:
    home: str
    verify_interval_s: float
    verify_days: int
    verify_repair: bool
    history_check_interval_s: float = 86400.0
    cloud_check_interval_s: float = 300.0
    exact_cycle_s: float = 7 * 86400.0


@dataclass(frozen=True, slots=True)
class Baseline:
    """The cloud held `cloud_points` points of this home in [start_ms, end_ms) when a sweep
    found that period equal to the local one."""

    start_ms: int
    end_ms: int
    cloud_points: int


def cloud_points(client: InfluxClient, home: str, window: TimeRange) -> int:
    """Points of this home in `window`: per series, its most-counted field (one query)."""
    q = (
        f"SELECT count(*) FROM /.*/ WHERE {quote_ident(HOME_TAG)} = {quote_string(home)} "
        f"AND time >= {window.start_ms}ms AND time < {window.end_ms}ms GROUP BY *"
    )
    return sum(
        max((v for v in row[1:] if isinstance(v, int)), default=0)
        for series in query(client, q)
        for row in series.values
    )


class Auditor:
    def __init__(
        self,
        *,
        replicator: Replicator,
        local: InfluxClient,
        cloud: InfluxClient,
        sink: BatchSink,
        clock: Clock,
        config: AuditConfig,
        state_path: Path,
    ) -> None:
        self.replicator = replicator
        self.local = local
        self.cloud = cloud
        self.sink = sink
        self.clock = clock
        self.config = config
        self.state_path = state_path
        self.verify_summary: VerifySummary | None = None
        self.baseline: Baseline | None = None
        self._lock = threading.Lock()
        start = clock.monotonic()
        self._due = {"recent": start, "sweep": start, "cloud": start}
        self._job: Iterator[None] | None = None
        self._job_name = ""
        self._start_ms: int | None = None
        saved = read_json(state_path) or {}
        self._rolling_ms = int(saved.get("rolling_position_ms", 0))
        self._cycle_started_ms = int(saved.get("rolling_cycle_started_ms", clock.now_ms()))

    def summary(self) -> VerifySummary | None:
        with self._lock:
            return self.verify_summary

    def run_slice(self) -> str | None:
        """Do one slice of whatever is due; returns its job's name, or None when idle. Raises
        `InfluxError`; the job that failed starts again when next due."""
        state = self.replicator.state
        if state is None or not self.replicator.caught_up:
            # A catch-up or a reconciliation is under way: it has the local InfluxDB to itself,
            # and the hours it is copying would differ anyway.
            return None
        now = self.clock.monotonic()
        if now >= self._due["cloud"] and self.baseline is not None:
            self._due["cloud"] = now + self.config.cloud_check_interval_s
            self._check_cloud(self.baseline)
            return "cloud"
        if self._job is None:
            self._start_due_job(now, state.watermark_ms)
        if self._job is not None:
            try:
                next(self._job)
            except StopIteration:
                self._job = None
            except BaseException:
                # Due again at once; the thread's error delay spaces the attempts.
                self._job, self._due[self._job_name] = None, now
                raise
            return self._job_name
        if self._rolling_due(state.watermark_ms):
            self._rolling_slice(state.watermark_ms)
            return "rolling"
        return None

    def _start_due_job(self, now: float, watermark_ms: int) -> None:
        # The sweep first: its end sets the baseline the cloud check needs.
        jobs = {
            "sweep": (self.config.history_check_interval_s, self._sweep),
            "recent": (self.config.verify_interval_s, self._recent),
        }
        for name, (interval_s, job) in jobs.items():
            if now >= self._due[name]:
                self._due[name] = now + interval_s
                self._job, self._job_name = job(watermark_ms), name
                return

    def run_until_idle(self) -> None:
        """Every slice due now, one after the other (tests drive the checks this way)."""
        while self.run_slice() is not None:
            pass

    def _recent(self, watermark_ms: int) -> Iterator[None]:
        # The newest `verify_days` whole hours, the last one up to the watermark.
        start = hour_floor(watermark_ms) - (self.config.verify_days * 24 - 1) * HOUR_MS
        # Hours before the history begins are empty on both sides: checked without a query.
        begins = self._history_start()
        first = hour_floor(watermark_ms) + HOUR_MS if begins is None else max(start, begins)
        checked = max(0, (first - start) // HOUR_MS)
        mismatched = repaired = unresolved = 0
        for hour in range(first, watermark_ms, HOUR_MS):
            window = TimeRange(hour, min(hour + HOUR_MS, watermark_ms))
            result = self._verify(window, repair=self.config.verify_repair)
            checked += result.hours
            mismatched += len(result.mismatched_hours())
            repaired += result.repaired_hours
            unresolved += result.unresolved_hours
            yield
        summary = VerifySummary(self.clock.now_ms(), checked, mismatched, repaired, unresolved)
        log.log(
            logging.WARNING if unresolved else logging.INFO,
            "verified %d hours point by point: %d differed, %d repaired, %d still different",
            checked, mismatched, repaired, unresolved,
        )  # fmt: skip
        with self._lock:
            self.verify_summary = summary

    def _verify(self, window: TimeRange, *, repair: bool) -> VerifyResult:
        return verify(self.local, self.cloud, self.sink, self.config.home, window, repair=repair)

    def _history_start(self) -> int | None:
        """Where this home's history begins; looked up again by every sweep."""
        if self._start_ms is None:
            first = earliest_of((self.local, self.cloud), self.config.home, 0)
            self._start_ms = None if first is None else hour_floor(first)
        return self._start_ms

    def _sweep(self, watermark_ms: int) -> Iterator[None]:
        self._start_ms = None
        start = self._history_start()
        if start is None:
            return
        day_start = start - start % DAY_MS
        differing = 0
        for day in range(day_start, watermark_ms, DAY_MS):
            window = TimeRange(max(day, start), min(day + DAY_MS, watermark_ms))
            for measurement, _ in cheap_differences(
                self.local, self.cloud, self.config.home, window
            ):
                differing += 1
                log.warning(
                    "the whole-history check found %s differing on the day of %d ms; "
                    "checking it point by point", measurement, day,
                )  # fmt: skip
                for hour in range(window.start_ms, window.end_ms, HOUR_MS):
                    self._verify(TimeRange(hour, min(hour + HOUR_MS, window.end_ms)), repair=True)
                    yield
            yield
        # What the cloud holds now, the differing days repaired, is the floor it must keep.
        points = cloud_points(self.cloud, self.config.home, TimeRange(start, watermark_ms))
        self.baseline = Baseline(start, watermark_ms, points)
        log.info(
            "whole-history check up to %d ms: %d measurement-days differed", watermark_ms,
            differing,
        )  # fmt: skip

    def _check_cloud(self, baseline: Baseline) -> None:
        window = TimeRange(baseline.start_ms, baseline.end_ms)
        now_points = cloud_points(self.cloud, self.config.home, window)
        if now_points >= baseline.cloud_points:
            return
        log.error(
            "the cloud holds %d points of this home before %d ms, %d fewer than when they were "
            "verified: re-copying the whole history",
            now_points, baseline.end_ms, baseline.cloud_points - now_points,
        )  # fmt: skip
        self.baseline = None
        self.replicator.request_reconcile("the cloud lost data", until_ms=baseline.end_ms)

    def _rolling_due(self, watermark_ms: int) -> bool:
        start = self._history_start()
        if start is None or watermark_ms <= start:
            return False
        position = max(self._rolling_ms, start)
        if position >= watermark_ms:
            # A cycle is complete: the next one starts now, from the beginning.
            self._rolling_ms, self._cycle_started_ms = start, self.clock.now_ms()
            self._save()
            return False
        done = (position - start) / (watermark_ms - start)
        elapsed_s = (self.clock.now_ms() - self._cycle_started_ms) / 1000
        return elapsed_s >= done * self.config.exact_cycle_s

    def _rolling_slice(self, watermark_ms: int) -> None:
        start = self._history_start() or 0
        position = max(self._rolling_ms, start)
        end = min(hour_floor(position) + HOUR_MS, watermark_ms)
        self._verify(TimeRange(position, end), repair=True)
        self._rolling_ms = end
        self._save()

    def _save(self) -> None:
        atomic_write_json(
            self.state_path,
            {
                "rolling_position_ms": self._rolling_ms,
                "rolling_cycle_started_ms": self._cycle_started_ms,
            },
        )


class AuditThread:
    """Runs the auditor's slices off the live path. After a slice it rests as long as the slice
    took, so the checks use at most half of a core and of the local InfluxDB's attention."""

    def __init__(self, auditor: Auditor, idle_s: float, error_delay_s: float) -> None:
        self.auditor = auditor
        self.idle_s = idle_s
        self.error_delay_s = error_delay_s
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="audit", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def died(self) -> bool:
        """Started, not asked to stop, and gone: only a bug outside its boundary does that."""
        return (
            self._thread.ident is not None
            and not self._thread.is_alive()
            and (not self._stop.is_set())
        )

    def _run(self) -> None:
        while not self._stop.is_set():
            self._stop.wait(self.run_once())

    def run_once(self) -> float:
        """One slice behind the thread's error boundary; returns the seconds to rest."""
        began = self.auditor.clock.monotonic()
        try:
            did = self.auditor.run_slice()
        except Exception as exc:  # the thread must outlive any failed check
            # Checked again later: a check that fails proves nothing, and loses nothing.
            message = f"{type(exc).__name__}: {exc}"
            if message != self.last_error:
                log.warning(
                    "a verification slice failed, retrying later: %s",
                    message,
                    exc_info=not isinstance(exc, EnergymonError),
                )
            self.last_error = message
            return self.error_delay_s
        if self.last_error is not None:
            log.info("the checks work again")
        self.last_error = None
        took = self.auditor.clock.monotonic() - began
        return took if did is not None else self.idle_s
