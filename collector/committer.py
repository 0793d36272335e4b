"""Group commit: requests that arrive while a write is in flight share the next write.

Every call into the store's state runs on one dedicated thread, in order, so the store needs no
locks and the event loop never blocks on disk. Preparing a group ends with its one fsync; its
InfluxDB request is then sent from the event loop, which waits for no thread to send it or to
read its answer, up to `WRITES_IN_FLIGHT` of them at once, so the next group is prepared while
earlier ones wait for InfluxDB: the stages overlap.
Groups finish in the order they were prepared, so a reading that a later group counted as a
duplicate of an earlier one is acknowledged only once the earlier one made it durable. Under
load, many requests share one fsync and one InfluxDB request, which keeps both throughput and
tail latency in bounds.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from collector.store import DurableStore, Outcome, PreparedGroup
from collector.submission import Submission
from energymon.errors import EnergymonError, StoreError

T = TypeVar("T")

# Enough to prepare one group while another waits for InfluxDB; more only adds memory.
WRITES_IN_FLIGHT = 2
# The collector's interpreter switch interval: a thread that hands a group on to another
# gets the lock to it in a fraction of the interpreter's default, which every request pays at
# each of its hand-offs when the threads are busy.
GIL_SWITCH_INTERVAL_S = 0.0005

Waiter = tuple[Submission, "asyncio.Future[Outcome]"]


class GroupCommitter:
    def __init__(self, store: DurableStore, max_points: int) -> None:
        self.store = store
        self.max_points = max_points
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        self._slots = asyncio.Semaphore(WRITES_IN_FLIGHT)
        self._pending: deque[Waiter] = deque()
        self._wake = asyncio.Event()
        self._stopping = False
        # The last group's write-and-finish: each group's finish waits for the one before.
        self._last: asyncio.Task[None] | None = None

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
        """Prepare groups one after another; write up to `WRITES_IN_FLIGHT` of them at once."""
        while True:
            if not self._pending:
                if self._stopping:
                    break
                await self._wake.wait()
                self._wake.clear()
                continue
            group = self._next_group()
            prepared = await self._prepare(group)
            if prepared is None:
                continue
            await self._slots.acquire()
            self._last = asyncio.create_task(self._write_and_finish(group, prepared, self._last))
        if self._last is not None:
            await self._last

    def _next_group(self) -> list[Waiter]:
        group: list[Waiter] = []
        points = 0
        while self._pending and (
            not group or points + len(self._pending[0][0].readings) <= self.max_points
        ):
            item = self._pending.popleft()
            group.append(item)
            points += len(item[0].readings)
        return group

    async def _prepare(self, group: list[Waiter]) -> PreparedGroup | None:
        submissions = [sub for sub, _ in group]
        try:
            prepared = await self.call(lambda: self.store.prepare(submissions))
        except Exception as exc:  # noqa: BLE001 - handed to every waiting request, none is lost
            _fail(group, exc)
            return None
        return prepared

    async def _write_and_finish(
        self, group: list[Waiter], prepared: PreparedGroup, previous: asyncio.Task[None] | None
    ) -> None:
        try:
            try:
                error = await self.store.send(prepared)
            finally:
                if previous is not None:
                    await previous
            results = await self.call(lambda: self.store.finish(prepared, error))
        except Exception as exc:  # noqa: BLE001 - handed to every waiting request, none is lost
            await self.call(lambda: self.store.abandon(prepared))
            _fail(group, exc)
        else:
            for (_, future), result in zip(group, results, strict=True):
                if future.done():
                    continue
                if isinstance(result, EnergymonError):
                    future.set_exception(result)
                else:
                    future.set_result(result)
        finally:
            self._slots.release()

    async def stop(self) -> None:
        """Finish what was submitted, then release the store thread."""
        self._stopping = True
        self._wake.set()

    def shutdown_executor(self) -> None:
        self._executor.shutdown(wait=True)


def _fail(group: list[Waiter], exc: Exception) -> None:
    for _, future in group:
        if not future.done():
            future.set_exception(exc)
