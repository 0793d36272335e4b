"""Fleet benchmark: many homes replicating into one cloud InfluxDB at once, on loopback.

    python bench/fleet.py [--homes 100 1000] [--seconds 40] [--layout per-home|shared]

Starts one private cloud influxd with authentication on (harness.influxd), then per scenario
makes the homes and drives them from one asyncio loop in this process, one coroutine per home,
instead of one replicator process per home. Each coroutine reproduces what a caught-up
replicator sends to the cloud (replicator/sink.py through energymon.influx):
  * every `replicator_poll_interval_s` a step copies the readings older than
    `replicator_settle_s` that are not yet copied, as one `POST /write?db=...&precision=ms`
    of line protocol made by `Reading.to_line` (a caught-up 1 Hz home never fills a batch of
    `replicator_batch_size`: one reading per meter per second);
  * over its own keep-alive connection, with its own credentials (HTTP basic auth);
  * a step starts only after the previous write is acknowledged, as the sink waits for the ack.
What is left out: the replicator's checks (their queries to the cloud: a few per minute per home)
and TLS (Caddy terminates it in production, not influxd).

Layouts: `per-home` (default) is production: `energymon cloud add-home` per home (its own
database and least-privilege user). `shared` writes every home into one database with the home
tag, as a comparison.

Per scenario, first one reading per home all at once (timed: the first write into a fresh
database makes its shard), then after a warm-up, over the measured window: sustained points/s
acknowledged, lag p50/p95/max (a reading's creation to the cloud's acknowledgement of the write
carrying it: the settle delay and the poll interval are part of it by design), the write round
trip p95, the cloud influxd's CPU (from /proc, % of one core) and RSS, this process's own CPU (if
it nears 100 % the generator, not the cloud, is the limit).
Progress on stderr; a Markdown block on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from energymon.influx import InfluxClient
from energymon.schema import Measurement, Reading
from energymon.settings import Settings
from harness.influxd import InfluxServer
from replicator.cloud_admin import add_home

SENSORS = ("mains", "heatpump", "solar")
ADMIN = ("admin", "fleet-bench-admin")
SHARED_DB = "energymon_fleet"
WARMUP_S = 5.0
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True, slots=True)
class Home:
    name: str
    database: str
    authorization: str


@dataclass
class Tally:
    measuring: bool = False
    points: int = 0
    writes: int = 0
    failures: int = 0
    lags_s: list[float] = field(default_factory=list)
    round_trips_s: list[float] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Result:
    homes: int
    layout: str
    setup_s: float
    first_writes_s: float
    window_s: float
    offered_points_per_s: float
    points_per_s: float
    writes_per_s: float
    failures: int
    lag_p50_s: float
    lag_p95_s: float
    lag_max_s: float
    round_trip_p95_s: float
    cloud_cpu_pct: float
    cloud_rss_mib: float
    generator_cpu_pct: float


def log(message: str) -> None:
    print(f"[fleet {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def make_homes(server: InfluxServer, count: int, layout: str, run_id: str) -> list[Home]:
    admin = InfluxClient(server.url, "", username=ADMIN[0], password=ADMIN[1])
    try:
        if layout == "shared":
            admin.query(f'CREATE DATABASE "{SHARED_DB}"', database=None, method="POST")
            auth = basic(*ADMIN)
            return [Home(f"h{run_id}{i:04d}", SHARED_DB, auth) for i in range(count)]
        homes = []
        for i in range(count):
            access = add_home(admin, f"h{run_id}{i:04d}")
            auth = basic(access.username, access.password)
            homes.append(Home(access.home, access.database, auth))
            if (i + 1) % 100 == 0:
                log(f"add-home: {i + 1}/{count}")
        return homes
    finally:
        admin.close()


def reading_line(home: str, sensor_index: int, second: int, t_ms: int) -> str:
    power = 100.0 + (second * 7 + sensor_index * 13) % 2000 / 10
    m = Measurement(230.0 + (second % 50) / 10, power / 230, power, 1000 + second // 36, 50.0,
                    0.95, False)  # fmt: skip
    return Reading("mega-01", SENSORS[sensor_index], 1, second, t_ms, m).to_line(home)


async def read_response(reader: asyncio.StreamReader) -> int:
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("the cloud closed the connection")
    status = int(status_line.split()[1])
    length = 0
    while True:
        header = await reader.readline()
        if header in (b"\r\n", b""):
            break
        name, _, value = header.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


async def post(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, home: Home, lines: list[str]
) -> int:
    body = ("\n".join(lines) + "\n").encode()
    head = (
        f"POST /write?db={home.database}&precision=ms HTTP/1.1\r\nHost: cloud\r\n"
        f"Authorization: {home.authorization}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    writer.write(head + body)
    await writer.drain()
    return await read_response(reader)


async def first_writes(homes: list[Home], port: int) -> float:
    """One reading per home, all at once; the seconds until the last is acknowledged.

    The first write into a database makes its shard (files, WAL, index): a fresh fleet pays it
    for every home at once, and so does every fleet at each shard-group boundary, where every
    home's database starts a new shard in the same second."""

    async def one(home: Home) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            now = time.time()
            status = await post(
                reader, writer, home, [reading_line(home.name, 0, 0, int(now * 1000))]
            )
            if status != 204:
                raise RuntimeError(f"{home.name}: the cloud answered {status}")
        finally:
            writer.close()

    start = time.monotonic()
    await asyncio.gather(*(one(h) for h in homes))
    return time.monotonic() - start


async def run_home(
    home: Home, port: int, settings: Settings, deadline: float, tally: Tally
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    poll_s = settings.replicator_poll_interval_s
    settle_s = settings.replicator_settle_s
    # Homes started their meters at different moments within a second.
    phase_s = random.random()
    await asyncio.sleep(random.random() * poll_s)
    next_second = int(time.time() - phase_s)
    try:
        while time.time() < deadline:
            newest = int(time.time() - phase_s - settle_s)
            batch: list[str] = []
            created: list[float] = []
            while next_second <= newest and len(batch) < settings.replicator_batch_size:
                t_s = next_second + phase_s
                batch.extend(
                    reading_line(home.name, n, next_second, int(t_s * 1000))
                    for n in range(len(SENSORS))
                )
                created.append(t_s)
                next_second += 1
            if batch:
                sent = time.time()
                status = await post(reader, writer, home, batch)
                acked = time.time()
                if tally.measuring:
                    tally.writes += 1
                    tally.round_trips_s.append(acked - sent)
                    if status == 204:
                        tally.points += len(batch)
                        tally.lags_s.extend(acked - t for t in created)
                    else:
                        tally.failures += 1
                if status != 204:
                    raise RuntimeError(f"{home.name}: the cloud answered {status}")
            await asyncio.sleep(poll_s)
    finally:
        writer.close()


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_rss_mib(pid: int) -> float:
    pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return pages * PAGE_SIZE / 2**20


def self_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentile(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


async def scenario(
    server: InfluxServer, homes: list[Home], settings: Settings, *, seconds: float,
    setup_s: float, layout: str,
) -> Result:  # fmt: skip
    pid = server.pid
    assert pid is not None
    first_writes_s = await first_writes(homes, server.http_port)
    log(f"{len(homes)} homes: every first write acknowledged in {first_writes_s:.1f} s")
    tally = Tally()
    deadline = time.time() + WARMUP_S + seconds
    tasks = [
        asyncio.create_task(run_home(h, server.http_port, settings, deadline, tally)) for h in homes
    ]
    await asyncio.sleep(WARMUP_S)
    tally.measuring = True
    start, cloud0, self0 = time.monotonic(), proc_cpu_s(pid), self_cpu_s()
    last_points = 0
    while time.time() < deadline:
        await asyncio.sleep(min(5.0, max(0.0, deadline - time.time())))
        failed = [t for t in tasks if t.done() and t.exception() is not None]
        if failed:
            raise RuntimeError("a home failed") from failed[0].exception()
        log(f"{len(homes)} homes: {(tally.points - last_points) / 5.0:.0f} points/s acked")
        last_points = tally.points
    tally.measuring = False
    window = time.monotonic() - start
    cloud_cpu = (proc_cpu_s(pid) - cloud0) / window * 100
    generator_cpu = (self_cpu_s() - self0) / window * 100
    rss = proc_rss_mib(pid)
    await asyncio.gather(*tasks)
    return Result(
        homes=len(homes),
        layout=layout,
        setup_s=setup_s,
        first_writes_s=first_writes_s,
        window_s=window,
        offered_points_per_s=len(homes) * len(SENSORS),
        points_per_s=tally.points / window,
        writes_per_s=tally.writes / window,
        failures=tally.failures,
        lag_p50_s=percentile(tally.lags_s, 50),
        lag_p95_s=percentile(tally.lags_s, 95),
        lag_max_s=max(tally.lags_s),
        round_trip_p95_s=percentile(tally.round_trips_s, 95),
        cloud_cpu_pct=cloud_cpu,
        cloud_rss_mib=rss,
        generator_cpu_pct=generator_cpu,
    )


def markdown(results: list[Result], args: argparse.Namespace) -> str:
    rows = [
        "| homes | layout | setup s | first writes s | offered pts/s | acked pts/s | writes/s "
        "| failed | lag p50 s "
        "| lag p95 s | lag max s | write RTT p95 ms | cloud CPU % | cloud RSS MiB "
        "| generator CPU % |",
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    rows.extend(
        f"| {r.homes} | {r.layout} | {r.setup_s:.1f} | {r.first_writes_s:.1f} "
        f"| {r.offered_points_per_s:.0f} "
        f"| {r.points_per_s:.0f} | {r.writes_per_s:.0f} | {r.failures} | {r.lag_p50_s:.2f} "
        f"| {r.lag_p95_s:.2f} | {r.lag_max_s:.2f} | {r.round_trip_p95_s * 1000:.1f} "
        f"| {r.cloud_cpu_pct:.1f} | {r.cloud_rss_mib:.0f} | {r.generator_cpu_pct:.0f} |"
        for r in results
    )
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    head = (
        f"`python bench/fleet.py --homes {' '.join(map(str, args.homes))} --seconds "
        f"{args.seconds:g} --layout {args.layout}`, {when}, {os.cpu_count()} CPUs, "
        f"influxd {server_version()}"
    )
    return head + "\n\n" + "\n".join(rows)


def server_version() -> str:
    out = subprocess.run(["influxd", "version"], capture_output=True, text=True, check=False)
    return out.stdout.strip().split(" (")[0].removeprefix("InfluxDB ")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--homes", type=int, nargs="+", default=[100, 1000])
    parser.add_argument(
        "--seconds", type=float, default=40.0, help="measured window per scenario (≤ 55)"
    )
    parser.add_argument("--layout", choices=("per-home", "shared"), default="per-home")
    args = parser.parse_args()
    if args.seconds + WARMUP_S > 60:
        parser.error("a scenario is bounded to 60 s: --seconds at most 55")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    results = []
    with (
        tempfile.TemporaryDirectory(prefix="fleet-") as tmp,
        InfluxServer(Path(tmp) / "cloud", admin=ADMIN) as server,
    ):
        for run_index, count in enumerate(args.homes):
            log(f"{count} homes: making them ({args.layout})")
            t0 = time.monotonic()
            homes = make_homes(server, count, args.layout, str(run_index))
            setup_s = time.monotonic() - t0
            log(f"{count} homes made in {setup_s:.1f} s; running {args.seconds:g} s")
            result = asyncio.run(
                scenario(
                    server, homes, settings, seconds=args.seconds, setup_s=setup_s,
                    layout=args.layout,
                )
            )  # fmt: skip
            log(
                f"{count} homes: {result.points_per_s:.0f} points/s, lag p95 "
                f"{result.lag_p95_s:.2f} s, cloud CPU {result.cloud_cpu_pct:.0f} %"
            )
            results.append(result)
    print(markdown(results, args))


if __name__ == "__main__":
    main()
