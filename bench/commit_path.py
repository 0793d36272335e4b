"""CPU per reading of the collector's commit path, stage by stage, in one process.

    python bench/commit_path.py [--devices 200] [--groups 600] [--repeat 3]

The request bodies are those of `bench/ingest.py` (the firmware's canonical JSON, 100 readings,
each device with its own boot and increasing seqs), in three cases: with the boot nonce the
firmware sends; without one (older firmware), which the identity rules check against what the
ledger keeps of each run; and without one with every body sent twice (a lost reply), so that
half the readings are re-sends. Each stage runs on its own over the same work and is timed with
`time.process_time`, so other processes on the machine change the figures little: parsing a
body (`parse_body`), preparing a group of three submissions (`DurableStore.prepare`: identity,
placing, formatting, claiming), and finishing it as if InfluxDB took it
(`DurableStore.finish`: marking seqs durable, in the ledger and its SQLite rows). The
journal's fsync and the InfluxDB request are left out: they wait rather than compute. Progress
to stderr, a Markdown table to stdout.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.ingest import BATCH, batch_body, boot_of, machine
from collector.payload import parse_body
from collector.statedb import StateDB
from collector.store import DurableStore
from collector.submission import Submission
from energymon.clock import ManualClock
from energymon.influx import InfluxClient

GROUP = 3
# Arrival after every reading of the bodies: none of them is measured in the future.
ARRIVAL_MS = 1_800_000_000_000


# Per case: whether the device sends a nonce, and how many times it sends each body.
CASES = {
    "nonce, new seqs": (True, 1),
    "no nonce, new seqs": (False, 1),
    "no nonce, each sent twice": (False, 2),
}


def bodies(devices: int, groups: int, nonce: bool, sends: int) -> list[bytes]:
    names = [f"bench-{i:04d}" for i in range(devices)]
    out: list[bytes] = []
    for k in range(groups * GROUP // sends):
        device = names[k % devices]
        first = 1 + (k // devices) * BATCH
        out += [batch_body(device, boot_of(device), first, BATCH, nonce=nonce)] * sends
    return out


def timed(run: Callable[[], None]) -> float:
    start = time.process_time()
    run()
    return time.process_time() - start


def one_run(work: Sequence[bytes]) -> dict[str, float]:
    readings = len(work) * BATCH
    submissions: list[Submission] = []
    parse_s = timed(lambda: submissions.extend(parse_body(b, 1000, ARRIVAL_MS) for b in work))
    with tempfile.TemporaryDirectory() as tmp:
        # Never reached: the stages timed here do not talk to InfluxDB.
        influx = InfluxClient("http://127.0.0.1:9", "bench")
        store = DurableStore(
            StateDB(Path(tmp)), influx, home="bench-home", spool_max_bytes=10**9,
            clock=ManualClock(ARRIVAL_MS), write_timeout_s=1.0,
        )  # fmt: skip
        groups = [submissions[i : i + GROUP] for i in range(0, len(submissions), GROUP)]
        prepare_s = finish_s = 0.0
        for group in groups:
            start = time.process_time()
            prepared = store.prepare(group)
            prepare_s += time.process_time() - start
            start = time.process_time()
            store.finish(prepared, None)
            finish_s += time.process_time() - start
        store.db.close()
    return {
        "parse": parse_s / readings * 1e6,
        "prepare": prepare_s / readings * 1e6,
        "finish": finish_s / readings * 1e6,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--groups", type=int, default=600)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    results: dict[str, list[dict[str, float]]] = {}
    for case, (nonce, sends) in CASES.items():
        work = bodies(args.devices, args.groups, nonce, sends)
        for i in range(args.repeat):
            results.setdefault(case, []).append(one_run(work))
            figures = ", ".join(f"{k} {v:.2f} µs" for k, v in results[case][-1].items())
            print(f"{case}, run {i + 1}: {figures}", file=sys.stderr)
    info = machine()
    print(
        f"`python bench/commit_path.py --devices {args.devices} --groups {args.groups}` "
        f"({args.groups * GROUP * BATCH:,} readings a run), {info['cpu']}, "
        f"Python {info['python']}. CPU µs per reading, each run's figure, then the median.\n"
    )
    print(
        "| case | stage | " + " | ".join(f"run {i + 1}" for i in range(args.repeat)) + " | median |"
    )
    print("| --- | --- | " + " | ".join("---" for _ in range(args.repeat)) + " | --- |")
    for case, runs in results.items():
        for stage in ("parse", "prepare", "finish", "all three"):
            values = [sum(r.values()) if stage == "all three" else r[stage] for r in runs]
            cells = " | ".join(f"{v:.2f}" for v in values)
            print(f"| {case} | {stage} | {cells} | {statistics.median(values):.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
