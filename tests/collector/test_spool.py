"""The spool on a real SQLite file: accounting, the bound, parking, and surviving a reopen."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.spool import Spool
from collector.statedb import StateDB
from energymon.errors import SpoolFullError

NOW_MS = 1_700_000_000_000


def append(spool: Spool, body: bytes, points: int, time_ms: int = NOW_MS) -> None:
    spool.append(body, points=points, min_time_ms=time_ms, max_time_ms=time_ms, now_ms=NOW_MS)


def test_oldest_first_in_batches_of_about_max_points(tmp_path: Path) -> None:
    spool = Spool(StateDB(tmp_path), max_bytes=10**6)
    for i in range(5):
        append(spool, f"row{i}".encode(), points=3, time_ms=NOW_MS + i)
    assert (spool.depth_points, spool.bytes, spool.empty) == (15, 20, False)
    first = spool.oldest(7)
    assert [r.body for r in first] == [b"row0", b"row1"]
    # A row larger than the batch still comes out alone, so the drain always progresses.
    assert [r.body for r in spool.oldest(1)] == [b"row0"]
    spool.remove(first)
    assert (spool.depth_points, spool.bytes) == (9, 12)
    assert [r.body for r in spool.oldest(100)] == [b"row2", b"row3", b"row4"]


def test_the_bound_refuses_and_logs_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    spool = Spool(StateDB(tmp_path), max_bytes=10)
    append(spool, b"123456", points=1)
    for _ in range(3):
        with pytest.raises(SpoolFullError):
            append(spool, b"123456", points=1)
    assert spool.full_refusals == 3 and spool.depth_points == 1
    assert sum("spool is full" in r.getMessage() for r in caplog.records) == 1
    spool.remove(spool.oldest(10))
    append(spool, b"123456", points=1)
    assert any("accepts readings again" in r.getMessage() for r in caplog.records)


def test_depth_and_parked_batches_survive_a_reopen(tmp_path: Path) -> None:
    db = StateDB(tmp_path)
    spool = Spool(db, max_bytes=10**6)
    append(spool, b"kept", points=4)
    spool.park(b"refused", points=2, reason="field type conflict", now_ms=NOW_MS)
    db.close()
    reopened = Spool(StateDB(tmp_path), max_bytes=10**6)
    assert (reopened.depth_points, reopened.bytes, reopened.parked_points) == (4, 4, 2)
    [parked] = reopened.parked()
    assert (parked.body, parked.reason) == (b"refused", "field type conflict")
    reopened.unpark(parked)
    assert reopened.parked_points == 0 and reopened.parked() == []
