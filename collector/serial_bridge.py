"""Feeds readings from the collector's own serial meters into the same durable pipeline as
readings posted over HTTP: one (device, boot) per collector start, seqs assigned by the poller,
time stamps taken on the Pi's clock (an anchor of zero)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
from collections.abc import Sequence

from collector.committer import GroupCommitter
from collector.payload import ReadingIn
from collector.serial_poll import SerialPoller
from collector.store import Submission
from energymon.errors import StoreError
from energymon.schema import Reading

# Beyond this, the store thread is stuck; the poller keeps the readings and tries again.
SUBMIT_TIMEOUT_S = 60.0


def submission_of(readings: Sequence[Reading], poller: SerialPoller) -> Submission:
    first = readings[0]
    entries = []
    for r in readings:
        problem = r.measurement.problem()
        entries.append(
            ReadingIn(
                seq=r.seq,
                uptime_ms=r.time_ms,
                sensor=r.sensor,
                measurement=r.measurement if problem is None else None,
                problem=problem,
                raw=dataclasses.asdict(r.measurement),
            )
        )
    return Submission(
        first.device, first.boot, 0, tuple(entries), poller.dropped, dict(poller.meter_errors)
    )


class SerialBridge:
    """The poller's sink: blocks the polling thread until its readings are durable."""

    def __init__(self, committer: GroupCommitter) -> None:
        self.committer = committer
        self.loop: asyncio.AbstractEventLoop | None = None
        self.poller: SerialPoller | None = None

    def __call__(self, readings: Sequence[Reading]) -> None:
        if not readings or self.loop is None or self.poller is None:
            raise StoreError("the collector is not running")
        future = asyncio.run_coroutine_threadsafe(
            self.committer.submit(submission_of(readings, self.poller)), self.loop
        )
        try:
            future.result(timeout=SUBMIT_TIMEOUT_S)
        except concurrent.futures.TimeoutError as exc:
            future.cancel()
            raise StoreError("readings were not made durable in time") from exc
