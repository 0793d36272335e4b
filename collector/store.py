"""Making readings durable: the local InfluxDB when it answers, the spool when it does not.

`commit()` takes several submissions at once (group commit): anchors new boots, drops
duplicates, turns readings into points, writes them in one request, and records what became
durable. Only one thread calls into a store, so no locking is needed here.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field

from collector.ledger import Ledger
from collector.spool import Spool, SpoolRow
from collector.statedb import StateDB
from collector.submission import Key, Submission
from energymon import journal
from energymon.clock import Clock
from energymon.errors import InfluxAuthError, InfluxRejectedError, InfluxUnavailableError
from energymon.influx import InfluxClient
from energymon.schema import QuarantinedReading, Reading

log = logging.getLogger(__name__)

# A time stamp further ahead than this means the device's uptime disagrees with its anchor.
FUTURE_TOLERANCE_MS = 24 * 3600 * 1000


@dataclass(frozen=True, slots=True)
class Outcome:
    ack: int | None
    accepted: int
    duplicates: int
    rejected: tuple[tuple[int, str], ...]


@dataclass(slots=True)
class DeviceStatus:
    boot: int
    last_seq: int | None = None
    last_reading_ms: int | None = None
    last_contact_ms: int = 0
    dropped: int = 0
    meter_errors: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DrainResult:
    written_points: int
    parked_points: int
    remaining_points: int
    error: str | None = None


@dataclass(slots=True)
class _PointBatch:
    """The points of one group commit, and which seqs they make durable."""

    lines: list[str] = field(default_factory=list)
    times: list[int] = field(default_factory=list)
    marks: dict[Key, list[int]] = field(default_factory=lambda: defaultdict(list))
    claimed: set[tuple[str, int, int]] = field(default_factory=set)


@dataclass(slots=True)
class Counters:
    accepted: int = 0
    duplicates: int = 0
    quarantined: int = 0
    spooled_points: int = 0


class DurableStore:
    def __init__(
        self,
        db: StateDB,
        influx: InfluxClient,
        *,
        home: str,
        spool_max_bytes: int,
        clock: Clock,
        write_timeout_s: float,
    ) -> None:
        self.db = db
        self.influx = influx
        self.home = home
        self.clock = clock
        self.write_timeout_s = write_timeout_s
        self.ledger = Ledger(db)
        self.spool = Spool(db, spool_max_bytes)
        self.devices: dict[str, DeviceStatus] = {}
        self.counters = Counters()
        self.influx_reachable: bool | None = None

    def commit(self, submissions: list[Submission]) -> list[Outcome]:
        """Make every reading of every submission durable, or raise and make none of them so."""
        now_ms = self.clock.now_ms()
        new_anchors: dict[Key, int] = {}
        for sub in submissions:
            if self.ledger.anchor(sub.key) is None:
                new_anchors.setdefault(sub.key, sub.anchor_ms)
        if new_anchors:
            self.ledger.add_anchors(new_anchors)

        batch = _PointBatch()
        outcomes = [self._add_points(sub, now_ms, batch) for sub in submissions]
        if batch.lines:
            body = "\n".join(batch.lines).encode("utf-8")
            self._write_durably(body, len(batch.lines), min(batch.times), max(batch.times))
            self.ledger.mark_seen(batch.marks)
        self._account(submissions, outcomes, now_ms)
        return outcomes

    def _add_points(self, sub: Submission, now_ms: int, batch: _PointBatch) -> Outcome:
        anchor = self.ledger.anchor(sub.key)
        assert anchor is not None  # every submission's anchor exists before this runs
        accepted = duplicates = 0
        rejected: list[tuple[int, str]] = []
        taken_times: set[tuple[str, int]] = set()
        for r in sub.readings:
            claim = (sub.device, sub.boot, r.seq)
            if self.ledger.is_seen(sub.key, r.seq) or claim in batch.claimed:
                duplicates += 1
                continue
            batch.claimed.add(claim)
            time_ms = anchor + r.offset_ms
            problem = r.problem
            if problem is None and time_ms > now_ms + FUTURE_TOLERANCE_MS:
                problem = "time stamp lies in the future: device uptime disagrees with its anchor"
            if problem is None and (r.sensor, r.offset_ms) in taken_times:
                problem = "another reading of this sensor has the same uptime_ms"
            if problem is None and r.measurement is not None:
                reading = Reading(sub.device, r.sensor, sub.boot, r.seq, time_ms, r.measurement)
                batch.lines.append(reading.to_line(self.home))
                taken_times.add((r.sensor, r.offset_ms))
                accepted += 1
            else:
                reason = problem or "not a valid measurement"
                payload = json.dumps(r.raw, sort_keys=True, default=str)
                quarantined = QuarantinedReading(
                    sub.device, r.sensor, sub.boot, r.seq, time_ms, reason, payload
                )
                batch.lines.append(quarantined.to_line(self.home))
                rejected.append((r.seq, reason))
            batch.times.append(time_ms)
            batch.marks[sub.key].append(r.seq)
        return Outcome(sub.highest_seq, accepted, duplicates, tuple(rejected))

    def write_points(self, lines: list[str], time_ms: int) -> None:
        """Make points of the collector's own (health) durable, like readings."""
        self._write_durably("\n".join(lines).encode("utf-8"), len(lines), time_ms, time_ms)

    def _write_durably(self, body: bytes, points: int, min_time_ms: int, max_time_ms: int) -> None:
        now_ms = self.clock.now_ms()
        if self.spool.empty:
            with self.db.transaction() as conn:
                journal.record(
                    conn,
                    recorded_ms=now_ms,
                    min_time_ms=min_time_ms,
                    max_time_ms=max_time_ms,
                    points=points,
                )
            try:
                self.influx.write(body, timeout_s=self.write_timeout_s)
            except (InfluxUnavailableError, InfluxAuthError) as exc:
                self._set_reachable(False, str(exc))
            except InfluxRejectedError as exc:
                self._park(body, points, exc.message)
                return
            else:
                self._set_reachable(True)
                return
        self.spool.append(
            body, points=points, min_time_ms=min_time_ms, max_time_ms=max_time_ms, now_ms=now_ms
        )
        self.counters.spooled_points += points

    def drain_once(self, max_points: int) -> DrainResult:
        """Move the oldest spooled batches into InfluxDB, oldest first."""
        rows = self.spool.oldest(max_points)
        if not rows:
            return DrainResult(0, 0, 0)
        try:
            written = self._write_rows(rows)
        except (InfluxUnavailableError, InfluxAuthError) as exc:
            self._set_reachable(False, str(exc))
            return DrainResult(0, 0, self.spool.depth_points, str(exc))
        except InfluxRejectedError:
            # Find the refused rows one by one, so the others still flow.
            written = parked = 0
            for row in rows:
                try:
                    written += self._write_rows([row])
                except InfluxRejectedError as exc:
                    self._park(row.body, row.points, exc.message)
                    self.spool.remove([row])
                    parked += row.points
            self._set_reachable(True)
            return DrainResult(written, parked, self.spool.depth_points)
        self._set_reachable(True)
        if self.spool.empty:
            log.info("spool drained: every acknowledged reading is in InfluxDB")
        return DrainResult(written, 0, self.spool.depth_points)

    def _write_rows(self, rows: list[SpoolRow]) -> int:
        points = sum(r.points for r in rows)
        with self.db.transaction() as conn:
            journal.record(
                conn,
                recorded_ms=self.clock.now_ms(),
                min_time_ms=min(r.min_time_ms for r in rows),
                max_time_ms=max(r.max_time_ms for r in rows),
                points=points,
            )
        self.influx.write(b"\n".join(r.body for r in rows), timeout_s=self.write_timeout_s)
        self.spool.remove(rows)
        return points

    def _park(self, body: bytes, points: int, reason: str) -> None:
        self.spool.park(body, points=points, reason=reason, now_ms=self.clock.now_ms())
        log.error(
            "InfluxDB refused %d points for good; parked them for an operator: %s", points, reason
        )

    def _set_reachable(self, reachable: bool, why: str = "") -> None:
        if reachable != self.influx_reachable:
            if reachable:
                log.info("InfluxDB at %s is reachable", self.influx.url)
            else:
                log.warning(
                    "InfluxDB at %s is unavailable, spooling readings: %s", self.influx.url, why
                )
        self.influx_reachable = reachable

    def _account(self, submissions: list[Submission], outcomes: list[Outcome], now_ms: int) -> None:
        for sub, outcome in zip(submissions, outcomes, strict=True):
            self.counters.accepted += outcome.accepted
            self.counters.duplicates += outcome.duplicates
            self.counters.quarantined += len(outcome.rejected)
            status = self.devices.get(sub.device)
            if status is None or status.boot != sub.boot:
                if status is not None and sub.boot < status.boot:
                    continue  # a replay of an older boot says nothing about the device now
                if status is None or sub.boot > status.boot:
                    log.info("device %s: boot %d", sub.device, sub.boot)
                status = self.devices[sub.device] = DeviceStatus(sub.boot)
            status.last_contact_ms = now_ms
            highest = self.ledger.highest_seen(sub.key)
            if highest is not None and highest != status.last_seq:
                status.last_seq = highest
                anchor = self.ledger.anchor(sub.key)
                last = max((r.offset_ms for r in sub.readings), default=None)
                if anchor is not None and last is not None:
                    status.last_reading_ms = anchor + last
            if sub.dropped is not None:
                status.dropped = sub.dropped
            if sub.meter_errors:
                status.meter_errors = dict(sub.meter_errors)

