"""Writing a stream of points to the destination, one batch per request.

The body of each write request is produced while it is sent (chunked transfer encoding): the
sink pulls runs of points from the source's query stream, formats one run and hands it to the
socket, up to `batch_size` points per request. The destination acknowledges a request as a
whole, and only then is the batch counted. So the replicator never holds a batch: only the
source's current query chunk and one formatted run, whatever the backlog; reading the source
and writing the destination overlap because the request is sent while the query is read.
InfluxDB reads a body whole before it stores any of it, so the next batch's request is sent
while the destination stores the previous one: two requests on the sink's own threads, one
sending, one awaiting its answer, which is taken before a third starts.

A batch the destination refuses (400 partial write, type conflict, ...) is remembered by its
segments (series and time range: a few numbers) and, once the stream is finished and its query
closed, read again from the source, held in memory — one batch, only on this slow path — and
split until the refused points are isolated; they go to the dead letters and everything else is
written. Transient errors (`InfluxUnavailableError`, `InfluxAuthError`) propagate to the caller,
which copies the whole range again later.

A batch that keeps failing without an answer (a reset, a deadline passed, 413: a proxy's body
limit, a link too slow for the batch) is split: from the second such failure in a row each one
halves the batch size, down to a single point. The size is tried larger again (doubled, up to
the configured one) only after `REGROW_AFTER_S` of the monotonic clock: a failing write fails
its whole step, so growing back quickly into the same limit would stall the copy.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field

from energymon.clock import Clock
from energymon.errors import InfluxRejectedError, InfluxUnavailableError, ReplicationError
from energymon.influx import InfluxClient
from replicator.deadletters import DeadLetterStore
from replicator.points import Run, Segment
from replicator.rows import BadPoint

log = logging.getLogger(__name__)

# Points formatted at once: the request body is handed to the socket in pieces of this size.
RUN_SIZE = 500
# How long a reduced batch size is kept before a larger one is tried again.
REGROW_AFTER_S = 3600.0

# Reads the points of the given segments again, as line protocol.
Reread = Callable[[Sequence[Segment]], Iterator[str]]


@dataclass
class WriteStats:
    points: int = 0
    batches: int = 0
    dead_letters: int = 0
    # The most points this sink held in memory at once (formatted or to be re-sent).
    peak_held_points: int = 0
    # The batch size in use: below the configured one after transport failures.
    batch_limit: int = 0


@dataclass
class _Batch:
    segments: list[Segment] = field(default_factory=list)
    points: int = 0
    complete: bool = False
    next_run: Run | None = None


@dataclass
class _Write:
    """A batch's write request, running on the sink's request thread."""

    batch: _Batch
    body: Generator[bytes, None, None]
    future: Future[None]
    produced: threading.Event

    def finished(self) -> None:
        """Wait until the request is over and its body no longer runs."""
        wait([self.future])
        self.body.close()


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
        self.stats = WriteStats(batch_limit=batch_size)
        self._transport_failures = 0
        self._regrow_at = 0.0
        # Two requests at most: one sending its body, the one before waiting for its answer.
        # The threads start with the first write.
        self._requests = ThreadPoolExecutor(2, thread_name_prefix=f"write-{target}")

    def close(self) -> None:
        """Let the request threads end; the sink writes nothing after this."""
        self._requests.shutdown()

    def write_runs(self, runs: Iterable[Run], reread: Reread) -> None:
        """Write every point of `runs`; returns once the destination acknowledged each batch
        or its refused points are dead letters."""
        refused: list[list[Segment]] = []
        source = iter(runs)
        pending = next(source, None)
        in_flight: _Write | None = None
        try:
            while pending is not None:
                write = self._start(pending, source)
                write.produced.wait()
                if write.batch.complete:
                    # The whole body is sent: while the destination stores it, the next batch
                    # is read and sent; only then is this one's answer awaited.
                    previous, in_flight = in_flight, write
                    if previous is not None:
                        self._settle(previous, refused)
                else:
                    # The request ended before it read the whole body: a refusal or a failure.
                    self._settle(write, refused)
                    self._check_whole(write)
                pending = write.batch.next_run
            if in_flight is not None:
                last, in_flight = in_flight, None
                self._settle(last, refused)
        finally:
            if in_flight is not None:
                # Leaving on an error: the other request's outcome changes nothing (the whole
                # range is copied again), but its thread must be done with the source.
                in_flight.finished()
        # The source's stream is finished and closed: only now hold a refused batch.
        for segments in refused:
            lines = list(reread(segments))
            self._held(len(lines))
            self._write(lines)

    def _start(self, first: Run, source: Iterator[Run]) -> _Write:
        """A write request on the sink's own thread, its body produced there as it is sent."""
        batch = _Batch()
        produced = threading.Event()
        body = self._body(first, source, batch, produced)
        future = self._requests.submit(self.client.write_stream, body)
        future.add_done_callback(lambda _: produced.set())
        return _Write(batch, body, future, produced)

    def _check_whole(self, write: _Write) -> None:
        if not write.batch.complete:
            raise ReplicationError(f"{self.target} answered a write it had not read whole")

    def _settle(self, write: _Write, refused: list[list[Segment]]) -> None:
        """Wait for a request's answer and account for it; raises what makes the copy fail."""
        try:
            write.future.result()
        except InfluxUnavailableError as exc:
            if exc.transport:
                self._transport_failure(write.batch.points)
            raise
        except InfluxRejectedError as exc:
            # The server answered before it read everything: finish the batch unsent, so
            # that its segments name every point of it.
            for _ in write.body:
                pass
            log.info("batch of %d points refused (%s): splitting it", write.batch.points, exc)
            refused.append(write.batch.segments)
        else:
            self.stats.points += write.batch.points
            self.stats.batches += 1
            self._acknowledged()
        finally:
            write.body.close()

    def _body(
        self, first: Run, source: Iterator[Run], batch: _Batch, produced: threading.Event
    ) -> Generator[bytes, None, None]:
        run: Run | None = first
        room = self.stats.batch_limit
        while run is not None and room > 0:
            if len(run) > min(room, self.run_size):
                head, rest = run.split(min(room, self.run_size))
            else:
                head, rest = run, None
            segment = head.segment()
            last = batch.segments[-1] if batch.segments else None
            if last is not None and (last.measurement, last.tags) == (
                segment.measurement,
                segment.tags,
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
        produced.set()

    def _transport_failure(self, points: int) -> None:
        self._transport_failures += 1
        if self._transport_failures >= 2 and self.stats.batch_limit > 1:
            self.stats.batch_limit = max(1, min(self.stats.batch_limit, points) // 2)
            self._regrow_at = self.clock.monotonic() + REGROW_AFTER_S
            log.warning(
                "writes to %s keep failing without an answer: batches of %d points from now on",
                self.target, self.stats.batch_limit,
            )  # fmt: skip

    def _acknowledged(self) -> None:
        self._transport_failures = 0
        if self.stats.batch_limit < self.batch_size and self.clock.monotonic() >= self._regrow_at:
            self.stats.batch_limit = min(self.batch_size, self.stats.batch_limit * 2)
            self._regrow_at = self.clock.monotonic() + REGROW_AFTER_S

    def _held(self, points: int) -> None:
        self.stats.peak_held_points = max(self.stats.peak_held_points, points)

    def bad_point(self, point: BadPoint) -> None:
        """A point the source holds but line protocol cannot carry: set aside, never dropped."""
        reason = f"cannot serialise {point.measurement} point at {point.time_ms}: {point.reason}"
        log.warning("dead letter (%s): %s", self.target, reason)
        self.dead_letters.add(
            [point.content],
            target=self.target,
            reason=reason,
            now_ms=self.clock.now_ms(),
            replayable=False,
        )
        self.stats.dead_letters += 1

    def _write(self, lines: list[str]) -> None:
        """Write `lines`, halving a refused group until each refused point stands alone; a
        stack of groups, never recursion."""
        pending = [lines]
        while pending:
            group = pending.pop()
            try:
                self.client.write(group)
            except InfluxRejectedError as exc:
                if len(group) == 1:
                    log.warning("dead letter (%s): %s", self.target, exc.message)
                    self.dead_letters.add(
                        group, target=self.target, reason=str(exc), now_ms=self.clock.now_ms()
                    )
                    self.stats.dead_letters += 1
                    continue
                # A partial write already stored the good points; writing them again is
                # harmless because a point's identity is its measurement, tags and time.
                middle = len(group) // 2
                pending += [group[middle:], group[:middle]]
                continue
            self.stats.points += len(group)
