"""Chaos for the time and identity model: devices whose resonators drift, that restart at once
or after a pause, re-send old boots' batches, lose replies, and get their boot counter erased,
with and without a nonce; the Pi's clock steps back and forward and is corrected; the collector
restarts and InfluxDB goes away. Every acknowledged reading must end up exactly once, and none
may replace another. The store runs in this process on a manual clock (a real process cannot
have its wall clock stepped), against a real influxd.

The suite replays fixed seeds, so that a red run means a regression and not the luck of the
draw: the four that found acknowledged readings lost to the ledger's life rules (fixed), two
that quarantined more than the bound after corrected clock steps (fixed), and two more.
Exploring is a separate, repeated command (README.md, "Tests"): ENERGYMON_CHAOS_SEED=random
draws one seed and prints it; ENERGYMON_CHAOS_SEED=N replays N."""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from collector.payload import parse_submission
from collector.statedb import StateDB
from collector.store import DurableStore
from energymon.clock import ManualClock
from energymon.errors import EnergymonError
from energymon.influx import InfluxClient
from harness.influxd import InfluxServer
from tests.collector.helpers import reading

SEEDS = (
    1653723633,
    2104123817,
    161102006,
    3431848027,
    3055173791,
    1202475086,
    1608228972,
    370695209,
)
T0 = 1_764_000_000_000
STEPS = 1500
SENSORS = ("pzem1", "pzem2")


@dataclass
class Device:
    """As the firmware behaves: keeps every reading until acknowledged, dates each meter by its
    reply, sends an earlier boot's batches with that boot's last uptime and no nonce."""

    name: str
    drift: float
    sends_nonce: bool
    rng: random.Random
    boot: int = 1
    nonce: int = 0
    uptime_ms: float = 0.0
    seq: int = 0
    # Per boot: its readings not yet acknowledged, and its last uptime.
    unsent: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    last_uptime: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.restart(self.boot)

    def restart(self, boot: int) -> None:
        self.boot, self.seq, self.uptime_ms = boot, 0, 0.0
        self.nonce = self.rng.randrange(1, 2**32)
        self.unsent.setdefault(boot, [])

    def run(self, seconds: float, energy: list[int]) -> None:
        self.uptime_ms += seconds * 1000 * (1 + self.drift)
        for i, sensor in enumerate(SENSORS):
            self.seq += 1
            energy[0] += 1
            uptime = round(self.uptime_ms) + 40 * i
            self.unsent[self.boot].append(
                reading(self.seq, uptime, sensor=sensor, energy_wh=energy[0])
            )
            self.last_uptime[self.boot] = uptime

    def body(self) -> dict[str, Any] | None:
        boot = next((b for b in sorted(self.unsent) if self.unsent[b]), None)
        if boot is None:
            return None
        batch = self.unsent[boot][:50]
        current = boot == self.boot
        document: dict[str, Any] = {
            "device": self.name,
            "boot": boot,
            "uptime_ms": round(self.uptime_ms) + 100 if current else self.last_uptime[boot],
            "readings": batch,
        }
        if current and self.sends_nonce:
            document["boot_nonce"] = self.nonce
        return document

    def acknowledged(self, document: dict[str, Any]) -> None:
        seqs = {r["seq"] for r in document["readings"]}
        boot = document["boot"]
        self.unsent[boot] = [r for r in self.unsent[boot] if r["seq"] not in seqs]


def _seeds() -> list[int]:
    chosen = os.environ.get("ENERGYMON_CHAOS_SEED")
    if chosen is None:
        return list(SEEDS)
    return [random.randrange(2**32) if chosen == "random" else int(chosen)]


@pytest.mark.parametrize("seed", _seeds())
def test_every_acknowledged_reading_lands_once_whatever_the_clocks_do(
    seed: int, own_influx: InfluxServer, tmp_path: Path
) -> None:
    print(f"identity chaos seed {seed}")
    rng = random.Random(seed)
    influx = InfluxClient(own_influx.url, "energymon", timeout_s=1.0)
    clock = ManualClock(T0)
    data_dir = tmp_path / "state"

    def open_store() -> DurableStore:
        return DurableStore(
            StateDB(data_dir),
            influx,
            home="h",
            spool_max_bytes=10**9,
            clock=clock,
            write_timeout_s=1.0,
        )

    store = open_store()
    devices = [
        Device(f"dev-{i}", rng.uniform(-0.005, 0.005), sends_nonce=i % 3 != 0, rng=rng)
        for i in range(4)
    ]
    energy = [0]
    acked: set[int] = set()
    skew_s = 0.0
    events: list[str] = []
    for _ in range(STEPS):
        seconds = rng.choice((1.0, 1.0, 2.0, 5.0))
        clock.advance(seconds)
        for device in devices:
            device.run(seconds, energy)
        roll = rng.random()
        if roll < 0.02:
            device = rng.choice(devices)
            pause_s = rng.choice((0.0, 0.0, 30.0, 3600.0))
            clock.advance(pause_s)
            device.restart(device.boot + 1)
            events.append(f"{device.name} restarts")
        elif roll < 0.025:
            device = rng.choice(devices)
            # An erased EEPROM on a fresh board: boot 1 again; nothing unsent comes along.
            device.unsent.clear()
            device.last_uptime.clear()
            device.restart(1)
            events.append(f"{device.name} starts its boots again")
        elif roll < 0.035 and skew_s == 0.0:
            skew_s = rng.choice((-86_400.0, -600.0, 600.0, 3 * 86_400.0))
            clock.jump(skew_s)
            events.append(f"the Pi's clock steps {skew_s:+.0f} s")
        elif roll < 0.055 and skew_s != 0.0:
            clock.jump(-skew_s)
            skew_s = 0.0
            events.append("the Pi's clock is corrected")
        elif roll < 0.065:
            store.db.close()
            store = open_store()
            events.append("the collector restarts")
        elif roll < 0.075:
            own_influx.stop() if own_influx.running else own_influx.start()
            events.append("InfluxDB stops or starts")
        for device in devices:
            document = device.body()
            if document is None or rng.random() < 0.3:
                continue
            try:
                store.commit([parse_submission(document, 1000, clock.now_ms())])
            except EnergymonError:
                continue
            if rng.random() < 0.1:
                continue  # the reply was lost: the device sends the batch again
            device.acknowledged(document)
            acked.update(int(r["energy_wh"]) for r in document["readings"])
        if not own_influx.running and rng.random() < 0.05:
            own_influx.start()
    if not own_influx.running:
        own_influx.start()
    while not store.spool.empty:
        assert store.drain_once(10_000).error is None

    stored = [
        int(r["energy_wh"])
        for s in influx.query("SELECT energy_wh FROM electricity")
        for r in s.records()
    ]
    quarantined = [
        int(json_energy(r["payload"]))
        for s in influx.query("SELECT payload FROM energymon_quarantine")
        for r in s.records()
    ]
    everywhere = stored + quarantined
    missing = acked - set(everywhere)
    assert not missing, (seed, events, sorted(missing)[:10])
    assert len(stored) == len(set(stored)), (seed, "a reading was stored twice")
    # Quarantine is the exception: only readings that met a wrong clock's leftovers.
    assert len(quarantined) <= len(acked) // 20, (seed, events, len(quarantined))


def json_energy(payload: Any) -> int:
    return int(json.loads(str(payload))["energy_wh"])
