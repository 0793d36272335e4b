"""`energymon demo`: a whole installation on this machine, with an "internet" you can cut.

A local and a cloud influxd (from the PATH, in a temporary directory, on free ports), the
collector, the replicator and three fake Arduinos with one simulated meter each, all as real
processes. The replicator reaches the cloud through a small TCP relay standing for the internet;
cutting it makes the cloud unreachable, so the backlog builds, and restoring it lets it drain.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import termios
import threading
import time
import tty
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from energymon.errors import EnergymonError, InfluxError
from energymon.influx import InfluxClient
from energymon.influxd import InfluxServer, free_port
from replicator.points import query

HOME = "demo"
METERS = (("mega-01", "kitchen"), ("mega-02", "heatpump"), ("mega-03", "workshop"))


class Relay:
    """A TCP relay that can be cut: while cut, open connections are closed and new ones refused
    (accepted and closed at once), as when the uplink goes down."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.connected = True
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._open: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self) -> None:
        self.connected = False
        with self._lock:
            for s in self._open:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
            self._open.clear()

    def restore(self) -> None:
        self.connected = True

    def close(self) -> None:
        self._stop = True
        self.cut()
        self._listener.close()

    def _accept(self) -> None:
        while not self._stop:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self.connected:
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._open.update((client, upstream))
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass  # the other direction or a cut closed the sockets: the pipe is done
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.close()
            with self._lock:
                self._open.discard(source)
                self._open.discard(sink)


@dataclass(frozen=True, slots=True)
class View:
    meters: dict[tuple[str, str], tuple[float, int]]
    local_points: int
    cloud_points: int
    health: dict[str, Any]


class Demo:
    def __init__(self, root: Path, speed: float) -> None:
        self.root = root
        self.speed = speed
        self.local_server = InfluxServer(root / "influx-local")
        self.cloud_server = InfluxServer(root / "influx-cloud")
        self.processes: list[subprocess.Popen[bytes]] = []
        self.devices: list[subprocess.Popen[bytes]] = []
        self.relay: Relay | None = None
        self.collector_port = free_port()
        self.health_port = free_port()
        self.log = (root / "demo.log").open("ab")

    def start(self) -> None:
        self.local_server.start()
        self.cloud_server.start()
        self.relay = Relay(self.cloud_server.http_port)
        keys = ",".join(f"{device}=key-{device}" for device, _ in METERS)
        env = os.environ | {
            "ENERGYMON_HOME": HOME,
            "ENERGYMON_DATA_DIR": str(self.root / "data"),
            "ENERGYMON_INFLUX_URL": self.local_server.url,
            "ENERGYMON_INFLUX_DB": "energymon",
            "ENERGYMON_LISTEN": f"127.0.0.1:{self.collector_port}",
            "ENERGYMON_DEVICE_KEYS": keys,
            "ENERGYMON_CLOUD_URL": f"http://127.0.0.1:{self.relay.port}",
            "ENERGYMON_CLOUD_DB": "energymon",
            "ENERGYMON_CLOUD_TIMEOUT_S": "3",
            "ENERGYMON_REPLICATOR_LISTEN": f"127.0.0.1:{self.health_port}",
            "ENERGYMON_REPLICATOR_BACKOFF_CAP_S": "5",
            "ENERGYMON_HEALTH_INTERVAL_S": "10",
        }
        (self.root / "data").mkdir(exist_ok=True)
        self._spawn(["collector"], env)
        self._wait_for_port(self.collector_port)
        self._spawn(["replicator", "run"], env)
        for device, sensor in METERS:
            self._spawn_device(
                ["simulate", "device", "--url", f"http://127.0.0.1:{self.collector_port}",
                 "--device", device, "--key", f"key-{device}", "--sensors", sensor,
                 "--speed", str(self.speed), "--state-dir", str(self.root / device)],
                env,
            )

    def _spawn(self, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [sys.executable, "-m", "energymon.cli", *args],
            env=env, stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL,
        )
        self.processes.append(process)
        return process

    def _spawn_device(self, args: list[str], env: dict[str, str]) -> None:
        self.devices.append(self._spawn(args, env))

    def stop_devices(self) -> None:
        """Stop the fake Arduinos, so the data stops growing and can be compared."""
        for process in self.devices:
            process.send_signal(signal.SIGTERM)
        for process in self.devices:
            process.wait(timeout=15)

    def converge(self, timeout_s: float) -> tuple[Fingerprint, Fingerprint]:
        """Wait until the cloud holds the same readings as the local server, or time runs out;
        returns both fingerprints, which are equal when they converged."""
        deadline = time.monotonic() + timeout_s
        while True:
            local, cloud = _fingerprint(self.local_server.url), _fingerprint(self.cloud_server.url)
            if (local == cloud and local) or time.monotonic() >= deadline:
                return local, cloud
            time.sleep(0.5)

    @staticmethod
    def _wait_for_port(port: int, wait_s: float = 30.0) -> None:
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                return
            time.sleep(0.1)
        raise EnergymonError(f"nothing listens on port {port}; see the demo log")

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self.relay is not None:
            self.relay.close()
        self.local_server.stop()
        self.cloud_server.stop()
        self.log.close()

    def view(self) -> View:
        local = InfluxClient(self.local_server.url, "energymon", timeout_s=2)
        cloud = InfluxClient(self.cloud_server.url, "energymon", timeout_s=2)
        meters: dict[tuple[str, str], tuple[float, int]] = {}
        try:
            for s in query(
                local,
                f"SELECT last(power_w), last(energy_wh) FROM electricity WHERE home = '{HOME}' "
                "GROUP BY device, sensor",
            ):
                row = s.values[0]
                meters[(s.tags["device"], s.tags["sensor"])] = (row[1], row[2])
            local_points = _count(local)
            cloud_points = _count(cloud)
        except InfluxError:
            local_points = cloud_points = -1
        finally:
            local.close()
            cloud.close()
        try:
            url = f"http://127.0.0.1:{self.health_port}/health"
            with urllib.request.urlopen(url, timeout=1) as response:
                health = json.load(response)
        except OSError:
            health = {}
        return View(meters, local_points, cloud_points, health)


# Per meter: readings, and the sums of the energy counter and of power.
Fingerprint = dict[tuple[str, str], tuple[int, float, float]]


def _fingerprint(url: str) -> Fingerprint:
    client = InfluxClient(url, "energymon", timeout_s=5)
    try:
        series = query(
            client,
            "SELECT count(power_w), sum(energy_wh), sum(power_w) FROM electricity "
            f"WHERE home = '{HOME}' GROUP BY device, sensor",
        )
    finally:
        client.close()
    return {
        (s.tags["device"], s.tags["sensor"]): (int(s.values[0][1]), s.values[0][2], s.values[0][3])
        for s in series
    }


def _count(client: InfluxClient) -> int:
    series = query(client, f"SELECT count(power_w) FROM electricity WHERE home = '{HOME}'")
    return int(series[0].values[0][1]) if series else 0


def render(view: View, internet: bool, elapsed_s: float) -> str:
    lines = [
        f"energymon demo — {elapsed_s:5.0f} s   internet: "
        + ("\x1b[32mconnected\x1b[0m" if internet else "\x1b[31mCUT\x1b[0m"),
        "",
        f"{'device':<10} {'meter':<10} {'power':>10} {'energy':>12}",
    ]
    for (device, sensor), (power_w, energy_wh) in sorted(view.meters.items()):
        lines.append(f"{device:<10} {sensor:<10} {power_w:>8.1f} W {energy_wh:>9} Wh")
    h = view.health
    lag = h.get("lag_s")
    lines += [
        "",
        f"readings  local: {view.local_points:>8}   cloud: {view.cloud_points:>8}   "
        f"missing in the cloud: {max(0, view.local_points - view.cloud_points):>6}",
        "replication lag: " + ("?" if lag is None else f"{lag:6.1f} s")
        + f"   failures in a row: {h.get('consecutive_failures', '?')}"
        + f"   dead letters: {h.get('dead_letters', '?')}",
        "",
        "c: cut the internet   r: restore it   q or Ctrl-C: quit",
    ]
    return "\x1b[H\x1b[2J" + "\n".join(lines) + "\n"


@contextlib.contextmanager
def _keys() -> Iterator[bool]:
    """Single key presses without Enter, when stdin is a terminal."""
    if not sys.stdin.isatty():
        yield False
        return
    saved = termios.tcgetattr(sys.stdin)
    tty.setcbreak(sys.stdin.fileno())
    try:
        yield True
    finally:
        termios.tcsetattr(sys.stdin, termios.TCSADRAIN, saved)


def run_demo(speed: float, seconds: float | None, cut_at: float | None,
             restore_at: float | None) -> int:
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    with tempfile.TemporaryDirectory(prefix="energymon-demo-") as tmp:
        demo = Demo(Path(tmp), speed)
        print(f"starting two influxd, the collector, the replicator and three devices in {tmp}")
        began = time.monotonic()
        try:
            demo.start()
            assert demo.relay is not None
            with _keys() as interactive:
                while not stop.is_set():
                    elapsed = time.monotonic() - began
                    if seconds is not None and elapsed >= seconds:
                        break
                    # Scripted cuts, for a demo without a keyboard (and its test).
                    if cut_at is not None and elapsed >= cut_at:
                        demo.relay.cut()
                        cut_at = None
                    if restore_at is not None and elapsed >= restore_at:
                        demo.relay.restore()
                        restore_at = None
                    sys.stdout.write(render(demo.view(), demo.relay.connected, elapsed))
                    sys.stdout.flush()
                    if interactive and select.select([sys.stdin], [], [], 1.0)[0]:
                        key = sys.stdin.read(1).lower()
                        if key == "c":
                            demo.relay.cut()
                        elif key == "r":
                            demo.relay.restore()
                        elif key == "q":
                            break
                    elif not interactive:
                        stop.wait(1.0)
            if demo.relay.connected:
                print("\nstopping the devices; waiting for the cloud to hold what the Pi holds …")
                demo.stop_devices()
                local, cloud = demo.converge(timeout_s=60)
                readings = sum(count for count, _, _ in local.values())
                if local == cloud:
                    print(f"converged: the cloud holds the same {readings} readings as the Pi "
                          "(counts and sums per meter)")
                else:
                    print(f"NOT converged: the Pi holds {readings} readings, the cloud "
                          f"{sum(count for count, _, _ in cloud.values())}")
                    return 1
        finally:
            print("stopping everything …")
            demo.stop()
    return 0
