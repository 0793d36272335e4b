"""Replication benchmark: catch-up of a 7-day backlog, exact verification, freshness on a healthy
link with the checks running, idle cost, peak RSS.

    python bench/replicate.py [--days 7]

Starts a local and a cloud influxd in a temporary directory, fills the local one with DAYS of
1 Hz readings of three sensors (with the collector's journal entries, as if written live), then
measures, in the same run:
  * the raw bulk-write rate of the same lines into the same cloud influxd (pre-formatted lines,
    5000 per request: the ceiling for any replicator);
  * catch-up: `energymon`'s replicator service, in a child process, draining the whole backlog
    with its checks' thread running as in production (they wait while it catches up); its peak
    RSS comes from the kernel (VmHWM), the most points its sink held at once from the sink; the
    CPU per million points of the replicator and of both influxd (`/proc`), which depends far
    less than the rates on what else the machine is doing;
  * exact verification: every point of the whole backlog compared between local and cloud
    (digests per series-hour, as `energymon replicator verify` does), timed;
  * freshness: with the replicator running as `energymon replicator run` (its checks running on
    their own thread: the whole-history sweep, the recent exact check, the rolling check), the
    time from a write's acknowledgement in the local InfluxDB to the point's presence in the
    cloud;
  * idle cost: once caught up and its first checks done, the replicator's CPU and the queries
    per second it sends to the local InfluxDB (influxd's own counters, `/debug/vars`).
Prints progress and results; writes nothing but stdout.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import requests

from energymon import journal
from energymon.influx import InfluxClient
from energymon.schema import Measurement, Reading
from harness.installation import Installation

HOME = "bench"
SENSORS = ("mains", "heatpump", "solar")
BATCH = 5000


def lines_for(start_ms: int, seconds: int) -> Iterator[list[str]]:
    batch: list[str] = []
    for i in range(seconds):
        t = start_ms + i * 1000
        for n, sensor in enumerate(SENSORS):
            power = 100.0 + (i * 7 + n * 13) % 2000 / 10
            m = Measurement(
                230.0 + (i % 50) / 10, power / 230, power, 1000 + i // 36, 50.0, 0.95, False
            )
            batch.append(Reading("mega-01", sensor, 1, i + 1, t, m).to_line(HOME))
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def drain() -> None:
    """Child process: run the replicator until it has caught up, print the points copied."""
    from energymon.clock import SystemClock
    from energymon.settings import load_settings
    from replicator.audit import AuditThread
    from replicator.service import build_service

    service = build_service(load_settings(), SystemClock())
    audit = AuditThread(service.auditor, idle_s=1.0, error_delay_s=60.0)
    audit.start()
    started, cpu_started = time.monotonic(), time.process_time()
    copied = 0
    try:
        while True:
            result = service.replicator.run_once()
            copied += result.copied_points
            if result.caught_up:
                break
    finally:
        audit.stop()
    service.replicator.save()
    # VmHWM is this program's own peak; ru_maxrss would include the parent's before exec.
    status = Path("/proc/self/status").read_text()
    peak_kb = next(int(ln.split()[1]) for ln in status.splitlines() if ln.startswith("VmHWM:"))
    held = service.replicator.sink.stats.peak_held_points
    cpu = time.process_time() - cpu_started
    print(f"{copied} {time.monotonic() - started:.3f} {peak_kb} {held} {cpu:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--drain", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.drain:
        drain()
        return
    seconds = int(args.days * 86400)
    with (
        tempfile.TemporaryDirectory() as tmp,
        Installation(Path(tmp), home=HOME, log_level="WARNING") as installation,
    ):
        installation.start("local", "cloud")
        run(installation, seconds)


def run(installation: Installation, seconds: int) -> None:
    local_server, cloud_server = installation.local, installation.cloud
    data_dir = installation.settings.data_dir
    now_ms = time.time_ns() // 1_000_000
    start_ms = now_ms - seconds * 1000 - 60_000
    total = seconds * len(SENSORS)
    print(
        f"influxd {InfluxClient(local_server.url, 'x').ping()}; "
        f"{total} readings ({seconds / 86400:g} days x {len(SENSORS)} sensors at 1 Hz)"
    )

    began = time.monotonic()
    # Formatted once and kept as request bodies, so that the raw rate measures InfluxDB alone.
    batches = [("\n".join(b).encode(), b[0], b[-1]) for b in lines_for(start_ms, seconds)]
    print(f"formatted the readings in {time.monotonic() - began:.1f} s")

    local = installation.local_client(timeout_s=120)
    db = sqlite3.connect(data_dir / journal.STATE_DB_NAME)
    db.execute(journal.SCHEMA)
    began = time.monotonic()
    for body, first, last in batches:
        low, high = int(first.rsplit(" ", 1)[1]), int(last.rsplit(" ", 1)[1])
        with db:
            journal.record(
                db,
                recorded_ms=high,
                min_time_ms=low,
                max_time_ms=high,
                points=body.count(b"\n") + 1,
            )
        local.write(body)
    db.close()
    print(f"filled the local influxd in {time.monotonic() - began:.1f} s")

    raw = InfluxClient(cloud_server.url, "raw", timeout_s=120)
    assert cloud_server.pid is not None and local_server.pid is not None
    raw_cloud_cpu = cpu_s(cloud_server.pid)
    began = time.monotonic()
    for body, _, _ in batches:
        raw.write(body)
    raw_s = time.monotonic() - began
    raw_cloud_cpu = cpu_s(cloud_server.pid) - raw_cloud_cpu
    raw_rate = total / raw_s
    del batches
    print(f"raw bulk write into the cloud influxd: {raw_s:.1f} s, {raw_rate:,.0f} readings/s")

    state = data_dir / "replicator" / "state.json"
    state.parent.mkdir()
    state.write_text(f'{{"version": 1, "watermark_ms": {start_ms}, "journal_cursor": 0}}')
    servers_cpu = cpu_s(local_server.pid), cpu_s(cloud_server.pid)
    began = time.monotonic()
    child = subprocess.Popen(
        [sys.executable, __file__, "--drain"],
        env=installation.env(),
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    output = child.stdout.read()
    status = child.wait()
    wall_s = time.monotonic() - began
    local_cpu = cpu_s(local_server.pid) - servers_cpu[0]
    cloud_cpu = cpu_s(cloud_server.pid) - servers_cpu[1]
    if status != 0:
        raise SystemExit(f"the replicator failed ({status})")
    copied, drain_s, peak_kb, held, drain_cpu = output.split()
    rate = total / float(drain_s)
    cloud = installation.cloud_client(timeout_s=120)
    in_cloud = cloud.query("SELECT count(power_w) FROM electricity")[0].values[0][1]
    print(
        f"catch-up: {int(copied)} points copied in {float(drain_s):.1f} s "
        f"({wall_s:.1f} s with start-up), {rate:,.0f} readings/s = {rate / raw_rate:.2f} of raw; "
        f"cloud holds {in_cloud} of {total}; peak RSS {int(peak_kb) / 1024:.0f} MB, "
        f"at most {held} points held at once"
    )
    # CPU per million points copied, which the other load on the machine changes little.
    per_mpoint = 1e6 / total
    print(
        f"CPU per million points: replicator {float(drain_cpu) * per_mpoint:.2f} s (its process "
        f"while draining, every thread), local influxd {local_cpu * per_mpoint:.2f} s and cloud "
        f"influxd {cloud_cpu * per_mpoint:.2f} s (from the replicator's start to its exit); "
        f"the raw write: cloud influxd {raw_cloud_cpu * per_mpoint:.2f} s"
    )

    exact_verification(installation, start_ms, total)
    installation.start("replicator")
    try:
        freshness(installation, cloud)
        idle_cost(installation)
    finally:
        installation.stop("replicator")


def exact_verification(installation: Installation, start_ms: int, total: int) -> None:
    """Every point of the backlog, compared as `energymon replicator verify --all` does."""
    from energymon.clients import cloud_influx
    from replicator.points import TimeRange
    from replicator.service import local_client
    from replicator.state import StateStore
    from replicator.verify import HOUR_MS, compare, hour_floor

    settings = installation.settings
    state = StateStore(settings.data_dir / "replicator" / "state.json").load()
    assert state is not None
    local, cloud = local_client(settings), cloud_influx(settings)
    began = time.monotonic()
    hours, mismatches = compare(local, cloud, HOME, TimeRange(start_ms, state.watermark_ms))
    took = time.monotonic() - began
    print(
        f"exact verification: {hours} hours, {total:,} points on each side in {took:.1f} s "
        f"({2 * total / took:,.0f} points/s read and digested); {len(mismatches)} differ"
    )
    # A reconciliation checks one hour per replication step, on the live thread: how long the
    # live copy waits for it, at most.
    slices = []
    for hour in range(hour_floor(start_ms), state.watermark_ms, HOUR_MS):
        began = time.monotonic()
        compare(local, cloud, HOME, TimeRange(hour, min(hour + HOUR_MS, state.watermark_ms)))
        slices.append(time.monotonic() - began)
    print(
        f"reconciliation slices (one hour each, {len(slices)}): mean "
        f"{statistics.mean(slices) * 1000:.0f} ms, max {max(slices) * 1000:.0f} ms"
    )


def influx_queries(url: str) -> int:
    """Queries the server has answered since it started (its `/debug/vars` counters)."""
    stats = requests.get(url + "/debug/vars", timeout=10).json()
    return sum(v["values"]["queryReq"] for k, v in stats.items() if k.startswith("httpd"))


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_cost(installation: Installation, seconds: float = 30.0) -> None:
    """Caught up, nothing new to copy, its first checks done: what the replicator still costs."""
    deadline = time.monotonic() + 600
    health = installation.replicator_url + "/health"
    while requests.get(health, timeout=10).json()["verify"] is None:
        if time.monotonic() > deadline:
            raise SystemExit("the replicator's first checks did not finish in 10 minutes")
        time.sleep(1)
    # The journal entries of the freshness points are followed once they have settled.
    time.sleep(installation.settings.replicator_journal_settle_s + 2)
    pid = installation.replicator.pid
    assert pid is not None
    url = installation.local.url
    queries, cpu, began = influx_queries(url), cpu_s(pid), time.monotonic()
    time.sleep(seconds)
    took = time.monotonic() - began
    queries, cpu = influx_queries(url) - queries, cpu_s(pid) - cpu
    # Our own `/debug/vars` requests are not queries; the health records are writes.
    print(
        f"idle cost over {took:.0f} s: replicator CPU {100 * cpu / took:.1f} % of a core, "
        f"{queries / took:.1f} queries/s to the local InfluxDB"
    )


def freshness(installation: Installation, cloud: InfluxClient) -> None:
    local = installation.local_client()
    data_dir = installation.settings.data_dir
    db = sqlite3.connect(data_dir / journal.STATE_DB_NAME)
    acked: dict[int, float] = {}
    seen: dict[int, float] = {}
    done = threading.Event()

    def poll() -> None:
        since = min(acked) if acked else 0
        while not done.is_set():
            rows = cloud.query(
                f"SELECT power_w FROM electricity WHERE sensor = 'fresh' AND time >= {since}ms"
            )
            now = time.monotonic()
            for series in rows:
                for row in series.values:
                    seen.setdefault(row[0], now)
            time.sleep(0.02)

    try:
        time.sleep(2)
        poller = threading.Thread(target=poll)
        samples = 100
        for i in range(samples):
            t = time.time_ns() // 1_000_000
            m = Measurement(230.0, 1.0, 230.0, i, 50.0, 1.0, False)
            line = Reading("mega-01", "fresh", 2, i + 1, t, m).to_line(HOME)
            with db:
                journal.record(db, recorded_ms=t, min_time_ms=t, max_time_ms=t, points=1)
            local.write([line])
            acked[t] = time.monotonic()
            if i == 0:
                poller.start()
            time.sleep(0.2)
        deadline = time.monotonic() + 15
        while len(seen) < samples and time.monotonic() < deadline:
            time.sleep(0.1)
        done.set()
        poller.join()
    finally:
        db.close()
    latencies = sorted(seen[t] - acked[t] for t in acked if t in seen)
    missing = samples - len(latencies)
    p50 = statistics.median(latencies)
    p95 = latencies[max(0, int(len(latencies) * 0.95) - 1)]
    print(
        f"freshness (local ack to cloud), {len(latencies)} points: p50 {p50:.2f} s, "
        f"p95 {p95:.2f} s, max {latencies[-1]:.2f} s; {missing} not seen"
    )


if __name__ == "__main__":
    main()
