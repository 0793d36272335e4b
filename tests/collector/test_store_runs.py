"""The store's fast path for a run of new readings (`Ledger.place_run`) decides exactly what
placing them one by one decides: the same outcomes, points, times and ledger state, whatever
the submissions (re-sends, gaps, seqs out of order, uptimes that go back, invalid readings,
restarts, several lives of a device, groups in flight at once)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from collector.statedb import StateDB
from collector.store import DurableStore
from collector.submission import Candidate, Submission
from energymon.clock import ManualClock
from energymon.influx import InfluxClient

ARRIVAL_MS = 1_700_000_000_000
VALUES = (230.0, 1.0, 200.0, 100, 50.0, 0.9, False)

candidates = st.builds(
    lambda seq, offset_s, jitter_ms, valid, sensor: Candidate(
        seq,
        offset_s * 1000 + jitter_ms,
        sensor,
        VALUES if valid else None,
        None if valid else "not a valid measurement",
        {"seq": seq},
    ),
    st.integers(1, 30),
    st.integers(0, 40),
    st.sampled_from([0, 0, 0, 1, -1, 999]),
    st.sampled_from([True, True, True, False]),
    st.sampled_from(["pzem1", "pzem2"]),
)
runs = st.builds(
    lambda first, n, step, sensor: [
        Candidate(s, s * step, sensor, VALUES, None, {"seq": s}) for s in range(first, first + n)
    ],
    st.integers(1, 25),
    st.integers(1, 12),
    st.sampled_from([1000, 997]),
    st.sampled_from(["pzem1", "pzem2"]),
)
submissions = st.builds(
    lambda device, boot, nonce, arrival_s, readings: Submission(
        device,
        boot,
        ARRIVAL_MS + arrival_s * 1000 - (max((c.offset_ms for c in readings), default=0) + 5),
        tuple(readings),
        boot_nonce=nonce,
        uptime_ms=max((c.offset_ms for c in readings), default=0) + 5,
    ),
    st.sampled_from(["d1", "d2"]),
    st.sampled_from([1, 2]),
    st.sampled_from([None, 7]),
    st.integers(0, 120),
    runs | st.lists(candidates, max_size=8),
)
groups = st.lists(
    st.tuples(st.lists(submissions, min_size=1, max_size=3), st.booleans()), max_size=12
)


def make_store(data_dir: Path, *, fast: bool) -> DurableStore:
    store = DurableStore(
        StateDB(data_dir),
        # Never reached: preparing and finishing a group do not talk to InfluxDB.
        InfluxClient("http://127.0.0.1:9", "unused"),
        home="h1",
        spool_max_bytes=10**8,
        clock=ManualClock(ARRIVAL_MS),
        write_timeout_s=1.0,
    )
    if not fast:
        store.ledger.place_run = lambda *args: None  # type: ignore[method-assign]
    return store


def run(store: DurableStore, plan: list[tuple[list[Submission], bool]]) -> list[Any]:
    """Every group prepared and finished as if InfluxDB took its points; with the flag, the
    next group is prepared while this one is still in flight."""
    seen: list[Any] = []
    held = None
    for subs, overlap in plan:
        prepared = store.prepare(subs)
        seen.append((prepared.batch.lines, prepared.batch.times, prepared.outcomes))
        if held is not None:
            seen.append(store.finish(held, None))
            held = None
        if overlap:
            held = prepared
        else:
            seen.append(store.finish(prepared, None))
    if held is not None:
        seen.append(store.finish(held, None))
    ledger = store.ledger
    for key in sorted(ledger._lives):
        life = ledger.life(key)
        seen.append((key, life.runs.rows(), life.runs.floor_seq, life.pending))
        seen.append([(s.first_seq, s.anchor_ms, s.t_min, s.t_max) for s in life.segments])
    seen.append(ledger.unstored())
    return seen


def _quarantined_then_run() -> list[tuple[list[Submission], bool]]:
    """An invalid reading quarantined by a group still in flight, then a run of valid ones
    that holds its seq: a duplicate borrowed from that group, not a second copy."""
    bad = Candidate(5, 5000, "pzem1", None, "not a valid measurement", {"seq": 5})
    good = tuple(Candidate(s, s * 1000, "pzem1", VALUES, None, {"seq": s}) for s in range(5, 9))
    first = Submission("d1", 1, ARRIVAL_MS, (bad,), boot_nonce=7, uptime_ms=5005)
    second = Submission("d1", 1, ARRIVAL_MS, good, boot_nonce=7, uptime_ms=8005)
    return [([first], True), ([second], False)]


@settings(max_examples=150, deadline=None)
@given(groups)
@example(_quarantined_then_run())
def test_a_run_placed_at_once_is_placed_as_one_by_one(
    plan: list[tuple[list[Submission], bool]],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        fast = make_store(Path(tmp) / "fast", fast=True)
        slow = make_store(Path(tmp) / "slow", fast=False)
        try:
            assert run(fast, plan) == run(slow, plan)
        finally:
            fast.db.close()
            slow.db.close()


def test_a_device_running_on_takes_the_fast_path(tmp_path: Path) -> None:
    store = make_store(tmp_path, fast=True)
    calls: list[list[int] | None] = []
    place_run = store.ledger.place_run

    def counting(*args: Any) -> list[int] | None:
        calls.append(place_run(*args))
        return calls[-1]

    store.ledger.place_run = counting  # type: ignore[method-assign, assignment]
    for first in (1, 11, 21):
        readings = tuple(
            Candidate(s, s * 1000, "pzem1", VALUES, None, {}) for s in range(first, first + 10)
        )
        sub = Submission("d1", 1, ARRIVAL_MS, readings, boot_nonce=7, uptime_ms=first * 1000)
        store.finish(store.prepare([sub]), None)
    assert [c is not None for c in calls] == [True, True, True]
    store.db.close()
