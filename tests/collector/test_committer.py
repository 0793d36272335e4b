"""The group committer in this process, its write held or failed at an InfluxDB gate: groups
share one write, the next group is prepared while the previous one is written, and a reading
counted as a duplicate of a write in flight is acknowledged only if that write made it durable."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from collector.committer import WRITES_IN_FLIGHT
from energymon.influx import InfluxClient
from harness.influxd import InfluxServer
from tests.collector.helpers import batch
from tests.collector.inprocess import InfluxGate, InProcessCollector, in_process

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def gate(influx_server: InfluxServer) -> Iterator[InfluxGate]:
    gate = InfluxGate(influx_server.url)
    yield gate
    gate.close()


@pytest.fixture
def gated(gate: InfluxGate, influx: InfluxClient) -> InfluxClient:
    """A client of the test's own database, through the gate."""
    return InfluxClient(gate.url, influx.database)


async def until(condition: Callable[[], bool], timeout_s: float = 10.0) -> None:
    """Yield to the event loop until a condition set by another thread holds."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition never held"
        await asyncio.sleep(0.005)


async def held_at_the_gate(
    c: InProcessCollector, gate: InfluxGate, body: dict[str, Any]
) -> asyncio.Task[httpx.Response]:
    """A request whose write waits at the closed gate."""
    gate.hold()
    posting = asyncio.create_task(c.post(body))
    await until(lambda: gate.writes_waiting == 1)
    return posting


def journal_entries(data_dir: Path) -> int:
    from collector.statedb import StateDB

    db = StateDB(data_dir)
    try:
        return int(db.fetch_all("SELECT count(*) FROM write_journal")[0][0])
    finally:
        db.close()


def stored_seqs(influx: InfluxClient) -> list[int]:
    rows = [r for s in influx.query("SELECT seq FROM electricity") for r in s.records()]
    return sorted(int(str(r["seq"])) for r in rows)


async def test_requests_waiting_together_share_one_write(
    influx: InfluxClient, tmp_path: Path
) -> None:
    async with in_process(influx, tmp_path) as c:
        bodies = [batch(range(1 + 10 * i, 11 + 10 * i), device="mega-01") for i in range(5)]
        answers = await asyncio.gather(*(c.post(b) for b in bodies))
    assert [a.json()["accepted"] for a in answers] == [10] * 5
    assert journal_entries(tmp_path) <= 2  # the first request may go alone; the rest together
    assert stored_seqs(influx) == list(range(1, 51))


async def test_the_next_group_is_written_while_a_write_is_in_flight(
    gate: InfluxGate, gated: InfluxClient, tmp_path: Path
) -> None:
    async with in_process(gated, tmp_path) as c:
        first = await held_at_the_gate(c, gate, batch(range(1, 4)))
        second = asyncio.create_task(c.post(batch(range(4, 7), uptime_ms=9000)))
        # Prepared, journalled (fsynced) and sent while the first write is still held.
        await until(lambda: gate.writes_waiting == WRITES_IN_FLIGHT)
        assert journal_entries(tmp_path) == WRITES_IN_FLIGHT
        third = asyncio.create_task(c.post(batch(range(7, 10), uptime_ms=12000)))
        # A third group is prepared but waits for a free slot: no more writes in flight.
        await until(lambda: c.store.counters.group_commits == 3)
        assert gate.writes_waiting == WRITES_IN_FLIGHT
        assert not any(task.done() for task in (first, second, third))
        gate.release()
        answers = [await first, await second, await third]
    assert [a.json()["accepted"] for a in answers] == [3, 3, 3]
    assert stored_seqs(gated) == list(range(1, 10))


async def test_a_duplicate_of_a_failed_write_is_not_acknowledged(
    gate: InfluxGate, gated: InfluxClient, tmp_path: Path
) -> None:
    # The spool cannot take the batch either, so the first request fails as a whole.
    async with in_process(gated, tmp_path, spool_max_bytes=10) as c:
        first = await held_at_the_gate(c, gate, batch(range(1, 4)))
        # The device re-sends while the first attempt is still in flight.
        resend = asyncio.create_task(c.post(batch(range(1, 4))))
        await until(lambda: c.store.counters.group_commits == 2)
        gate.fail()
        failed, refused = await first, await resend
        assert (failed.status_code, failed.json()["error"]) == (503, "not_durable")
        assert (refused.status_code, refused.json()["error"]) == (503, "not_durable")
        assert "send it again" in refused.json()["detail"]
        gate.failing = False
        again = await c.post(batch(range(1, 4)))
    assert (again.status_code, again.json()["accepted"]) == (200, 3)
    assert stored_seqs(gated) == [1, 2, 3]


async def test_a_duplicate_of_a_write_in_flight_is_acknowledged_once_it_is_durable(
    gate: InfluxGate, gated: InfluxClient, tmp_path: Path
) -> None:
    async with in_process(gated, tmp_path) as c:
        first = await held_at_the_gate(c, gate, batch(range(1, 4)))
        resend = asyncio.create_task(c.post(batch(range(1, 4))))
        await until(lambda: c.store.counters.group_commits == 2)
        assert not resend.done()
        gate.release()
        answers = [(await first).json(), (await resend).json()]
    assert [(a["accepted"], a["duplicates"], a["ack"]) for a in answers] == [(3, 0, 3), (0, 3, 3)]


async def test_stopping_finishes_what_was_submitted(influx: InfluxClient, tmp_path: Path) -> None:
    async with in_process(influx, tmp_path) as c:
        posting = asyncio.create_task(c.post(batch(range(1, 6))))
        await until(lambda: len(c.committer._pending) > 0 or posting.done())
        await c.committer.stop()
        answer = await posting
        refused = await c.post(batch(range(6, 8)))
    assert answer.json()["accepted"] == 5
    assert (refused.status_code, refused.json()["error"]) == (503, "not_durable")
    assert stored_seqs(influx) == [1, 2, 3, 4, 5]
