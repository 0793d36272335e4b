"""The serial bridge in this process: a polling thread blocked until its submission is durable,
and a clear error, not a hang, when the store does not answer."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from collector.committer import GroupCommitter
from collector.serial_bridge import SerialBridge
from collector.submission import Candidate, Submission
from energymon.clock import ManualClock
from energymon.errors import StoreError
from energymon.influx import InfluxClient
from energymon.schema import Measurement
from tests.collector.inprocess import START_MS, in_process
from tests.collector.test_store import make_store

pytestmark = pytest.mark.anyio

MEASUREMENT = Measurement(230.1, 1.5, 300.0, 1000, 50.0, 0.87, False)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def serial_submission(seqs: range) -> Submission:
    candidates = tuple(
        Candidate.of_measurement(seq, START_MS + seq * 1000, "mains", MEASUREMENT) for seq in seqs
    )
    return Submission("pi-serial", 1, 0, candidates, 0, {"mains": 0})


async def test_the_polling_thread_returns_once_its_readings_are_durable(
    influx: InfluxClient, tmp_path: Path
) -> None:
    async with in_process(influx, tmp_path) as c:
        bridge = SerialBridge(c.committer, asyncio.get_running_loop())
        await asyncio.to_thread(bridge, serial_submission(range(1, 4)))
        health = (await c.client.get("/health")).json()
    rows = [r for s in influx.query("SELECT * FROM electricity") for r in s.records()]
    # Serial readings are timed on the Pi's clock: their anchor is zero.
    assert [r["time"] for r in rows] == [START_MS + 1000, START_MS + 2000, START_MS + 3000]
    assert health["devices"]["pi-serial"]["last_seq"] == 3


async def test_a_store_that_does_not_answer_is_an_error_not_a_hang(
    influx: InfluxClient, tmp_path: Path
) -> None:
    # A committer whose loop never runs: nothing will ever resolve a submission.
    store = make_store(influx, tmp_path, ManualClock(START_MS))
    stuck = GroupCommitter(store, max_points=100)
    bridge = SerialBridge(stuck, asyncio.get_running_loop(), timeout_s=0.2)
    try:
        with pytest.raises(StoreError, match="not made durable in time"):
            await asyncio.to_thread(bridge, serial_submission(range(1, 2)))
    finally:
        stuck.shutdown_executor()
        store.db.close()
