"""Writing batches to the destination: a refused batch is split until the refused points are
isolated; they go to the dead letters and everything else is written. Transient errors
(`InfluxUnavailableError`, `InfluxAuthError`) propagate, so the caller retries the batch later.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

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
    reasons: list[str] = field(default_factory=list)


class BatchSink:
    """Collects lines into batches of `batch_size` and writes each one as soon as it is full, so
    at most one batch is held in memory."""

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
        self._batch: list[str] = []

    def add_all(self, lines: Iterable[str]) -> None:
        for line in lines:
            self._batch.append(line)
            if len(self._batch) >= self.batch_size:
                self.flush()

    def flush(self) -> None:
        if not self._batch:
            return
        batch, self._batch = self._batch, []
        try:
            self._write(batch)
        except BaseException:
            # The caller will retry the whole range; holding on to the batch would only leak it.
            batch.clear()
            raise
        self.stats.batches += 1

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
                self.stats.reasons.append(exc.message)
                return
            # A partial write already stored the good points; writing them again is harmless
            # because a point's identity is its measurement, tags and time.
            middle = len(lines) // 2
            self._write(lines[:middle])
            self._write(lines[middle:])
            return
        self.stats.points += len(lines)
