"""Group commit: requests that arrive while a write is in flight share the next write.

Every call into the store runs on one dedicated thread, in order, so the store needs no locks and
the event loop never blocks on disk or on InfluxDB. Under load, many requests share one fsync and
one InfluxDB request, which is what keeps both throughput and tail latency in bounds.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from collector.store import DurableStore, Outcome
from collector.submission import Submission
from energymon.errors import StoreError

T = TypeVar("T")


class GroupCommitter:
    def __init__(self, store: DurableStore, max_points: int) -> None:
        self.store = store
        self.max_points = max_points
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        self._pending: deque[tuple[Submission, asyncio.Future[Outcome]]] = deque()
        self._wake = asyncio.Event()
        self._stopping = False

    async def submit(self, submission: Submission) -> Outcome:
        """Resolves once every reading of the submission is durable; raises if none can be."""
        if self._stopping:
            raise StoreError("the collector is stopping")
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._pending.append((submission, future))
        self._wake.set()
        return await future

    async def call(self, fn: Callable[[], T]) -> T:
        """Run other store work (draining, health) on the store's thread, between commits."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def run(self) -> None:
        while not (self._stopping and not self._pending):
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                await self._commit_next_group()

    async def _commit_next_group(self) -> None:
        group: list[tuple[Submission, asyncio.Future[Outcome]]] = []
        points = 0
        while self._pending and (
            not group or points + len(self._pending[0][0].readings) <= self.max_points
        ):
            item = self._pending.popleft()
            group.append(item)
            points += len(item[0].readings)
        submissions = [sub for sub, _ in group]
        try:
            outcomes = await self.call(lambda: self.store.commit(submissions))
        except Exception as exc:  # noqa: BLE001 - handed to every waiting request, none is lost
            for _, future in group:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), outcome in zip(group, outcomes, strict=True):
            if not future.done():
                future.set_result(outcome)

    async def stop(self) -> None:
        """Finish what was submitted, then release the store thread."""
        self._stopping = True
        self._wake.set()

    def shutdown_executor(self) -> None:
        self._executor.shutdown(wait=True)
