"""`energymon demo`: a whole installation on this machine, with an "internet" you can cut.

A local and a cloud influxd (from the PATH, in a temporary directory, on free ports), the
collector, the replicator and three fake Arduinos with one simulated meter each, all as real
processes (`harness.installation`). The replicator reaches the cloud through a small TCP relay
standing for the internet; cutting it makes the cloud unreachable, so the backlog builds, and
restoring it lets it drain.
"""

from __future__ import annotations

import contextlib
import json
import select
import shutil
import signal
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

from energymon.errors import InfluxError
from energymon.influx import InfluxClient
from harness.installation import Installation
from replicator.points import query

HOME = "demo"
CONVERGE_TIMEOUT_S = 60.0
METERS = (("mega-01", "kitchen"), ("mega-02", "heatpump"), ("mega-03", "workshop"))


@dataclass(frozen=True, slots=True)
class View:
    meters: dict[tuple[str, str], tuple[float, int]]
    local_points: int
    cloud_points: int
    health: dict[str, Any]


def demo_installation(root: Path, speed: float) -> Installation:
    """Three fake Arduinos with one meter each; the cloud behind a relay that can be cut."""
    installation = Installation(
        root,
        device_keys={device: f"key-{device}" for device, _ in METERS},
        relay=True,
        home=HOME,
        cloud_timeout_s=3,
        replicator_backoff_cap_s=5,
        health_interval_s=10,
    )
    for device, sensor in METERS:
        installation.add_device(device, "--sensors", sensor, "--speed", str(speed))
    return installation


def converge(installation: Installation, timeout_s: float) -> tuple[Fingerprint, Fingerprint]:
    """Wait until the cloud holds the same readings as the local server, or time runs out;
    returns both fingerprints, which are equal when they converged."""
    deadline = time.monotonic() + timeout_s
    while True:
        local = _fingerprint(installation.local_client(timeout_s=5))
        cloud = _fingerprint(installation.cloud_client(timeout_s=5))
        if local == cloud or time.monotonic() >= deadline:
            return local, cloud
        time.sleep(0.5)


def snapshot(installation: Installation) -> View:
    local = installation.local_client(timeout_s=2)
    cloud = installation.cloud_client(timeout_s=2)
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
        with urllib.request.urlopen(f"{installation.replicator_url}/health", timeout=1) as answer:
            health = json.load(answer)
    except OSError:
        health = {}
    return View(meters, local_points, cloud_points, health)


# Per meter: readings, and the sums of the energy counter and of power.
Fingerprint = dict[tuple[str, str], tuple[int, float, float]]


def _fingerprint(client: InfluxClient) -> Fingerprint:
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
        "replication lag: "
        + ("?" if lag is None else f"{lag:6.1f} s")
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
        # A closed window has no settings left to restore.
        with contextlib.suppress(termios.error, OSError):
            termios.tcsetattr(sys.stdin, termios.TCSADRAIN, saved)


def run_demo(
    speed: float, seconds: float | None, cut_at: float | None, restore_at: float | None
) -> int:
    """Runs until `q`, Ctrl-C, a closed terminal or `seconds`; then, however it was left, proves
    the cloud holds what the Pi holds, or says why it cannot, and stops every process it
    started. Its folder (with every process's log) is kept when the proof fails."""
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    root = Path(tempfile.mkdtemp(prefix="energymon-demo-"))
    installation = demo_installation(root, speed)
    screen = _Screen()
    screen.say(f"starting two influxd, the collector, the replicator and three devices in {root}")
    code = 1
    try:
        installation.start()
        _show(installation, screen, stop, seconds=seconds, cut_at=cut_at, restore_at=restore_at)
        code = _prove(installation, screen)
    finally:
        screen.say("stopping everything …")
        installation.close()
        if code == 0:
            shutil.rmtree(root, ignore_errors=True)
        else:
            screen.say(f"the logs of every process are kept in {root}")
    return code


class _Screen:
    """The terminal, which may go away (a closed window): output then goes nowhere, and the
    demo still finishes its proof and cleans up."""

    def __init__(self) -> None:
        self.gone = False

    def write(self, text: str) -> None:
        if self.gone:
            return
        try:
            sys.stdout.write(text)
            sys.stdout.flush()
        except OSError:
            self.gone = True

    def say(self, line: str) -> None:
        self.write(line + "\n")


def _show(
    installation: Installation,
    screen: _Screen,
    stop: threading.Event,
    *,
    seconds: float | None,
    cut_at: float | None,
    restore_at: float | None,
) -> None:
    relay = installation.relay
    assert relay is not None
    began = time.monotonic()
    with _keys() as interactive:
        while not stop.is_set():
            elapsed = time.monotonic() - began
            if seconds is not None and elapsed >= seconds:
                return
            # Scripted cuts, for a demo without a keyboard (and its test).
            if cut_at is not None and elapsed >= cut_at:
                relay.cut()
                cut_at = None
            if restore_at is not None and elapsed >= restore_at:
                relay.restore()
                restore_at = None
            screen.write(render(snapshot(installation), relay.connected, elapsed))
            if interactive and not screen.gone and _ready(1.0):
                key = _key()
                if key == "c":
                    relay.cut()
                elif key == "r":
                    relay.restore()
                elif key in ("q", ""):
                    return
            elif not interactive:
                stop.wait(1.0)


def _key() -> str:
    """The key pressed, or "" when the terminal went away (which ends the demo like `q`)."""
    try:
        return sys.stdin.read(1).lower()
    except OSError:
        return ""


def _ready(timeout_s: float) -> bool:
    try:
        return bool(select.select([sys.stdin], [], [], timeout_s)[0])
    except (OSError, ValueError):
        return True  # a terminal that went away reads as end of input


def _prove(installation: Installation, screen: _Screen) -> int:
    relay = installation.relay
    assert relay is not None
    if not relay.connected:
        screen.say("\nrestoring the internet, so the cloud can catch up before the proof …")
        relay.restore()
    screen.say("stopping the devices; waiting for the cloud to hold what the Pi holds …")
    # Once the devices stop, the data stops growing and can be compared.
    installation.stop(*installation.devices)
    local, cloud = converge(installation, timeout_s=CONVERGE_TIMEOUT_S)
    readings = sum(count for count, _, _ in local.values())
    if not local:
        screen.say("no reading reached the Pi yet, so there is nothing to compare: not proven")
        return 1
    if local == cloud:
        screen.say(
            f"converged: the cloud holds the same {readings} readings as the Pi "
            "(counts and sums per meter)"
        )
        return 0
    in_cloud = sum(count for count, _, _ in cloud.values())
    screen.say(
        f"NOT converged within {CONVERGE_TIMEOUT_S:.0f} s: the Pi holds {readings} readings, "
        f"the cloud {in_cloud}; see the replicator's log"
    )
    return 1
