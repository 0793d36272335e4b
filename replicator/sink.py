"""Writing a stream of points to the destination, one batch per request.

The body of each write request is produced while it is sent (chunked transfer encoding): the
sink pulls runs of points from the source's query stream, formats one run and hands it to the
socket, up to `batch_size` points per request. The destination acknowledges a request as a
whole, and only then is the batch counted. So the replicator never holds a batch: only the
source's current query chunk and one formatted run, whatever the backlog; reading the source
and writing the destination overlap because the request is sent while the query is read.

A batch the destination refuses (400 partial write, type conflict, ...) is remembered by its
segments (series and time range: a few numbers) and, once the stream is finished and its query
closed, read again from the source, held in memory — one batch, only on this slow path — and
split until the refused points are isolated; they go to the dead letters and everything else is
written. Transient errors (`InfluxUnavailableError`, `InfluxAuthError`) propagate to the caller,
which copies the whole range again later.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from energymon.clock import Clock
from energymon.errors import InfluxRejectedError, ReplicationError
from energymon.influx import InfluxClient
from replicator.deadletters import DeadLetterStore
from replicator.points import BadPoint, Run, Segment

log = logging.getLogger(__name__)

# Points formatted at once: the request body is handed to the socket in pieces of this size.
RUN_SIZE = 500

# Reads the points of the given segments again, as line protocol.
Reread = Callable[[Sequence[Segment]], Iterator[str]]


@dataclass
class WriteStats:
    points: int = 0
    batches: int = 0
    dead_letters: int = 0
    # The most points this sink held in memory at once (formatted or to be re-sent).
    peak_held_points: int = 0


@dataclass
class _Batch:
    segments: list[Segment] = field(default_factory=list)
    points: int = 0
    complete: bool = False
    next_run: Run | None = None


class BatchSink:
    def __init__(
        self,
        client: InfluxClient,
        dead_letters: DeadLetterStore,
        clock: Clock,
        *,
        batch_size: int,
        target: str,
    ) -> None:
        self.client = client
        self.dead_letters = dead_letters
        self.clock = clock
        self.batch_size = batch_size
        self.run_size = min(RUN_SIZE, batch_size)
        self.target = target
        self.stats = WriteStats()

    def write_runs(self, runs: Iterable[Run], reread: Reread) -> None:
        """Write every point of `runs`; returns once the destination acknowledged each batch
        or its refused points are dead letters."""
        refused: list[list[Segment]] = []
        source = iter(runs)
        pending = next(source, None)
        while pending is not None:
            batch = _Batch()
            body = self._body(pending, source, batch)
            try:
                self.client.write_stream(body)
            except InfluxRejectedError as exc:
                # The server answered before it read everything: finish the batch unsent, so
                # that its segments name every point of it.
                for _ in body:
                    pass
                log.info("batch of %d points refused (%s): splitting it", batch.points, exc)
                refused.append(batch.segments)
            else:
                self.stats.points += batch.points
                self.stats.batches += 1
            finally:
                body.close()
            if not batch.complete:
                raise ReplicationError(f"{self.target} answered a write it had not read whole")
            pending = batch.next_run
        # The source's stream is finished and closed: only now hold a refused batch.
        for segments in refused:
            lines = list(reread(segments))
            self._held(len(lines))
            self._write(lines)

    def _body(
        self, first: Run, source: Iterator[Run], batch: _Batch
    ) -> Generator[bytes, None, None]:
        run: Run | None = first
        room = self.batch_size
        while run is not None and room > 0:
            if len(run) > min(room, self.run_size):
                head, rest = run.split(min(room, self.run_size))
            else:
                head, rest = run, None
            segment = head.segment()
            last = batch.segments[-1] if batch.segments else None
            if last is not None and (last.measurement, last.tags) == (
                segment.measurement, segment.tags
            ):
                batch.segments[-1] = Segment(
                    last.measurement, last.tags, last.first_ms, segment.last_ms
                )
            else:
                batch.segments.append(segment)
            room -= len(head)
            lines = head.lines()
            self._held(len(head))
            if lines:
                batch.points += len(lines)
                yield ("\n".join(lines) + "\n").encode()
            run = rest if rest is not None else next(source, None)
        batch.next_run = run
        batch.complete = True

    def _held(self, points: int) -> None:
        self.stats.peak_held_points = max(self.stats.peak_held_points, points)

    def bad_point(self, point: BadPoint) -> None:
        """A point the source holds but line protocol cannot carry: set aside, never dropped."""
        reason = f"cannot serialise {point.measurement} point at {point.time_ms}: {point.reason}"
        log.warning("dead letter (%s): %s", self.target, reason)
        self.dead_letters.add(
            [point.content], target=self.target, reason=reason, now_ms=self.clock.now_ms(),
            replayable=False,
        )
        self.stats.dead_letters += 1

    def _write(self, lines: list[str]) -> None:
        try:
            self.client.write(lines)
        except InfluxRejectedError as exc:
            if len(lines) == 1:
                log.warning("dead letter (%s): %s", self.target, exc.message)
                self.dead_letters.add(
                    lines, target=self.target, reason=str(exc), now_ms=self.clock.now_ms()
                )
                self.stats.dead_letters += 1
                return
            # A partial write already stored the good points; writing them again is harmless
            # because a point's identity is its measurement, tags and time.
            middle = len(lines) // 2
            self._write(lines[:middle])
            self._write(lines[middle:])
            return
        self.stats.points += len(lines)
