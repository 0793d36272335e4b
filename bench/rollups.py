"""Rollup benchmark: the collector's rollup worker at 3 meters x 1 Hz, and a rebuild of DAYS of
1 s data (default a year).

    python bench/rollups.py [--days 365] [--live-minutes 60] [--runs 3]

Starts an influxd in a temporary directory and fills it with DAYS of readings of three meters
(`bench/yeardata.py`, shared with bench/dashboards.py), then measures, in the same run:
  * maintenance: a simulated stretch of live data (3 readings a second, written with their
    journal entries as the collector's store does, on a manual clock) with the worker stepped
    every 5 simulated seconds, as the collector does by default. Reported per simulated hour:
    the worker's own CPU seconds (this process, only inside `run_once`) and influxd's CPU
    seconds during those steps (its queries and the rollup writes), each also as a percentage
    of one core over that hour, which is the load the worker adds to the Pi;
  * rebuild: `collector.rollup_rebuild.rebuild` of the whole data set, wall time, this
    process's CPU, influxd's CPU, points written.
Progress goes to stderr, a Markdown result block to stdout.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.yeardata import default_meters, lines, stderr_progress, write_year
from collector.rollup import RollupConfig, RollupWorker
from collector.rollup_rebuild import rebuild
from collector.statedb import StateDB
from energymon import journal
from energymon.clock import ManualClock
from energymon.influx import InfluxClient
from energymon.settings import make_settings
from harness.influxd import InfluxServer

HOME = "bench"
STEP_S = 5
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def live(
    client: InfluxClient, data_dir: Path, server_pid: int, start_ms: int, minutes: int
) -> tuple[float, float]:
    """Worker CPU and influxd CPU (seconds) per simulated hour of live data."""
    settings = make_settings(home=HOME, data_dir=data_dir, influx_db=client.database)
    db = StateDB(data_dir)
    clock = ManualClock(start_ms)
    worker = RollupWorker(db, client, RollupConfig.from_settings(settings), clock)
    # Catch up with whatever is journalled before the measured stretch.
    while worker.run_once().more_work:
        pass
    own = server = 0.0
    seconds = minutes * 60
    meters = default_meters()
    for step in range(seconds // STEP_S):
        t0 = start_ms + step * STEP_S * 1000
        for batch in lines(HOME, t0, STEP_S, meters):
            with db.transaction() as conn:
                journal.record(
                    conn,
                    recorded_ms=clock.now_ms(),
                    min_time_ms=t0,
                    max_time_ms=t0 + (STEP_S - 1) * 1000,
                    points=len(batch),
                )
            client.write("\n".join(batch).encode())
        clock.advance(STEP_S)
        before_own, before_server = time.process_time(), cpu_s(server_pid)
        worker.run_once()
        own += time.process_time() - before_own
        server += cpu_s(server_pid) - before_server
        if step % 60 == 0:
            print(f"\rlive: {step * STEP_S}/{seconds} s", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    db.close()
    hours = seconds / 3600
    return own / hours, server / hours


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=float, default=365.0)
    parser.add_argument("--live-minutes", type=int, default=60)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-rollups-") as tmp:
        server = InfluxServer(Path(tmp) / "influxd")
        server.start()
        try:
            run(server, Path(tmp), args)
        finally:
            server.stop()


def run(server: InfluxServer, tmp: Path, args: argparse.Namespace) -> None:
    pid = server.pid
    assert pid is not None
    client = InfluxClient(server.url, "bench", timeout_s=300)
    client.create_database()
    began = time.monotonic()
    start, end, points = write_year(client, HOME, args.days, progress=stderr_progress("raw data"))
    fill_s = time.monotonic() - began
    rebuilds: list[tuple[float, float, float, int]] = []
    lives: list[tuple[float, float]] = []
    for n in range(args.runs):
        data_dir = tmp / f"state-{n}"
        settings = make_settings(home=HOME, data_dir=data_dir, influx_db="bench")
        wall, own, srv = time.monotonic(), time.process_time(), cpu_s(pid)
        written = rebuild(client, settings, start, end, progress=_rebuild_progress)
        rebuilds.append(
            (time.monotonic() - wall, time.process_time() - own, cpu_s(pid) - srv, written)
        )
        print(f"\nrebuild {n + 1}: {rebuilds[-1][0]:.1f} s", file=sys.stderr)
        live_start = end + n * (args.live_minutes + 1) * 60_000
        lives.append(live(client, data_dir, pid, live_start, args.live_minutes))
    load = os.getloadavg()
    print(f"### bench/rollups.py, {args.days:g} days x 3 meters x 1 Hz ({points:,} readings)\n")
    print(
        f"Machine: {platform.node()}, {os.cpu_count()} CPUs, load average {load[0]:.2f} "
        f"at the end (shared with other work); raw data written in {fill_s:.0f} s.\n"
    )
    print(
        "| run | rebuild wall s | rebuild CPU s (ours) | rebuild CPU s (influxd) | "
        "rollup points | live worker CPU s/h | live influxd CPU s/h | worker % of a core |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for n, ((wall, own, srv, written), (lown, lsrv)) in enumerate(
        zip(rebuilds, lives, strict=True), 1
    ):
        pct = (lown + lsrv) / 3600 * 100
        print(
            f"| {n} | {wall:.1f} | {own:.1f} | {srv:.1f} | {written:,} | {lown:.2f} | "
            f"{lsrv:.2f} | {pct:.3f} |"
        )
    print(
        f"\nMedian rebuild: {statistics.median(r[0] for r in rebuilds):.1f} s; "
        f"median maintenance: {statistics.median((a + b) / 36 for a, b in lives):.3f} % of "
        "one core (worker + influxd's share, per simulated hour)."
    )
    client.close()


def _rebuild_progress(done: int, total: int) -> None:
    print(f"\rrebuild: {done}/{total} spans", end="", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
