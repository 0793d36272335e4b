"""Making readings durable: the local InfluxDB when it answers, the spool when it does not.

A group commit takes several submissions at once and runs in three stages, so that the group
committer can overlap them: `prepare` (anchors new boots, drops duplicates, turns readings into
points, then stores the new anchors and the journal entry in one fsynced transaction), `send`
(the points to InfluxDB, from the event loop; `write` is the same from a thread), and `finish`
(spools or parks what InfluxDB did not take, marks what became durable). `commit` runs the three
in a row. `prepare` and `finish` run on the store's one thread; `send` touches nothing of the
store's.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from operator import attrgetter

from collector.ledger import Ledger, LedgerRows
from collector.lives import Life, LifeKey
from collector.spool import Spool, SpoolRow
from collector.statedb import StateDB
from collector.submission import Candidate, ResetReport, Submission
from energymon import journal
from energymon.clock import Clock
from energymon.errors import (
    EnergymonError,
    InfluxAuthError,
    InfluxError,
    InfluxRejectedError,
    InfluxUnavailableError,
    StoreError,
)
from energymon.influx import InfluxClient
from energymon.schema import QuarantinedReading, reading_series, validated_reading_line

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Outcome:
    ack: int | None
    accepted: int
    duplicates: int
    rejected: tuple[tuple[int, str], ...]


@dataclass(slots=True)
class DeviceStatus:
    boot: int
    life: LifeKey
    last_seq: int | None = None
    last_reading_ms: int | None = None
    last_contact_ms: int = 0
    dropped: int = 0
    meter_errors: dict[str, int] = field(default_factory=dict)
    reset: ResetReport | None = None


@dataclass(frozen=True, slots=True)
class DrainResult:
    written_points: int
    parked_points: int
    remaining_points: int
    error: str | None = None


Claim = tuple[LifeKey, int]


@dataclass(slots=True)
class _PointBatch:
    """The points of one group commit, and which seqs they make durable."""

    lines: list[str] = field(default_factory=list)
    times: list[int] = field(default_factory=list)
    marks: dict[LifeKey, list[Candidate]] = field(default_factory=lambda: defaultdict(list))
    claimed: set[Claim] = field(default_factory=set)
    # Counted as duplicates because an earlier group still in flight claimed them: (submission
    # index, claim). If that group fails, these were not made durable after all.
    borrowed: list[tuple[int, Claim]] = field(default_factory=list)
    # Per submission: its life, and the latest time it placed a reading at.
    lives: list[Life] = field(default_factory=list)
    latest: list[int | None] = field(default_factory=list)


@dataclass(slots=True)
class PreparedGroup:
    """A group commit between its stages."""

    submissions: list[Submission]
    outcomes: list[Outcome]
    batch: _PointBatch
    body: bytes
    # True when the points wait for the write stage; False when there are none, or they
    # already went to the spool.
    to_write: bool

    @property
    def points(self) -> int:
        return len(self.batch.lines)


@dataclass(slots=True)
class Counters:
    accepted: int = 0
    duplicates: int = 0
    quarantined: int = 0
    spooled_points: int = 0
    # Groups prepared: requests / groups is the mean group size, which says whether group
    # commit is working.
    group_commits: int = 0


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
        # Readings of groups prepared but not finished: a later group must not store them again.
        self._in_flight: set[Claim] = set()
        # Quarantined points are stamped by this clock, which never repeats a millisecond, so
        # no quarantined reading can replace another, whatever their own times.
        self._quarantine_ms = int(db.meta("quarantine_clock") or 0)

    def commit(self, submissions: list[Submission]) -> list[Outcome]:
        """Make every reading of every submission durable, or raise; the stages in a row."""
        prepared = self.prepare(submissions)
        error = self.write(prepared)
        results = self.finish(prepared, error)
        for result in results:
            if isinstance(result, EnergymonError):
                raise result
        return [r for r in results if isinstance(r, Outcome)]

    def prepare(self, submissions: list[Submission]) -> PreparedGroup:
        """Points placed, formatted and claimed, and what they depend on made durable: the
        lives and segments that place them and the journal entry of their range (one fsync),
        or, while InfluxDB is behind the spool, the points themselves in the spool."""
        now_ms = self.clock.now_ms()
        batch = _PointBatch()
        outcomes = [self._add_points(i, sub, now_ms, batch) for i, sub in enumerate(submissions)]
        body = "\n".join(batch.lines).encode("utf-8")
        rows = self.ledger.unstored()
        to_write = bool(batch.lines) and self.spool.empty
        if rows or batch.lines:
            try:
                self._make_durable(rows, batch if to_write else None, now_ms)
                if batch.lines and not to_write:
                    # Queued behind what the spool holds, so InfluxDB gets them in order.
                    self._spool(body, len(batch.lines), min(batch.times), max(batch.times), now_ms)
            except BaseException:
                self._unprepare(batch, rows)
                raise
        self._in_flight |= batch.claimed
        self.counters.group_commits += 1
        return PreparedGroup(submissions, outcomes, batch, body, to_write)

    def _make_durable(self, rows: LedgerRows, batch: _PointBatch | None, now_ms: int) -> None:
        """The anchors the points depend on, and the journal entry of the range of a `batch`
        to be sent, in one fsync before the points go anywhere: on the store's own thread, as
        the last step of preparing (a thread of its own cost more in waiting for the
        interpreter lock than it overlapped)."""
        with self.db.transaction() as conn:
            self.ledger.write_rows(conn, rows)
            self.db.set_meta(conn, "quarantine_clock", self._quarantine_ms)
            if batch is not None:
                journal.record(
                    conn,
                    recorded_ms=now_ms,
                    min_time_ms=min(batch.times),
                    max_time_ms=max(batch.times),
                    points=len(batch.lines),
                )

    def write(self, prepared: PreparedGroup) -> InfluxError | None:
        """Send a prepared group's points to InfluxDB; the error InfluxDB answered with, or
        None. Touches nothing of the store's."""
        if not prepared.to_write:
            return None
        try:
            self.influx.write(prepared.body, timeout_s=self.write_timeout_s)
        except InfluxError as exc:
            return exc
        return None

    async def send(self, prepared: PreparedGroup) -> InfluxError | None:
        """`write` from the event loop."""
        if not prepared.to_write:
            return None
        try:
            await self.influx.write_async(prepared.body, timeout_s=self.write_timeout_s)
        except InfluxError as exc:
            return exc
        return None

    def finish(
        self, prepared: PreparedGroup, error: InfluxError | None
    ) -> list[Outcome | EnergymonError]:
        """Spool or park what InfluxDB did not take, then mark what became durable. Per
        submission, its outcome, or the error that kept its readings from being durable."""
        batch = prepared.batch
        self._in_flight -= batch.claimed
        if prepared.to_write:
            try:
                self._settle_write(prepared, error)
            except BaseException:
                self._release(batch)
                raise
        self.ledger.mark_seen(batch.marks)
        results: list[Outcome | EnergymonError] = list(prepared.outcomes)
        for index, ((device, boot, _), seq) in batch.borrowed:
            if not self.ledger.is_seen(batch.lives[index], seq):
                results[index] = StoreError(
                    f"reading {seq} of {device} boot {boot} was not stored by an earlier "
                    "request that carried it too; send it again"
                )
        self._account(prepared, results, self.clock.now_ms())
        return results

    def abandon(self, prepared: PreparedGroup) -> None:
        """A group that failed between its stages: its claims and pending readings no longer
        hold anything (what places them was made durable when it was prepared)."""
        self._in_flight -= prepared.batch.claimed
        self._release(prepared.batch)

    def _unprepare(self, batch: _PointBatch, rows: LedgerRows) -> None:
        self._release(batch)
        self.ledger.requeue(rows)

    def _release(self, batch: _PointBatch) -> None:
        for key, readings in batch.marks.items():
            self.ledger.release(self.ledger.life(key), (r.seq for r in readings))

    def _settle_write(self, prepared: PreparedGroup, error: InfluxError | None) -> None:
        batch = prepared.batch
        if error is None:
            self._set_reachable(True)
        elif isinstance(error, InfluxRejectedError):
            self._set_reachable(True)
            self._park(prepared.body, prepared.points, error.message)
        else:
            self._set_reachable(False, str(error))
            now_ms = self.clock.now_ms()
            self._spool(prepared.body, prepared.points, min(batch.times), max(batch.times), now_ms)

    def _add_points(self, index: int, sub: Submission, now_ms: int, batch: _PointBatch) -> Outcome:
        life = self.ledger.life_of(
            sub.device,
            sub.boot,
            sub.boot_nonce,
            sub.anchor_ms,
            sub.uptime_ms,
            readings=sub.readings,
        )
        if self.ledger.is_current(life):
            self.ledger.reanchor_if_wrong(life, sub.anchor_ms, sub.uptime_ms)
        batch.lives.append(life)
        readings = sorted(sub.readings, key=_BY_SEQ)
        run_latest = self._add_run(life, sub, readings, batch)
        if run_latest is not None:
            batch.latest.append(run_latest)
            return Outcome(sub.highest_seq, len(readings), 0, ())
        accepted = duplicates = 0
        rejected: list[tuple[int, str]] = []
        latest: int | None = None
        # This loop runs for every reading: what it uses is looked up once per submission.
        key, claimed, in_flight, is_seen, place = (
            life.key, batch.claimed, self._in_flight, self.ledger.is_seen, self.ledger.place
        )  # fmt: skip
        lines, times = batch.lines, batch.times
        series_of: dict[str, str] = {}
        for r in readings:
            claim = (key, r.seq)
            if is_seen(life, r.seq) or claim in claimed:
                duplicates += 1
                continue
            if claim in in_flight:
                batch.borrowed.append((index, claim))
                duplicates += 1
                continue
            claimed.add(claim)
            batch.marks[key].append(r)
            problem = r.problem
            placed: int | None = None
            if problem is None:
                where = place(life, r.seq, r.offset_ms)
                if isinstance(where, str):
                    problem = where
                else:
                    placed = where
            if problem is None and placed is not None and r.values is not None:
                series = series_of.get(r.sensor)
                if series is None:
                    series = series_of[r.sensor] = reading_series(self.home, sub.device, r.sensor)
                lines.append(validated_reading_line(series, r.values, sub.boot, r.seq, placed))
                times.append(placed)
                latest = placed if latest is None else max(latest, placed)
                accepted += 1
                continue
            reason = problem or "not a valid measurement"
            self._quarantine_ms = max(now_ms, self._quarantine_ms + 1)
            quarantined = QuarantinedReading(
                sub.device,
                r.sensor,
                sub.boot,
                r.seq,
                self._quarantine_ms,
                reason,
                json.dumps(r.raw, sort_keys=True, default=str),
                placed,
            )
            batch.lines.append(quarantined.to_line(self.home))
            batch.times.append(self._quarantine_ms)
            rejected.append((r.seq, reason))
        batch.latest.append(latest)
        return Outcome(sub.highest_seq, accepted, duplicates, tuple(rejected))

    def _add_run(
        self, life: Life, sub: Submission, readings: list[Candidate], batch: _PointBatch
    ) -> int | None:
        """Every reading of a submission placed at once (`Ledger.place_run`): the latest time
        placed; None, with nothing changed, unless all are valid and new."""
        values = [r.values for r in readings if r.problem is None and r.values is not None]
        if not readings or len(values) != len(readings):
            return None
        key = life.key
        seqs = [r.seq for r in readings]
        claims = [(key, seq) for seq in seqs]
        if not (batch.claimed.isdisjoint(claims) and self._in_flight.isdisjoint(claims)):
            return None
        times = self.ledger.place_run(life, seqs, [r.offset_ms for r in readings])
        if times is None:
            return None
        batch.claimed.update(claims)
        batch.marks[key].extend(readings)
        series_of = {
            sensor: reading_series(self.home, sub.device, sensor)
            for sensor in {r.sensor for r in readings}
        }
        boot = sub.boot
        batch.lines.extend(
            [
                validated_reading_line(series_of[r.sensor], v, boot, r.seq, t)
                for r, v, t in zip(readings, values, times, strict=True)
            ]
        )
        batch.times.extend(times)
        return times[-1]

    def write_points(self, lines: list[str], time_ms: int) -> None:
        """Make points of the collector's own (health) durable, like readings."""
        body = "\n".join(lines).encode("utf-8")
        now_ms = self.clock.now_ms()
        if self.spool.empty:
            with self.db.transaction() as conn:
                journal.record(
                    conn,
                    recorded_ms=now_ms,
                    min_time_ms=time_ms,
                    max_time_ms=time_ms,
                    points=len(lines),
                )
            try:
                self.influx.write(body, timeout_s=self.write_timeout_s)
            except (InfluxUnavailableError, InfluxAuthError) as exc:
                self._set_reachable(False, str(exc))
            except InfluxRejectedError as exc:
                self._park(body, len(lines), exc.message)
                return
            else:
                self._set_reachable(True)
                return
        self._spool(body, len(lines), time_ms, time_ms, now_ms)

    def _spool(
        self, body: bytes, points: int, min_time_ms: int, max_time_ms: int, now_ms: int
    ) -> None:
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
            self.spool.log_drained()
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

    def _account(
        self, prepared: PreparedGroup, results: list[Outcome | EnergymonError], now_ms: int
    ) -> None:
        batch = prepared.batch
        for i, (sub, outcome) in enumerate(zip(prepared.submissions, results, strict=True)):
            if not isinstance(outcome, Outcome):
                continue
            self.counters.accepted += outcome.accepted
            self.counters.duplicates += outcome.duplicates
            self.counters.quarantined += len(outcome.rejected)
            life = batch.lives[i]
            if not self.ledger.is_current(life):
                continue  # a replay of an older boot says nothing about the device now
            status = self.devices.get(sub.device)
            if status is None or status.life != life.key:
                log.info("device %s: boot %d", sub.device, sub.boot)
                status = self.devices[sub.device] = DeviceStatus(sub.boot, life.key)
            status.last_contact_ms = now_ms
            status.last_seq = life.runs.highest
            latest = batch.latest[i]
            if latest is not None and (
                status.last_reading_ms is None or latest > status.last_reading_ms
            ):
                status.last_reading_ms = latest
            if sub.dropped is not None:
                status.dropped = sub.dropped
            if sub.meter_errors:
                status.meter_errors = dict(sub.meter_errors)
            if sub.reset is not None:
                status.reset = sub.reset


_BY_SEQ = attrgetter("seq")
