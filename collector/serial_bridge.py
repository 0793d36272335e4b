"""Feeds the collector's own serial meters into the same durable pipeline as posted readings.

The poller runs on a thread of its own; the bridge blocks it until its submission is durable,
so a reading the poller forgets is always acknowledged, exactly like a device's.
"""

from __future__ import annotations

import asyncio
import concurrent.futures

from collector.committer import GroupCommitter
from collector.submission import Submission
from energymon.errors import StoreError

# Beyond this, the store thread is stuck; the poller keeps the readings and tries again.
SUBMIT_TIMEOUT_S = 60.0


class SerialBridge:
    """The poller's sink: submits on the event loop, waits on the polling thread."""

    def __init__(
        self,
        committer: GroupCommitter,
        loop: asyncio.AbstractEventLoop,
        timeout_s: float = SUBMIT_TIMEOUT_S,
    ) -> None:
        self.committer = committer
        self.loop = loop
        self.timeout_s = timeout_s

    def __call__(self, submission: Submission) -> None:
        future = asyncio.run_coroutine_threadsafe(self.committer.submit(submission), self.loop)
        try:
            future.result(timeout=self.timeout_s)
        except concurrent.futures.TimeoutError as exc:
            future.cancel()
            raise StoreError("readings were not made durable in time") from exc
