"""Ingest benchmark of the collector: throughput, latency and memory against a private influxd.

    python bench/ingest.py [--seconds N] [--quick]

Starts its own influxd and collector on free loopback ports in a temporary directory, then runs:

1. raw: 100-line `/write` requests of `electricity` points straight to influxd (the ceiling);
2. throughput: 100-reading `POST /api/v1/readings` batches from many simulated devices, from the
   same number of client connections as (1), into the same influxd;
3. latency: 50 devices posting single readings, at the firmware's rate (one post per second, a
   new connection each time, `Connection: close`) and at saturation (closed loop, keep-alive);

sampling the collector's RSS throughout. Afterwards it checks that InfluxDB holds exactly as many
points as were accepted. Progress goes to stderr, a Markdown results block to stdout.

The load generator is one process running asyncio (uvloop when installed) with a minimal HTTP/1.1
client over pre-encoded requests: on a two-core machine it shares the CPU with influxd and the
collector, so it must cost as little as possible per request, and one event loop serving many
keep-alive connections is far cheaper than threads or processes running `requests`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from energymon.influx import InfluxClient
from energymon.schema import RawMeasurement, Reading
from energymon.settings import ENV_PREFIX
from harness.installation import Installation
from simulator.wire import DeviceReading, encode_batch

HOME = "bench-home"
COLLECTOR_DB = "energymon"
RAW_DB = "bench_raw"
BATCH = 100
LATENCY_DEVICES = 50
SENSORS = ("pzem1", "pzem2", "pzem3")
# Device uptime when it first reaches the collector: its readings then lie in the past.
FIRST_UPTIME_MS = 3_600_000
READING_STEP_MS = 400
# Pre-encoded work is sized for this rate; a phase that uses it all up ends early (reported).
COLLECTOR_RATE_CAP = 140_000
RAW_RATE_CAP = 280_000
SATURATION_RATE_CAP = 10_000
# Other processes using more than this share of a core during a phase make its figures suspect.
NOISE_PERCENT = 25


def progress(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- the readings -------------------------------------------------------------------------------


def raw_measurement(seq: int) -> RawMeasurement:
    """Plausible, varying register values; a function of seq so both paths store the same."""
    current_ma = 800 + (seq * 37) % 9000
    voltage_dv = 2250 + seq % 90
    pf_centi = 80 + seq % 21
    return RawMeasurement(
        voltage_dv=voltage_dv,
        current_ma=current_ma,
        power_dw=voltage_dv * current_ma * pf_centi // 1_000_000,
        energy_wh=100_000 + seq // 4,
        frequency_dhz=499 + seq % 3,
        power_factor_centi=pf_centi,
        alarm=False,
    )


def device_reading(seq: int) -> DeviceReading:
    return DeviceReading(
        seq, seq * READING_STEP_MS, SENSORS[(seq - 1) % len(SENSORS)], raw_measurement(seq)
    )


def boot_of(device: str) -> int:
    """Each device has its own boot counter; any fixed value per device will do."""
    return 1 + sum(device.encode()) % 97


def nonce_of(device: str) -> int:
    """The random number the firmware draws at each boot; any fixed value per device will do."""
    return 1 + zlib.crc32(device.encode()) % (2**32 - 1)


def batch_body(device: str, boot: int, first_seq: int, count: int, *, nonce: bool = True) -> bytes:
    """The firmware's canonical encoding of readings first_seq .. first_seq+count-1, with the
    boot nonce the firmware sends (without: as older firmware sends them)."""
    readings = [device_reading(s) for s in range(first_seq, first_seq + count)]
    uptime_ms = max(FIRST_UPTIME_MS, readings[-1].uptime_ms + 50)
    boot_nonce = nonce_of(device) if nonce else None
    return encode_batch(device, boot, uptime_ms, readings, boot_nonce=boot_nonce)


def post_request(port: int, key: str, body: bytes, *, close: bool = False) -> bytes:
    head = (
        f"POST /api/v1/readings HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n"
    )
    if close:
        head += "Connection: close\r\n"
    return head.encode("ascii") + b"\r\n" + body


class RawLines:
    """`Reading.to_line` output, built from cached parts so millions can be pre-encoded quickly.
    `check()` proves the parts give exactly what the collector would write."""

    def __init__(self) -> None:
        self._fields: dict[RawMeasurement, str] = {}

    def line(self, device: str, boot: int, seq: int, time_ms: int) -> str:
        raw = raw_measurement(seq)
        fields = self._fields.get(raw)
        if fields is None:
            full = Reading("d", "s", 0, 0, 0, raw.to_measurement()).to_line(HOME)
            fields = self._fields[raw] = full.split(" ")[1].rsplit(",boot=", 1)[0]
        sensor = SENSORS[(seq - 1) % len(SENSORS)]
        return (
            f"electricity,device={device},home={HOME},sensor={sensor} "
            f"{fields},boot={boot}i,seq={seq}i {time_ms}"
        )

    def check(self, device: str, boot: int, seq: int, time_ms: int) -> None:
        sensor = SENSORS[(seq - 1) % len(SENSORS)]
        reading = Reading(device, sensor, boot, seq, time_ms, raw_measurement(seq).to_measurement())
        if self.line(device, boot, seq, time_ms) != reading.to_line(HOME):
            raise AssertionError("the raw lines differ from what the collector writes")


# --- a minimal HTTP/1.1 client ------------------------------------------------------------------


class HttpError(Exception):
    pass


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            raise HttpError("chunked responses are not supported by this client")
    body = await reader.readexactly(length) if length else b""
    return status, body


@dataclass
class PhaseStats:
    name: str
    seconds: float = 0.0
    requests: int = 0
    readings: int = 0
    latencies_s: list[float] = field(default_factory=list)
    errors: int = 0
    first_error: str = ""
    exhausted: bool = False
    busy_retries: int = 0

    @property
    def rate(self) -> float:
        return self.readings / self.seconds if self.seconds else 0.0

    def error(self, what: str) -> None:
        self.errors += 1
        if not self.first_error:
            self.first_error = what


# Parses a 2xx answer and returns the readings it stored, or raises HttpError.
Checker = Callable[[int, bytes, int], int]


def collector_checker(status: int, body: bytes, sent: int) -> int:
    if status != 200:
        raise HttpError(f"HTTP {status}: {body[:200]!r}")
    answer = json.loads(body)
    if answer["duplicates"] or answer["rejected"] or answer["accepted"] != sent:
        raise HttpError(f"unexpected answer for {sent} readings: {answer}")
    accepted: int = answer["accepted"]
    return accepted


def influx_checker(status: int, body: bytes, sent: int) -> int:
    if status != 204:
        raise HttpError(f"HTTP {status}: {body[:200]!r}")
    return sent


# The Retry-After the collector sends with 503 `busy`.
BUSY_RETRY_AFTER_S = 2.0


async def closed_loop(
    port: int,
    queues: Sequence[Sequence[tuple[bytes, int]]],
    seconds: float,
    check: Checker,
    stats: PhaseStats,
) -> None:
    """One keep-alive connection per queue, each sending its requests back to back."""
    deadline = time.perf_counter() + seconds

    async def worker(queue: Sequence[tuple[bytes, int]]) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for request, count in queue:
                if time.perf_counter() >= deadline:
                    return
                sent_at = time.perf_counter()
                writer.write(request)
                status, body = await read_response(reader)
                while status == 503 and b'"busy"' in body:
                    # As a device does: wait the Retry-After the collector gives, send again.
                    stats.busy_retries += 1
                    writer.close()
                    await asyncio.sleep(BUSY_RETRY_AFTER_S)
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                    writer.write(request)
                    status, body = await read_response(reader)
                stats.latencies_s.append(time.perf_counter() - sent_at)
                stats.requests += 1
                try:
                    stats.readings += check(status, body, count)
                except HttpError as exc:
                    stats.error(str(exc))
            stats.exhausted = True
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(q) for q in queues))
    stats.seconds = time.perf_counter() - started


async def paced(
    port: int,
    queues: Sequence[Sequence[tuple[bytes, int]]],
    seconds: float,
    check: Checker,
    stats: PhaseStats,
) -> None:
    """Each device posts once a second on a new connection, like the firmware; the devices'
    phases are spread over the second. Latency runs from connect to the end of the answer."""
    start = time.perf_counter() + 0.2
    rng = random.Random(7)

    async def device(queue: Sequence[tuple[bytes, int]]) -> None:
        tick = start + rng.random()
        for request, count in queue:
            if tick >= start + seconds:
                return
            await asyncio.sleep(max(0.0, tick - time.perf_counter()))
            sent_at = time.perf_counter()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                writer.write(request)
                status, body = await read_response(reader)
            finally:
                writer.close()
            stats.latencies_s.append(time.perf_counter() - sent_at)
            stats.requests += 1
            try:
                stats.readings += check(status, body, count)
            except HttpError as exc:
                stats.error(str(exc))
            tick += 1.0
        stats.exhausted = True

    await asyncio.gather(*(device(q) for q in queues))
    stats.seconds = time.perf_counter() - start


# --- the processes: RSS and CPU ------------------------------------------------------------------


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise HttpError(f"no VmRSS for pid {pid}")


def machine_cpu_s() -> tuple[float, float]:
    """CPU seconds since boot of all cores: in processes (user, nice, system), and in interrupts
    and steal, which no process is charged for (loopback networking runs in softirq)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    tick = os.sysconf("SC_CLK_TCK")
    return (user + nice + system) / tick, (irq + softirq + steal) / tick


def cpu_s(pid: int) -> float:
    # Fields after the command name (which may hold spaces); utime and stime are 14th and 15th.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class RssSampler(threading.Thread):
    def __init__(self, pid: int, interval_s: float = 0.2) -> None:
        super().__init__(daemon=True, name="rss")
        self.pid = pid
        self.interval_s = interval_s
        self.phase = "start"
        self.samples: list[tuple[str, float, float]] = []  # phase, seconds into it, MB
        self._phase_started = time.perf_counter()
        self._halt = threading.Event()

    def set_phase(self, phase: str) -> None:
        self.phase = phase
        self._phase_started = time.perf_counter()

    def run(self) -> None:
        while not self._halt.is_set():
            self.samples.append(
                (self.phase, time.perf_counter() - self._phase_started, rss_mb(self.pid))
            )
            self._halt.wait(self.interval_s)

    def stop(self) -> None:
        self._halt.set()
        self.join()

    def values(self, phase: str, after_s: float = 0.0) -> list[float]:
        return [mb for p, t, mb in self.samples if p == phase and t >= after_s]


@dataclass
class CpuMeter:
    """CPU seconds of the collector, influxd and this load generator over one phase."""

    pids: dict[str, int]
    start: dict[str, float] = field(default_factory=dict)
    wall: float = 0.0

    def begin(self) -> None:
        self.start = {name: cpu_s(pid) for name, pid in self.pids.items()}
        self.start["processes"], self.start["interrupts"] = machine_cpu_s()
        self.wall = time.perf_counter()

    def end(self) -> dict[str, float]:
        """Per process, the share of one core used (100 = one core busy); "other" is every other
        process on the machine, which should be close to zero for a trustworthy run."""
        wall = time.perf_counter() - self.wall
        used = {
            name: 100 * (cpu_s(pid) - self.start[name]) / wall for name, pid in self.pids.items()
        }
        processes, interrupts = machine_cpu_s()
        processes_pct = 100 * (processes - self.start["processes"]) / wall
        used["other"] = max(0.0, processes_pct - sum(used.values()))
        used["interrupts"] = 100 * (interrupts - self.start["interrupts"]) / wall
        return used


# --- the benchmark ------------------------------------------------------------------------------


@dataclass
class Plan:
    seconds: float
    latency_seconds: float
    saturation_seconds: float
    workers: int
    devices: int
    py_spy: Path | None
    collector_settings: dict[str, str]


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))]


def latency_row(label: str, stats: PhaseStats) -> str:
    ms = [v * 1000 for v in stats.latencies_s]
    if not ms:
        return f"| {label} | 0 | - | - | - | - | - |"
    return (
        f"| {label} | {len(ms)} | {stats.requests / stats.seconds:,.0f} | "
        f"{percentile(ms, 50):.1f} | {percentile(ms, 95):.1f} | {percentile(ms, 99):.1f} | "
        f"{max(ms):.1f} |"
    )


def machine() -> dict[str, str]:
    model = "unknown"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    return {
        "nproc": str(len(os.sched_getaffinity(0))),
        "cpu": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def count_points(influx: InfluxClient) -> int:
    series = influx.query("SELECT count(seq) FROM electricity")
    return int(series[0].values[0][1]) if series else 0


class Bench:
    def __init__(self, plan: Plan, root: Path) -> None:
        self.plan = plan
        self.root = root
        self.devices = [f"meter-{i:03d}" for i in range(plan.devices)]
        self.lat_devices = [f"lat-{i:02d}" for i in range(LATENCY_DEVICES)]
        self.keys = {d: f"key-{d}" for d in self.devices + self.lat_devices}
        self.installation = Installation(
            root,
            device_keys=self.keys,
            home=HOME,
            influx_db=COLLECTOR_DB,
            log_level="WARNING",
            **plan.collector_settings,
        )
        self.influxd = self.installation.local
        self.collector = self.installation.collector
        self.port = self.installation.collector_port
        self.next_seq: dict[str, int] = dict.fromkeys(self.keys, 1)
        self.accepted = 0

    def queues(
        self,
        devices: Sequence[str],
        per_device: int,
        count: int,
        close: bool = False,
    ) -> list[list[tuple[bytes, int]]]:
        """Per device, `per_device` pre-encoded requests of `count` readings each, in seq order."""
        out: list[list[tuple[bytes, int]]] = []
        for device in devices:
            queue = []
            for _ in range(per_device):
                body = batch_body(device, boot_of(device), self.next_seq[device], count)
                self.next_seq[device] += count
                queue.append((post_request(self.port, self.keys[device], body, close=close), count))
            out.append(queue)
        return out

    def worker_queues(self, per_worker: int) -> list[list[tuple[bytes, int]]]:
        """Throughput work: each connection serves its own devices round robin, so one device's
        batches always arrive in order, from one connection."""
        n = self.plan.workers
        mine = [self.devices[w::n] for w in range(n)]
        out = []
        for devices in mine:
            rounds = -(-per_worker // len(devices))
            per = self.queues(devices, rounds, BATCH)
            out.append([per[i % len(devices)][i // len(devices)] for i in range(per_worker)])
        return out

    def raw_queues(self, per_worker: int, port: int) -> list[list[tuple[bytes, int]]]:
        lines = RawLines()
        base_ms = int(time.time() * 1000) - 24 * 3600 * 1000
        lines.check("raw-000", 1, 1, base_ms)
        head = (
            f"POST /write?db={RAW_DB}&precision=ms HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        ).encode("ascii")
        out = []
        for w in range(self.plan.workers):
            devices = [f"raw-{i:03d}" for i in range(w, self.plan.devices, self.plan.workers)]
            seqs = dict.fromkeys(devices, 1)
            queue = []
            for i in range(per_worker):
                device = devices[i % len(devices)]
                first = seqs[device]
                seqs[device] += BATCH
                body = "\n".join(
                    lines.line(device, boot_of(device), s, base_ms + s * READING_STEP_MS)
                    for s in range(first, first + BATCH)
                ).encode("utf-8")
                queue.append((head + b"Content-Length: %d\r\n\r\n" % len(body) + body, BATCH))
            out.append(queue)
        return out

    def run(self) -> str:
        plan = self.plan
        progress(f"starting influxd in {self.root}")
        self.influxd.start()
        raw_client = InfluxClient(self.influxd.url, RAW_DB)
        raw_client.create_database()
        influx_version = raw_client.ping()
        collector_client = InfluxClient(self.influxd.url, COLLECTOR_DB)
        progress(f"starting the collector on 127.0.0.1:{self.port}")
        self.collector.start()
        progress(f"collector pid {self.collector.pid}")
        assert self.collector.pid is not None and self.influxd.pid is not None
        cpu = CpuMeter(
            {
                "collector": self.collector.pid,
                "influxd": self.influxd.pid,
                "load generator": os.getpid(),
            }
        )
        sampler = RssSampler(self.collector.pid)
        sampler.start()
        time.sleep(1.0)
        idle_rss = rss_mb(self.collector.pid)

        # 1. raw line protocol, the ceiling.
        per_worker = int(RAW_RATE_CAP * plan.seconds / BATCH / plan.workers) + 1
        progress(f"pre-encoding {per_worker * plan.workers * BATCH:,} raw lines")
        work = self.raw_queues(per_worker, self.influxd.http_port)
        progress(f"raw /write: {plan.workers} connections, {plan.seconds:g} s")
        raw = PhaseStats("raw")
        cpu.begin()
        asyncio.run(closed_loop(self.influxd.http_port, work, plan.seconds, influx_checker, raw))
        raw_cpu = cpu.end()
        del work
        progress(f"raw: {raw.rate:,.0f} points/s")
        time.sleep(2.0)

        # 2. collector throughput.
        progress(f"warm-up: anchoring {len(self.devices) + len(self.lat_devices)} device boots")
        # Over the throughput run's connections: a burst of every device at once would set
        # the collector's memory high-water mark before the steady run (it is measured last).
        warm = PhaseStats("warm-up")
        first = self.queues(self.devices, 1, BATCH) + self.queues(self.lat_devices, 1, 1)
        warm_work = [[q[0] for q in first[w :: plan.workers]] for w in range(plan.workers)]
        sampler.set_phase("warm-up")
        asyncio.run(closed_loop(self.port, warm_work, 60, collector_checker, warm))
        self.accepted += warm.readings
        per_worker = int(COLLECTOR_RATE_CAP * plan.seconds / BATCH / plan.workers) + 1
        progress(f"pre-encoding {per_worker * plan.workers * BATCH:,} readings")
        work = self.worker_queues(per_worker)
        progress(
            f"collector throughput: {plan.workers} connections, {plan.devices} devices, "
            f"{BATCH}-reading batches, {plan.seconds:g} s"
        )
        thr = PhaseStats("throughput")
        sampler.set_phase("throughput")
        profiler = self.start_profiler(self.collector.pid)
        cpu.begin()
        asyncio.run(closed_loop(self.port, work, plan.seconds, collector_checker, thr))
        thr_cpu = cpu.end()
        if profiler is not None:
            profiler.wait()
            progress(f"py-spy profile of the throughput run: {plan.py_spy}")
        sampler.set_phase("after throughput")
        del work
        self.accepted += thr.readings
        progress(f"collector: {thr.rate:,.0f} readings/s")

        # 3. latency at the firmware's rate, then at saturation.
        per_device = int(plan.latency_seconds) + 2
        work = self.queues(self.lat_devices, per_device, 1, close=True)
        progress(
            f"latency at 1 post/s per device: {LATENCY_DEVICES} devices, {plan.latency_seconds:g} s"
        )
        paced_stats = PhaseStats("paced")
        sampler.set_phase("latency, paced")
        cpu.begin()
        asyncio.run(paced(self.port, work, plan.latency_seconds, collector_checker, paced_stats))
        paced_cpu = cpu.end()
        self.accepted += paced_stats.readings
        per_device = int(SATURATION_RATE_CAP * plan.saturation_seconds / LATENCY_DEVICES) + 1
        work = self.queues(self.lat_devices, per_device, 1)
        progress(
            f"latency at saturation: {LATENCY_DEVICES} devices closed loop, "
            f"{plan.saturation_seconds:g} s"
        )
        sat = PhaseStats("saturation")
        sampler.set_phase("latency, saturation")
        cpu.begin()
        asyncio.run(closed_loop(self.port, work, plan.saturation_seconds, collector_checker, sat))
        sat_cpu = cpu.end()
        self.accepted += sat.readings
        del work
        sampler.set_phase("idle after load")
        time.sleep(3.0)
        after_rss = rss_mb(self.collector.pid)

        # 4. every device at once (a collector restart, a network coming back): the memory peak.
        everyone = self.devices + self.lat_devices
        work = self.queues(everyone, 1, BATCH)
        progress(f"burst: {len(everyone)} devices post {BATCH} readings each at the same moment")
        burst = PhaseStats("burst")
        sampler.set_phase("burst")
        asyncio.run(closed_loop(self.port, work, 60, collector_checker, burst))
        self.accepted += burst.readings
        sampler.set_phase("idle after burst")
        time.sleep(1.0)
        sampler.stop()
        burst_rss = rss_mb(self.collector.pid)

        # 5. nothing lost.
        progress("verifying point counts in InfluxDB")
        stored = count_points(collector_client)
        raw_stored = count_points(raw_client)
        health = json.loads(asyncio.run(self._get_health()))
        self.collector.stop()
        self.influxd.stop()

        steady = sampler.values("throughput", after_s=plan.seconds / 4)
        steady += sampler.values("latency, saturation", after_s=1.0)
        steady_peak = max(
            mb for phase, _, mb in sampler.samples if phase not in ("burst", "idle after burst")
        )
        return report(
            plan=plan,
            influx_version=influx_version,
            raw=raw,
            thr=thr,
            paced=paced_stats,
            sat=sat,
            cpus={
                "raw /write": raw_cpu,
                "collector throughput": thr_cpu,
                "latency, 1 post/s": paced_cpu,
                "latency, saturation": sat_cpu,
            },
            rss={
                "idle after start": idle_rss,
                "steady under load (median)": statistics.median(steady),
                "peak before the burst": steady_peak,
                "idle after load": after_rss,
                f"after a burst of {len(everyone)} devices x {BATCH} readings": burst_rss,
            },
            burst=burst,
            accepted=self.accepted,
            stored=stored,
            raw_stored=raw_stored,
            health_accepted=int(health["counters"]["accepted"]),
            spool_depth=int(health["spool"]["depth_points"]),
        )

    def start_profiler(self, pid: int) -> subprocess.Popen[bytes] | None:
        """py-spy (pip install py-spy) sampling the collector during the throughput run."""
        if self.plan.py_spy is None:
            return None
        py_spy = shutil.which("py-spy")
        if py_spy is None:
            raise FileNotFoundError("--py-spy needs py-spy on the PATH: pip install py-spy")
        fmt = "raw" if self.plan.py_spy.suffix in (".txt", ".folded") else "flamegraph"
        return subprocess.Popen(
            [
                py_spy,
                "record",
                "--pid",
                str(pid),
                "--threads",
                "--nonblocking",
                "--rate",
                "200",
                "--duration",
                str(max(1, int(self.plan.seconds) - 1)),
                "--format",
                fmt,
                "--output",
                str(self.plan.py_spy),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    async def _get_health(self) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        _, body = await read_response(reader)
        writer.close()
        return body

    def cleanup(self) -> None:
        self.installation.close()


def report(
    *,
    plan: Plan,
    influx_version: str,
    raw: PhaseStats,
    thr: PhaseStats,
    paced: PhaseStats,
    sat: PhaseStats,
    burst: PhaseStats,
    cpus: dict[str, dict[str, float]],
    rss: dict[str, float],
    accepted: int,
    stored: int,
    raw_stored: int,
    health_accepted: int,
    spool_depth: int,
) -> str:
    m = machine()
    ok = "yes" if stored == accepted == health_accepted and raw_stored == raw.readings else "**NO**"
    errors = sum(s.errors for s in (raw, thr, paced, sat, burst))
    noisy = {phase: c["other"] for phase, c in cpus.items() if c["other"] > NOISE_PERCENT}
    p99_paced = percentile([v * 1000 for v in paced.latencies_s], 99)
    # CPU seconds of the collector process over readings stored: unlike the rates, this
    # hardly moves when other processes share the machine.
    cpu_us_per_reading = cpus["collector throughput"]["collector"] / 100 / thr.rate * 1e6
    out = [
        f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: `{command_line()}` "
        f"(throughput runs of {plan.seconds:g} s).",
        "",
        f"Machine: {m['nproc']} cores ({m['cpu']}), Python {m['python']}, "
        f"InfluxDB {influx_version}, Linux {m['kernel']}. Load generator: one asyncio process, "
        f"{plan.workers} keep-alive connections, {plan.devices} simulated devices.",
        "",
        *(
            [
                "**The machine was busy with other work** (% of a core used by other processes: "
                + ", ".join(f"{phase} {pct:.0f}" for phase, pct in noisy.items())
                + "): treat these figures as lower bounds and run again on a quiet machine.",
                "",
            ]
            if noisy
            else []
        ),
        "| measure | result | target |",
        "| --- | --- | --- |",
        f"| collector, 100-reading batches | {thr.rate:,.0f} readings/s | ≥ 20,000 readings/s "
        f"{'met' if thr.rate >= 20_000 else '**missed**'} |",
        f"| raw `/write`, 100-line requests | {raw.rate:,.0f} points/s | |",
        f"| collector / raw | {thr.rate / raw.rate:.2f} | ≥ 0.35 "
        f"{'met' if thr.rate >= 0.35 * raw.rate else '**missed**'} |",
        f"| collector CPU per reading, throughput run | {cpu_us_per_reading:.1f} µs | |",
        f"| single readings, 50 devices at 1 post/s, p99 | {p99_paced:.1f} ms | < 15 ms "
        f"{'met' if p99_paced < 15 else '**missed**'} |",
        f"| collector RSS, steady under load | {rss['steady under load (median)']:.1f} MB | "
        f"< 60 MB {'met' if rss['steady under load (median)'] < 60 else '**missed**'} |",
        "",
        "Latency of single-reading posts (ms, from sending the request to the end of the answer;"
        " at 1 post/s each post opens a new connection with `Connection: close`, like the "
        "firmware, and the time includes the connect):",
        "",
        "| load | posts | posts/s | p50 | p95 | p99 | max |",
        "| --- | --- | --- | --- | --- | --- | --- |",
        latency_row("50 devices, 1 post/s each (realistic)", paced),
        latency_row("50 devices, closed loop (saturation)", sat),
        "",
        f"Batch latency during the throughput run: p50 "
        f"{percentile(thr.latencies_s, 50) * 1000:.1f} ms, p99 "
        f"{percentile(thr.latencies_s, 99) * 1000:.1f} ms; raw `/write` p50 "
        f"{percentile(raw.latencies_s, 50) * 1000:.1f} ms.",
        "",
        f"Burst: {burst.readings:,} readings answered in {burst.seconds:.2f} s "
        f"(slowest answer {max(burst.latencies_s) * 1000:.0f} ms; "
        f"{burst.busy_retries} requests told `busy` and retried).",
        "",
        "Collector RSS (MB): " + ", ".join(f"{name} {mb:.1f}" for name, mb in rss.items()) + ".",
        "",
        "CPU use per phase (% of one core):",
        "",
        "| phase | collector | influxd | load generator | interrupts, steal | other processes |",
        "| --- | --- | --- | --- | --- | --- |",
        *(
            f"| {phase} | {c['collector']:.0f} | {c['influxd']:.0f} | {c['load generator']:.0f} "
            f"| {c['interrupts']:.0f} | {c['other']:.0f} |"
            for phase, c in cpus.items()
        ),
        "",
        f"Verification: {accepted:,} readings accepted, {stored:,} points in InfluxDB, "
        f"collector health counts {health_accepted:,}, spool depth {spool_depth}; raw: "
        f"{raw.readings:,} sent, {raw_stored:,} stored. Consistent: {ok}. "
        f"HTTP errors: {errors}.",
    ]
    for s in (raw, thr, paced, sat, burst):
        if s.errors:
            out.append(f"First error in {s.name}: {s.first_error}")
        if s.exhausted and s is not burst:
            out.append(f"Note: {s.name} used up its pre-encoded work before its time was over.")
    return "\n".join(out) + "\n"


def setting_values(pairs: Sequence[str]) -> dict[str, str]:
    """`ENERGYMON_NAME=VALUE` options as settings by name; the Installation checks the names."""
    values = {}
    for pair in pairs:
        variable, _, value = pair.partition("=")
        values[variable.removeprefix(ENV_PREFIX).lower()] = value
    return values


def command_line() -> str:
    return " ".join(["python", "bench/ingest.py", *sys.argv[1:]])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument(
        "--seconds",
        type=float,
        default=15.0,
        help="length of the raw and collector throughput runs (15)",
    )
    parser.add_argument("--quick", action="store_true", help="short runs, for a smoke test")
    parser.add_argument(
        "--workers", type=int, default=8, help="client connections for the throughput runs (8)"
    )
    parser.add_argument(
        "--devices", type=int, default=200, help="simulated devices in the throughput run (200)"
    )
    parser.add_argument(
        "--py-spy",
        type=Path,
        default=None,
        metavar="FILE",
        help="profile the collector during the throughput run with py-spy into "
        "FILE (.svg flame graph, or .txt/.folded collapsed stacks)",
    )
    parser.add_argument(
        "--collector-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="another setting of the collector (ENERGYMON_NAME=VALUE), for experiments "
        "(repeatable)",
    )
    args = parser.parse_args(argv)
    seconds = 4.0 if args.quick else args.seconds
    plan = Plan(
        seconds=seconds,
        latency_seconds=5.0 if args.quick else 20.0,
        saturation_seconds=3.0 if args.quick else 10.0,
        workers=args.workers,
        devices=max(args.devices, args.workers),
        py_spy=args.py_spy,
        collector_settings=setting_values(args.collector_env),
    )
    try:
        import uvloop
    except ImportError:
        progress("uvloop is not installed: using the default event loop")
    else:
        uvloop.install()
    with tempfile.TemporaryDirectory(prefix="energymon-bench-") as tmp:
        bench = Bench(plan, Path(tmp))
        try:
            result = bench.run()
        finally:
            bench.cleanup()
    print(result, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
