"""The store's CPU per reading on its own thread: `prepare` (identity, placing, formatting) and
`finish` (marking the seqs durable, in the ledger and its SQLite rows), in this process.

    python bench/identity.py [--batches 2000] [--runs 3]

Feeds one store, in this process on a manual clock, batches of 100 readings (two meters), parsed
before the clock starts, in three cases: a device that sends a boot nonce and only new seqs (the
common path); one without a nonce (older firmware), new seqs; one without a nonce that sends
every batch twice (a lost reply), so that half the batches are re-sends, checked against what
the ledger keeps of its runs. Figures are CPU microseconds per reading (`time.process_time`,
this process only: neither InfluxDB nor the write stage's fsync is included, as neither runs
on the store's thread), so other load on the machine changes them little. Progress to stderr,
a Markdown result block to stdout.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from collector.payload import parse_submission
from collector.statedb import StateDB
from collector.store import DurableStore
from collector.submission import Submission
from energymon.clock import ManualClock
from energymon.influx import InfluxClient

T0 = 1_764_000_000_000
BATCH = 100
PERIOD_MS = 1000
# Per case: whether the device sends a nonce, and how many times it sends each batch.
CASES = {
    "nonce, new seqs": (True, 1),
    "no nonce, new seqs": (False, 1),
    "no nonce, each sent twice": (False, 2),
}


def reading(seq: int) -> dict[str, Any]:
    return {
        "seq": seq,
        "uptime_ms": seq * PERIOD_MS // 2 + 7 * (seq % 2),
        "sensor": f"pzem{seq % 2 + 1}",
        "voltage_v": 229.8 + seq % 10 / 10,
        "current_a": 1.234,
        "power_w": 270.5,
        "energy_wh": 123456 + seq,
        "frequency_hz": 50.0,
        "power_factor": 0.95,
        "alarm": False,
    }


def submissions(batches: int, nonce: bool, sends: int) -> list[tuple[int, Submission]]:
    """(arrival, submission) for each request, parsed up front."""
    out: list[tuple[int, Submission]] = []
    for b in range(batches):
        seqs = range(b * BATCH + 1, (b + 1) * BATCH + 1)
        document: dict[str, Any] = {
            "device": "mega-01",
            "boot": 1,
            "uptime_ms": seqs[-1] * PERIOD_MS // 2 + 500,
            "readings": [reading(s) for s in seqs],
        }
        if nonce:
            document["boot_nonce"] = 4242
        arrival = T0 + document["uptime_ms"]
        out.extend((arrival, parse_submission(document, 1000, arrival)) for _ in range(sends))
    return out


def run(batches: int, nonce: bool, sends: int) -> tuple[float, float, int]:
    """CPU seconds in prepare, in finish, and the readings fed."""
    with tempfile.TemporaryDirectory() as tmp:
        clock = ManualClock(T0)
        # Never reached: neither stage measured here talks to InfluxDB.
        influx = InfluxClient("http://127.0.0.1:9", "energymon", timeout_s=1.0)
        store = DurableStore(
            StateDB(Path(tmp)),
            influx,
            home="bench",
            spool_max_bytes=10**9,
            clock=clock,
            write_timeout_s=1.0,
        )
        prepare_s = finish_s = 0.0
        readings = 0
        for arrival, sub in submissions(batches, nonce, sends):
            clock.advance((arrival - clock.now_ms()) / 1000)
            started = time.process_time()
            prepared = store.prepare([sub])
            prepared_at = time.process_time()
            store.finish(prepared, None)
            prepare_s += prepared_at - started
            finish_s += time.process_time() - prepared_at
            readings += len(sub.readings)
        store.db.close()
    return prepare_s, finish_s, readings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    rows = []
    for name, (nonce, sends) in CASES.items():
        for i in range(args.runs):
            prepare_s, finish_s, readings = run(args.batches, nonce, sends)
            print(f"{name}, run {i + 1}: {readings} readings", file=sys.stderr)
            rows.append((name, i + 1, prepare_s * 1e6 / readings, finish_s * 1e6 / readings))
    model = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        "unknown",
    )  # fmt: skip
    print(f"### Store CPU per reading, batches of {BATCH}, {args.batches} batches a run\n")
    print(f"{model}, {len(os.sched_getaffinity(0))} cores, Python {platform.python_version()}\n")
    print("| case | run | prepare µs/reading | finish µs/reading |")
    print("| --- | --- | --- | --- |")
    for name, i, prepare_us, finish_us in rows:
        print(f"| {name} | {i} | {prepare_us:.2f} | {finish_us:.2f} |")


if __name__ == "__main__":
    main()
