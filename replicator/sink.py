"""Writing batches to the destination.

A batch is written by a writer thread while the next one is assembled, so reading the source
and writing the destination overlap; at most one batch is being assembled and one is being
sent, whatever the backlog. A refused batch is split until the refused points are isolated;
they go to the dead letters and everything else is written. Transient errors
(`InfluxUnavailableError`, `InfluxAuthError`) propagate to the caller, which copies the whole
range again later.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from energymon.clock import Clock
from energymon.errors import InfluxRejectedError
from energymon.influx import InfluxClient
from replicator.deadletters import DeadLetterStore
from replicator.points import BadPoint

log = logging.getLogger(__name__)


@dataclass
class WriteStats:
    points: int = 0
    batches: int = 0
    dead_letters: int = 0


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
        self.target = target
        self.stats = WriteStats()
        self._lock = threading.Lock()
        self._batch: list[str] = []
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"write-{target}")
        self._sending: Future[None] | None = None

    def add_all(self, lines: Iterable[str]) -> None:
        try:
            for line in lines:
                self._batch.append(line)
                if len(self._batch) >= self.batch_size:
                    self._send()
        except BaseException:
            # The caller copies the whole range again; keep nothing of this attempt.
            self._batch = []
            raise

    def drain(self) -> None:
        """Send what is assembled and wait until everything sent was acknowledged."""
        self._send()
        self._wait()

    def close(self) -> None:
        self._writer.shutdown(wait=True)

    def bad_point(self, point: BadPoint) -> None:
        """A point the source holds but line protocol cannot carry: set aside, never dropped."""
        reason = f"cannot serialise {point.measurement} point at {point.time_ms}: {point.reason}"
        log.warning("dead letter (%s): %s", self.target, reason)
        self.dead_letters.add(
            [point.content], target=self.target, reason=reason, now_ms=self.clock.now_ms(),
            replayable=False,
        )
        with self._lock:
            self.stats.dead_letters += 1

    def _send(self) -> None:
        if not self._batch:
            return
        batch, self._batch = self._batch, []
        # The previous batch must be acknowledged first: this bounds memory to two batches and
        # raises its error, if any, before more work is done.
        self._wait()
        self._sending = self._writer.submit(self._write_batch, batch)

    def _wait(self) -> None:
        sending, self._sending = self._sending, None
        if sending is not None:
            sending.result()

    def _write_batch(self, lines: list[str]) -> None:
        self._write(lines)
        with self._lock:
            self.stats.batches += 1

    def _write(self, lines: list[str]) -> None:
        try:
            self.client.write(lines)
        except InfluxRejectedError as exc:
            if len(lines) == 1:
                log.warning("dead letter (%s): %s", self.target, exc.message)
                self.dead_letters.add(
                    lines, target=self.target, reason=str(exc), now_ms=self.clock.now_ms()
                )
                with self._lock:
                    self.stats.dead_letters += 1
                return
            # A partial write already stored the good points; writing them again is harmless
            # because a point's identity is its measurement, tags and time.
            middle = len(lines) // 2
            self._write(lines[:middle])
            self._write(lines[middle:])
            return
        with self._lock:
            self.stats.points += len(lines)
