"""Chaos: devices post while the collector, the replicator and both influxd are SIGKILLed and
restarted at random moments, the proxy in front of the cloud misbehaves (redirects, bursts of a
load balancer's 404 and other statuses, a trickled reply) and the clock jumps an hour ahead and
back; every acknowledged reading must end up exactly once, with the same time stamp and values,
in both databases, and local and cloud must hold the same points, without an operator."""

from __future__ import annotations

import json
import os
import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from energymon import journal
from energymon.clock import SystemClock
from energymon.influx import InfluxClient
from energymon.schema import Measurement, Reading
from harness import faultproxy
from harness.faultproxy import FaultProxy
from harness.influxd import InfluxServer
from harness.installation import Installation
from replicator.service import build_service

HOME = "chaos"
DEVICES = ("mega-01", "mega-02", "mega-03")
CHAOS_S = 40.0


@dataclass
class Device:
    """A device as the firmware behaves: keeps every reading until it is acknowledged."""

    name: str
    url: str
    started: float = field(default_factory=time.monotonic)
    seq: int = 0
    uptime_ms: int = 0
    pending: list[dict[str, object]] = field(default_factory=list)
    acked: dict[int, dict[str, object]] = field(default_factory=dict)

    def measure(self, count: int) -> None:
        for _ in range(count):
            self.seq += 1
            s = self.seq
            # Distinct times: two readings of one meter at the same millisecond are one point.
            now_ms = 1000 + round((time.monotonic() - self.started) * 1000)
            self.uptime_ms = max(self.uptime_ms + 1, now_ms - 20)
            self.pending.append(
                {
                    "seq": s,
                    "uptime_ms": self.uptime_ms,
                    "sensor": "pzem1",
                    "voltage_v": round(220 + s % 200 / 10, 1),
                    "current_a": round(s % 1000 / 1000, 3),
                    "power_w": round(s % 5000 / 10, 1),
                    "energy_wh": 1000 + s,
                    "frequency_hz": 50.0,
                    "power_factor": 0.95,
                    "alarm": s % 7 == 0,
                }
            )

    def send(self) -> None:
        batch = self.pending[:50]
        if not batch:
            return
        body = {
            "device": self.name,
            "boot": 1,
            "uptime_ms": 1000 + round((time.monotonic() - self.started) * 1000),
            "readings": batch,
        }
        try:
            response = requests.post(
                f"{self.url}/api/v1/readings",
                json=body,
                timeout=5,
                headers={"Authorization": f"Bearer key-{self.name}"},
            )
        except requests.RequestException:
            return
        if response.status_code != 200:
            return
        ack = response.json()["ack"]
        for reading in batch:
            if int(str(reading["seq"])) <= ack:
                self.acked[int(str(reading["seq"]))] = reading
        self.pending = [r for r in self.pending if int(str(r["seq"])) > ack]


@pytest.fixture
def cloud(tmp_path: Path) -> Iterator[InfluxServer]:
    server = InfluxServer(tmp_path / "influx-cloud")
    yield server
    server.stop()


@pytest.fixture
def proxy(cloud: InfluxServer) -> Iterator[FaultProxy]:
    """The cloud's front proxy: the replicator reaches the cloud only through it."""
    with FaultProxy(cloud.http_port) as p:
        yield p


@pytest.fixture
def installation(tmp_path: Path, cloud: InfluxServer, proxy: FaultProxy) -> Iterator[Installation]:
    inst = Installation(
        tmp_path,
        device_keys={d: f"key-{d}" for d in DEVICES},
        cloud=cloud,
        home=HOME,
        cloud_url=proxy.url,
        influx_timeout_s=1,
        cloud_timeout_s=3,
        replicator_backoff_cap_s=1,
        replicator_journal_settle_s=5,
    )
    cloud.start()
    inst.start()
    yield inst
    inst.close()


def _proxy_faults(
    proxy: FaultProxy, direct_url: str, rng: random.Random, stop: threading.Event
) -> list[str]:
    """What real front proxies do, one fault at a time for a few seconds, each kind at least
    once: a redirect to the real server (which must never be followed: a streamed body is
    re-sent empty and acknowledged), bursts of a load balancer's 404 page, 408 and 503, a reply
    trickled a byte at a time (cut by the replicator's overall deadline)."""
    kinds = {
        "redirect 307": lambda: faultproxy.redirect(307, direct_url),
        "redirect 308": lambda: faultproxy.redirect(308, direct_url, paths=["/write"]),
        "redirect 301": lambda: faultproxy.redirect(301, direct_url),
        "404 burst": lambda: faultproxy.status(404, b"404 page not found\n"),
        "408 burst": lambda: faultproxy.status(408, b"", paths=["/write"]),
        "503 retry-after": lambda: faultproxy.status(503, headers=[("Retry-After", "1")]),
        "trickle": lambda: faultproxy.trickle(0.5, paths=["/write"]),
    }
    first_round = list(kinds)
    rng.shuffle(first_round)
    applied: list[str] = []
    while not stop.is_set():
        name = first_round.pop() if first_round else rng.choice(list(kinds))
        proxy.set(kinds[name]())
        applied.append(name)
        stop.wait(rng.uniform(1.0, 3.0))
        proxy.clear()
        stop.wait(rng.uniform(0.5, 2.0))
    proxy.clear()
    return applied


class SkewedClock(SystemClock):
    """The system clock with an offset that a test sets: what NTP stepping the clock does."""

    offset_ms = 0

    def now_ms(self) -> int:
        return super().now_ms() + self.offset_ms


def _clock_jump(installation: Installation, seconds_ahead: int) -> list[float]:
    """The Pi's clock runs `seconds_ahead` ahead for a few seconds and is then set right: the
    replicator (in this process, with a clock the test steps) and a collector stamping with that
    clock (its points and journal entries, written here) both see it. Returns the lags the
    replicator's health reported meanwhile."""
    installation.stop("replicator")
    clock = SkewedClock()
    service = build_service(installation.settings, clock)
    stop = threading.Event()
    runner = threading.Thread(target=service.run_forever, args=(stop,))
    runner.start()
    local = installation.local_client()
    lags: list[float] = []
    try:
        clock.offset_ms = seconds_ahead * 1000
        for seq in range(1, 21):
            stamped = clock.now_ms() - 100
            measured = Measurement(230.0, 1.0, 230.0, 1000 + seq, 50.0, 1.0, False)
            line = Reading("clock-jump", "pzem1", 1, seq, stamped, measured)
            with sqlite3.connect(installation.settings.data_dir / journal.STATE_DB_NAME,
                                 timeout=30) as conn:  # fmt: skip
                journal.record(conn, recorded_ms=clock.now_ms(), min_time_ms=stamped,
                               max_time_ms=stamped, points=1)  # fmt: skip
            local.write([line.to_line(HOME)])
            lags.append(service.health().lag_s or 0.0)
            time.sleep(0.2)
        clock.offset_ms = 0
        until = time.monotonic() + 8
        while time.monotonic() < until:
            lags.append(service.health().lag_s or 0.0)
            time.sleep(0.2)
    finally:
        stop.set()
        runner.join()
        service.close()
        local.close()
    installation.start("replicator")
    return lags


def _points(client: InfluxClient) -> dict[tuple[str, int], list[tuple[object, ...]]]:
    out: dict[tuple[str, int], list[tuple[object, ...]]] = {}
    query = f"SELECT * FROM electricity WHERE home = '{HOME}' GROUP BY *"
    for series in (s for chunk in client.query_chunks(query) for s in chunk):
        for r in series.records():
            values = (
                r["time"],
                r["voltage_v"],
                r["current_a"],
                r["power_w"],
                r["energy_wh"],
                r["alarm"],
            )
            out.setdefault((series.tags["device"], r["seq"]), []).append(values)
    return out


def test_every_acknowledged_reading_survives_random_kills(
    installation: Installation, proxy: FaultProxy, cloud: InfluxServer
) -> None:
    seed = int(os.environ.get("CHAOS_SEED", "0")) or random.randrange(2**32)
    rng = random.Random(seed)
    faults_stop = threading.Event()
    faults: list[str] = []
    faulting = threading.Thread(
        target=lambda: faults.extend(_proxy_faults(proxy, cloud.url, rng, faults_stop))
    )
    faulting.start()
    url = installation.collector_url
    devices = [Device(name, url) for name in DEVICES]
    stop = threading.Event()

    def post(device: Device) -> None:
        while not stop.is_set():
            device.measure(10)  # ten readings per 100 ms: an accelerated meter
            device.send()
            stop.wait(0.1)

    threads = [threading.Thread(target=post, args=(d,)) for d in devices]
    for t in threads:
        t.start()
    began = time.monotonic()
    kills: list[str] = []
    # Every process is killed at least once, in a random order, then at random.
    first_round = ["collector", "replicator", "local", "cloud"]
    rng.shuffle(first_round)
    try:
        while time.monotonic() - began < CHAOS_S or first_round:
            time.sleep(rng.uniform(1.0, 4.0))
            victim = (
                first_round.pop()
                if first_round
                else rng.choice(("collector", "replicator", "local", "cloud"))
            )
            installation.kill(victim)
            kills.append(victim)
            time.sleep(rng.uniform(0.2, 2.0))
            installation.start(victim)
        faults_stop.set()
        faulting.join()
        lags = _clock_jump(installation, seconds_ahead=3600)
        # Let the devices hand over what they still hold.
        deadline = time.monotonic() + 30
        while any(d.pending for d in devices) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        faults_stop.set()
        stop.set()
        for t in threads:
            t.join()
    for d in devices:
        # Readings measured after the last acknowledgement were never promised to be stored.
        d.pending.clear()
    acked = {(d.name, seq): r for d in devices for seq, r in d.acked.items()}
    context = f"CHAOS_SEED={seed}, kills: {kills}, proxy faults: {faults}"
    assert set(kills) == {"collector", "replicator", "local", "cloud"}, context
    assert {"redirect 307", "404 burst", "trickle"} <= set(faults), context
    assert len(acked) > 1000, context

    local = installation.local_client(timeout_s=30)
    cloud_db = installation.cloud_client(timeout_s=30)
    deadline = time.monotonic() + 60
    while True:
        local_points, cloud_points = _points(local), _points(cloud_db)
        if (
            all(k in cloud_points and k in local_points for k in acked)
            and local_points == cloud_points
        ) or time.monotonic() > deadline:
            break
        time.sleep(1)

    for db, stored in (("local", local_points), ("cloud", cloud_points)):
        missing = [k for k in acked if k not in stored]
        assert not missing, f"{db} lacks {len(missing)} acknowledged readings; {context}"
        twice = [k for k, v in stored.items() if len(v) != 1]
        assert not twice, f"{db} holds readings more than once: {twice[:5]}; {context}"
    # Point for point: also the readings stored but never acknowledged, and the ones stamped
    # by the clock that ran ahead.
    assert local_points == cloud_points, (
        f"local only: {sorted(set(local_points) - set(cloud_points))[:5]}, cloud only: "
        f"{sorted(set(cloud_points) - set(local_points))[:5]}; {context}"
    )
    assert sum(1 for device, _ in local_points if device == "clock-jump") == 20, context
    for key, reading in acked.items():
        [local_value] = local_points[key]
        assert cloud_points[key] == [local_value]
        assert local_value[1:] == (
            reading["voltage_v"],
            reading["current_a"],
            reading["power_w"],
            reading["energy_wh"],
            reading["alarm"],
        )
    assert min(lags) >= 0, f"negative lag {min(lags)} s after the clock jump; {context}"
    print(json.dumps({"seed": seed, "acked": len(acked), "kills": kills, "faults": faults}))


def drop_cloud_database(installation: Installation) -> None:
    """Fault: the cloud database disappears with everything in it (an operator's mistake, a
    restored cloud volume). The replicator has to notice and copy the whole history again."""
    cloud = installation.cloud_client()
    cloud.query(f'DROP DATABASE "{cloud.database}"', database=None, method="POST")
    cloud.close()


def _replicator_health(installation: Installation) -> dict[str, object]:
    try:
        response = requests.get(f"{installation.replicator_url}/health", timeout=2)
    except requests.RequestException:
        return {}
    body: dict[str, object] = response.json()
    return body


@pytest.fixture
def checked_installation(tmp_path: Path) -> Iterator[Installation]:
    inst = Installation(
        tmp_path,
        device_keys={d: f"key-{d}" for d in DEVICES},
        home=HOME,
        cloud_timeout_s=3,
        replicator_backoff_cap_s=1,
        replicator_journal_settle_s=5,
        replicator_cloud_check_interval_s=2,
        replicator_history_check_interval_s=5,
    )
    inst.start()
    yield inst
    inst.close()


def test_a_dropped_cloud_database_ends_equal_without_an_operator(
    checked_installation: Installation,
) -> None:
    installation = checked_installation
    devices = [Device(name, installation.collector_url) for name in DEVICES]
    stop = threading.Event()

    def post(device: Device) -> None:
        while not stop.is_set():
            device.measure(10)
            device.send()
            stop.wait(0.1)

    threads = [threading.Thread(target=post, args=(d,)) for d in devices]
    for t in threads:
        t.start()
    try:
        # Long enough for the history to outgrow what the journal still announces, and for the
        # replicator to have checked it (its health says so); then the cloud loses it all.
        time.sleep(15)
        assert _replicator_health(installation).get("verify") is not None
        drop_cloud_database(installation)
        time.sleep(5)
        deadline = time.monotonic() + 30
        while any(d.pending for d in devices) and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        stop.set()
        for t in threads:
            t.join()
    acked = {(d.name, seq) for d in devices for seq in d.acked}
    assert len(acked) > 500
    local = installation.local_client(timeout_s=30)
    cloud = installation.cloud_client(timeout_s=30)
    deadline = time.monotonic() + 60
    while True:
        local_points, cloud_points = _points(local), _points(cloud)
        if (acked <= set(local_points) and cloud_points == local_points) or (
            time.monotonic() > deadline
        ):
            break
        time.sleep(1)
    assert acked <= set(local_points)
    missing = [k for k in local_points if k not in cloud_points]
    assert not missing, f"the cloud lacks {len(missing)} points after the drop"
    assert cloud_points == local_points
