"""Dashboard benchmark: every Home energy panel's query time at 24 h, 30 d and 1 y from the
rollups the panel chooses, beside the same panel computed from raw readings, in the same run.

    python bench/dashboards.py [--days 365] [--data DIR] [--repeat 20] [--raw-repeat 3]

Starts a private influxd (in DIR, or a temporary directory), writes DAYS of 1 Hz readings of
three meters (`bench/yeardata.py`, a mains, a sub-meter of it and an independent circuit) and
builds every rollup from them with `collector.rollup_rebuild.rebuild`, timed. With --data, a
directory that already holds the same days is reused as it is (the year is written once), and
the panels are timed at the end of its data, as a dashboard opened then would be.

Each panel is run as Grafana sends it: the committed JSON, `$__interval` from the range and the
panel's resolution and min interval (`energymon_grafana.interval`), `$timeFilter` in epoch
milliseconds, every target the panel's source guard lets through, one after another; a figure
is the wall time of our client's query and parse of all of them, p50 and p95 of --repeat runs.
The raw figure is the panel's meaning computed from `electricity` alone (`RAW` below): the
panel's own raw source without its guard, or, for totals and energy, the per-minute counter
differences summed as the dashboards did before the rollups. A panel of the newest readings
(the "now" row) reads the same whatever the range: timed once, nothing to compare. Panels
reading only the health and home records (not written here) are left out. With fewer DAYS than
a range, that range holds only the DAYS written. *points* is what the panel draws (the data has
no meter alarm, so *Meter alarm* draws none). Progress goes to stderr, a Markdown block to
stdout.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from yeardata import stderr_progress, write_year

from collector import rollup_rebuild
from energymon.influx import InfluxClient
from energymon.settings import Settings
from energymon_grafana.interval import duration_ms, grafana_interval
from harness.influxd import InfluxServer

HOME = "bench"
DB = "energymon"
METERS = (("bench-1", "mains"), ("bench-1", "heatpump"), ("bench-2", "solar"))
LAYOUT = "mains=bench-1/mains;submeter=bench-1/heatpump"
NOT_SUBMETER = '"sensor" =~ /^(mains|solar)$/'
ALL_METERS = '"sensor" =~ /.*/'
ZONE = "Asia/Jakarta"
DS_MIN_INTERVAL = "10s"
RANGES = {"24h": 86_400_000, "30d": 30 * 86_400_000, "1y": 365 * 86_400_000}
DASHBOARD = Path(__file__).resolve().parents[1] / "grafana" / "dashboards" / "home-energy.json"
STATE = "bench-dashboards.json"
RAW_READS = ("electricity", "energymon_1m", "energymon_1h", "energymon_day", "energymon_month")
_GUARD = re.compile(r" AND \$__interval_ms (>=|<) \d+")
_FROM = re.compile(r"\$__interval_ms (>=|<) (\d+)")


@dataclass(frozen=True)
class Panel:
    title: str
    queries: tuple[str, ...]
    max_data_points: int
    min_interval: str | None
    time_from: str | None


@dataclass(frozen=True)
class Window:
    """One panel at one dashboard range: its range, end, interval."""

    range_ms: int
    end_ms: int
    interval_ms: int
    interval: str

    def expand(self, query: str) -> str:
        time_filter = f"time >= {self.end_ms - self.range_ms}ms and time <= {self.end_ms}ms"
        out = re.sub(r"/\^\$\w+\$/", "/^.*$/", query)
        out = out.replace("$timeFilter", time_filter).replace("now()", f"{self.end_ms}ms")
        return out.replace("$__interval_ms", str(self.interval_ms)).replace(
            "$__interval", self.interval
        )


def load_panels() -> list[Panel]:
    board = json.loads(DASHBOARD.read_text())
    out = []
    for p in board["panels"]:
        queries = tuple(t["query"] for t in p.get("targets", []))
        if not queries or not any(f'"{m}"' in q for q in queries for m in RAW_READS):
            continue
        if any('"energymon_home"' in q or '"energymon_health"' in q for q in queries):
            continue
        out.append(
            Panel(p["title"], queries, p["maxDataPoints"], p.get("interval"), p.get("timeFrom"))
        )
    return out


def window(panel: Panel, range_ms: int, end_ms: int) -> Window:
    if panel.time_from is not None:
        range_ms = duration_ms(panel.time_from)
    iv = grafana_interval(range_ms, panel.max_data_points, panel.min_interval or DS_MIN_INTERVAL)
    return Window(range_ms, end_ms, iv.ms, iv.text)


def served(panel: Panel, w: Window) -> list[str]:
    """The targets whose source guard passes at this interval (InfluxDB would return nothing
    for the others: they are sent anyway, as Grafana sends them)."""
    return [w.expand(q) for q in panel.queries]


def source_of(panel: Panel, w: Window) -> str:
    for q in panel.queries:
        ok = all(
            (w.interval_ms >= int(v)) if op == ">=" else (w.interval_ms < int(v))
            for op, v in _FROM.findall(q)
        )
        if ok:
            return q.split(" FROM ")[-1].split()[0].strip('"()')
    return "?"


def minute_energy(where: str) -> str:
    return (
        'SELECT non_negative_difference(last("energy_wh")) AS "d" FROM "electricity" '
        f'WHERE {where} AND $timeFilter GROUP BY time(1m), "device", "sensor" fill(none)'
    )


def total(inner_field: str, agg: str, w: Window) -> str:
    inner = (
        f'SELECT {agg}({inner_field}) AS "v" FROM "electricity" WHERE {NOT_SUBMETER} AND '
        f'$timeFilter GROUP BY time($__interval), "device", "sensor" fill(none)'
    )
    return w.expand(f'SELECT sum("v") FROM ({inner}) WHERE $timeFilter GROUP BY time($__interval)')


def calendar_windows(end_ms: int, months: bool, count: int) -> list[tuple[int, int]]:
    zone = ZoneInfo(ZONE)
    local = datetime.fromtimestamp(end_ms / 1000, zone).replace(
        hour=0, minute=0, second=0, microsecond=0
    )
    starts = []
    for k in range(count + 1):
        if months:
            y, m = divmod(local.month - 1 - k, 12)
            starts.append(local.replace(year=local.year + y, month=m + 1, day=1))
        else:
            starts.append(datetime.fromtimestamp(local.timestamp() - k * 86_400, zone))
    edges = [*sorted(int(s.timestamp() * 1000) for s in starts), end_ms]
    return list(itertools.pairwise(edges))[-count:]


def calendar(end_ms: int, months: bool, count: int) -> list[str]:
    """Energy per local day or month from raw: one query per calendar window (InfluxQL has no
    month bucket); cost is that energy priced by the tariff, the same reading."""
    out = []
    for lo, hi in calendar_windows(end_ms, months, count):
        inner = minute_energy(NOT_SUBMETER).replace(
            "$timeFilter", f"time >= {lo}ms and time < {hi}ms"
        )
        out.append(f'SELECT sum("d") FROM ({inner})')
    return out


RAW: dict[str, Callable[[Panel, Window], list[str]]] = {
    "Home power": lambda p, w: [total('"power_w"', "mean", w)],
    "Home apparent power": lambda p, w: [
        w.expand(
            'SELECT sum("v") FROM (SELECT max("va") AS "v" FROM (SELECT "voltage_v" * '
            f'"current_a" AS "va" FROM "electricity" WHERE {NOT_SUBMETER} AND $timeFilter GROUP '
            'BY "device", "sensor") WHERE $timeFilter GROUP BY time($__interval), "device", '
            '"sensor" fill(none)) WHERE $timeFilter GROUP BY time($__interval)'
        )
    ],
    "Energy per interval": lambda p, w: [
        w.expand(
            f'SELECT sum("d") FROM ({minute_energy(NOT_SUBMETER)}) WHERE $timeFilter '
            "GROUP BY time($__interval)"
        )
    ],
    "Energy per circuit": lambda p, w: [
        w.expand(f'SELECT sum("d") FROM ({minute_energy(ALL_METERS)}) GROUP BY "device", "sensor"')
    ],
    "Energy today": lambda p, w: calendar(w.end_ms, False, 1),
    "Cost today": lambda p, w: calendar(w.end_ms, False, 1),
    "Energy this month": lambda p, w: calendar(w.end_ms, True, 1),
    "Cost this month": lambda p, w: calendar(w.end_ms, True, 1),
    "Energy per day": lambda p, w: calendar(w.end_ms, False, 30),
    "Cost per day": lambda p, w: calendar(w.end_ms, False, 30),
    "Energy per month": lambda p, w: calendar(w.end_ms, True, 12),
    "Cost per month": lambda p, w: calendar(w.end_ms, True, 12),
}


def raw_queries(panel: Panel, w: Window) -> list[str]:
    if panel.title in RAW:
        return RAW[panel.title](panel, w)
    [raw] = [q for q in panel.queries if '"electricity"' in q]
    return [w.expand(_GUARD.sub("", raw))]


def timed(client: InfluxClient, queries: list[str], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        for q in queries:
            client.query(q)
        out.append((time.perf_counter() - start) * 1000)
    return out


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) > 1 else values[0]


def prepare(client: InfluxClient, data: Path, url: str, days: int) -> dict[str, Any]:
    state_path = data / STATE
    if state_path.exists():
        state: dict[str, Any] = json.loads(state_path.read_text())
        if state["days"] == days:
            print(f"reusing {days} days in {data}", file=sys.stderr)
            return state
    client.query(f"DROP DATABASE {DB}", database=None, method="POST")
    client.create_database()
    write_start = time.perf_counter()
    start_ms, end_ms, _ = write_year(
        client, HOME, days, METERS, progress=stderr_progress("raw data")
    )
    write_s = time.perf_counter() - write_start
    settings = Settings(
        home=HOME, influx_url=url, influx_db=DB, data_dir=data / "collector", layout=LAYOUT
    )
    print("rebuilding the rollups", file=sys.stderr)
    cpu = time.process_time()
    started = time.perf_counter()
    points = rollup_rebuild.rebuild(client, settings, start_ms, end_ms + 1)
    state = {
        "days": days, "start_ms": start_ms, "end_ms": end_ms, "write_s": write_s,
        "rebuild_s": time.perf_counter() - started, "rebuild_cpu_s": time.process_time() - cpu,
        "rollup_points": points,
    }  # fmt: skip
    state_path.write_text(json.dumps(state))
    return state


def machine() -> str:
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{platform.node()}, {model or platform.machine()}, {os.cpu_count()} cores"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--data", type=Path, default=None, help="reusable data directory")
    parser.add_argument("--repeat", type=int, default=20, help="runs per panel from rollups")
    parser.add_argument("--raw-repeat", type=int, default=3, help="runs per panel from raw")
    args = parser.parse_args()
    data = args.data or Path(tempfile.mkdtemp(prefix="bench-dashboards-"))
    data.mkdir(parents=True, exist_ok=True)
    server = InfluxServer(data / "influxd")
    server.start()
    client = InfluxClient(server.url, DB, timeout_s=3600.0)
    try:
        state = prepare(client, data, server.url, args.days)
        end_ms = state["end_ms"]
        rows = []
        for panel in load_panels():
            ranged = any("$timeFilter" in q for q in panel.queries)
            ranges = RANGES if ranged and panel.time_from is None else {"any": 0}
            for name, range_ms in ranges.items():
                w = window(panel, range_ms, end_ms)
                print(f"{panel.title} at {name}", file=sys.stderr)
                queries = served(panel, w)
                # Points drawn: an empty panel where the data has some would be a fast lie.
                points = sum(len(s.values) for q in queries for s in client.query(q))
                fast = timed(client, queries, args.repeat)
                # A "now" panel reads the newest minutes of raw readings whatever the range.
                compare = ranged or panel.title in RAW
                slow = timed(client, raw_queries(panel, w), args.raw_repeat) if compare else []
                label = f"own {panel.time_from}" if panel.time_from else name
                rows.append((panel.title, label, source_of(panel, w), points, fast, slow))
    finally:
        client.close()
        server.stop()
        if args.data is None:
            shutil.rmtree(data, ignore_errors=True)
    print(f"### bench/dashboards.py, {args.days} days of 1 Hz readings of 3 meters\n")
    print(f"Machine: {machine()}. Rollups rebuilt in {state['rebuild_s']:.1f} s wall "
          f"({state['rebuild_cpu_s']:.1f} s CPU of this process, {state['rollup_points']} "
          f"points); readings written in {state['write_s']:.0f} s. Times: wall ms of all the "
          f"panel's queries through our client, {args.repeat} runs from the rollups, "
          f"{args.raw_repeat} from raw.\n")  # fmt: skip
    print(
        "| panel | range | source | points | p50 ms | p95 ms | raw p50 ms | raw p95 ms "
        "| raw / rollup |"
    )
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for title, name, source, points, fast, slow in rows:
        f50 = statistics.median(fast)
        raw = "same | same | 1x"
        if slow:
            s50 = statistics.median(slow)
            raw = f"{s50:.1f} | {p95(slow):.1f} | {s50 / f50:.1f}x"
        print(f"| {title} | {name} | {source} | {points} | {f50:.1f} | {p95(fast):.1f} | {raw} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
