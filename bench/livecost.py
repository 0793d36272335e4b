"""Live idle cost: the replicator's and the collector's CPU, and the queries the replicator sends
to the local InfluxDB, with the real collector (and its rollup worker) fed at 1 Hz.

    python bench/livecost.py [--seconds 60] [--runs 3]

Starts, as real processes in a temporary directory (`harness.installation`): a local and a cloud
influxd, the collector, three fake Arduinos with one meter each posting a reading a second, then
measures for SECONDS the collector alone (its CPU, the queries its rollup worker sends to the
local influxd); then starts the replicator, waits until it has caught up and its first checks
are done, and measures RUNS windows of SECONDS each. The replicator's queries are the local
influxd's query counter (`/debug/vars`) in a window minus the collector-alone rate. CPU is
reported as CPU-seconds per minute of live operation (`/proc`, every thread of the process),
which other load on the machine changes far less than a percentage of wall time would.
Progress to stderr, a Markdown result block to stdout.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from harness.installation import Installation

HOME = "bench"
METERS = (("mega-01", "mains"), ("mega-02", "heatpump"), ("mega-03", "solar"))


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def influx_queries(url: str) -> int:
    """Queries the server has answered since it started (its `/debug/vars` counters)."""
    stats = requests.get(url + "/debug/vars", timeout=10).json()
    return sum(v["values"]["queryReq"] for k, v in stats.items() if k.startswith("httpd"))


@dataclass(frozen=True, slots=True)
class Window:
    seconds: float
    queries: int
    cpu_s: dict[str, float]

    def per_minute(self, part: str) -> float:
        return self.cpu_s[part] * 60 / self.seconds

    @property
    def queries_per_s(self) -> float:
        return self.queries / self.seconds


def measure(installation: Installation, parts: tuple[str, ...], seconds: float) -> Window:
    pids = {name: installation.part(name).pid for name in parts}
    assert all(pid is not None for pid in pids.values())
    url = installation.local.url
    before = {name: cpu_s(pid) for name, pid in pids.items() if pid is not None}
    queries, began = influx_queries(url), time.monotonic()
    time.sleep(seconds)
    took = time.monotonic() - began
    queries = influx_queries(url) - queries
    after = {name: cpu_s(pid) for name, pid in pids.items() if pid is not None}
    return Window(took, queries, {name: after[name] - before[name] for name in before})


def wait_caught_up(installation: Installation, timeout_s: float = 600.0) -> None:
    """Until the replicator's first verification is done and its lag is that of a live copy."""
    deadline = time.monotonic() + timeout_s
    health = installation.replicator_url + "/health"
    while True:
        report = requests.get(health, timeout=10).json()
        if report["verify"] is not None and report["lag_s"] < 5:
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"the replicator did not catch up in {timeout_s:.0f} s: {report}")
        time.sleep(1)


def run(root: Path, seconds: float, runs: int) -> tuple[Window, list[Window]]:
    keys = {device: f"key-{device}" for device, _ in METERS}
    with Installation(root, device_keys=keys, home=HOME, log_level="WARNING") as installation:
        for device, sensor in METERS:
            installation.add_device(device, "--sensors", sensor)
        installation.start("local", "cloud", "collector", *keys)
        print("collector and devices started; letting the rollups settle", file=sys.stderr)
        time.sleep(installation.settings.rollup_interval_s * 4)
        alone = measure(installation, ("collector", "local"), seconds)
        print(f"collector alone: {alone}", file=sys.stderr)
        installation.start("replicator")
        wait_caught_up(installation)
        # The entries written while it caught up settle before the windows start.
        time.sleep(installation.settings.replicator_journal_settle_s + 2)
        windows = []
        for n in range(runs):
            window = measure(installation, ("replicator", "collector", "local"), seconds)
            print(f"window {n + 1}: {window}", file=sys.stderr)
            windows.append(window)
        return alone, windows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=60.0, help="length of a window")
    parser.add_argument("--runs", type=int, default=3, help="windows with the replicator")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        alone, windows = run(Path(tmp), args.seconds, args.runs)
    print(
        f"### Live idle cost: 3 meters x 1 Hz, collector + replicator ({platform.node()}, "
        f"{os.cpu_count()} cores, shared)\n"
    )
    print(
        "| window | replicator CPU s/min | replicator queries/s to local | collector CPU s/min "
        "| local influxd CPU s/min | all queries/s to local |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    print(
        f"| collector alone, {alone.seconds:.0f} s | - | - | {alone.per_minute('collector'):.2f} "
        f"| {alone.per_minute('local'):.2f} | {alone.queries_per_s:.2f} |"
    )
    for n, w in enumerate(windows, 1):
        print(
            f"| {n}, {w.seconds:.0f} s | {w.per_minute('replicator'):.2f} "
            f"| {w.queries_per_s - alone.queries_per_s:.2f} | {w.per_minute('collector'):.2f} "
            f"| {w.per_minute('local'):.2f} | {w.queries_per_s:.2f} |"
        )


if __name__ == "__main__":
    main()
