"""The device side of docs/api.md against a real collector process backed by a real influxd.

Every golden body, posted byte for byte, must be accepted and stored with the values it encodes;
the fake device must get everything it measured stored, across a restart with an SD card too.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import requests

from energymon.schema import FIELDS, RawMeasurement
from harness.influxd import InfluxServer
from simulator.device import FakeDevice
from simulator.transport import RequestsTransport, TransportError
from simulator.wire import DeviceReading
from tests.conftest import RunningCollector

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p.name.removesuffix(".input.json") for p in GOLDEN.glob("*.input.json"))
KEY = "golden-key"


def _raw(item: Mapping[str, Any]) -> RawMeasurement:
    return RawMeasurement(*(item[f.raw_name] for f in FIELDS))


def _stored(raw: RawMeasurement) -> dict[str, Any]:
    """What InfluxDB must return for these registers."""
    return dict(zip((f.name for f in FIELDS), raw.to_measurement().values(), strict=True))


def _rows(c: RunningCollector) -> list[dict[str, Any]]:
    return [r for s in c.influx.query('SELECT * FROM "electricity"') for r in s.records()]


@pytest.fixture
def golden_collector(
    tmp_path: Path,
    influx_server: InfluxServer,
    start_collector: Callable[..., RunningCollector],
) -> RunningCollector:
    devices = {json.loads((GOLDEN / f"{n}.input.json").read_text())["device"] for n in CASES}
    keys = tmp_path / "device-keys"
    keys.write_text("".join(f"{d}={KEY}\n" for d in sorted(devices)), encoding="utf-8")
    return start_collector(influx_server, device_keys_file=keys)


def test_every_golden_body_is_accepted_and_stored(golden_collector: RunningCollector) -> None:
    expected: dict[tuple[str, int, int], dict[str, Any]] = {}
    for name in CASES:
        case = json.loads((GOLDEN / f"{name}.input.json").read_text(encoding="utf-8"))
        body = (GOLDEN / f"{name}.body.json").read_bytes()
        response = requests.post(
            f"{golden_collector.url}/api/v1/readings",
            data=body,
            headers={
                "Authorization": f"Bearer {KEY}",
                "Content-Type": "application/json",
                "Connection": "close",
            },
            timeout=30,
        )
        assert response.status_code == 200, (name, response.text)
        # Readings the meter cannot produce (energy beyond its counter) are set aside, not lost.
        valid = [r for r in case["readings"] if _raw(r).to_measurement().problem() is None]
        reply = response.json()
        assert reply["ack"] == max((r["seq"] for r in case["readings"]), default=None), name
        assert (reply["accepted"], reply["duplicates"]) == (len(valid), 0), name
        assert len(reply["rejected"]) == len(case["readings"]) - len(valid), name
        for item in valid:
            key = (case["device"], case["boot"], item["seq"])
            expected[key] = {"sensor": item["sensor"], **_stored(_raw(item))}
    assert len(expected) >= 15
    rows = _rows(golden_collector)
    stored = {(r["device"], r["boot"], r["seq"]): r for r in rows}
    assert len(rows) == len(stored) == len(expected)
    for key, values in expected.items():
        row = stored[key]
        assert {k: row[k] for k in values} == values, key

    health = requests.get(f"{golden_collector.url}/health", timeout=10).json()
    assert health["devices"]["mega-02"]["dropped"] == 37
    assert health["devices"]["mega-02"]["meter_errors"] == {"pzem2": 5, "pzem3": 12}
    assert health["devices"]['Küche "alt"']["meter_errors"] == {'Herd "links" €': 2}


class _Recorder:
    def __init__(self) -> None:
        self.polled: list[tuple[int, DeviceReading]] = []

    def step(self, device: FakeDevice) -> Callable[[Any], None]:
        def record(step: Any) -> None:
            self.polled += [(device.boot, r) for r in step.polled]

        return record


class _FlakyTransport:
    """The real HTTP transport, with the network cut after a number of requests."""

    def __init__(self, working_requests: int) -> None:
        self._inner = RequestsTransport(timeout_s=10.0)
        self.left = working_requests

    def post(
        self, url: str, body: bytes, headers: Mapping[str, str]
    ) -> tuple[int, Mapping[str, str], bytes]:
        if self.left <= 0:
            raise TransportError("network cut")
        self.left -= 1
        return self._inner.post(url, body, headers)


def _run_until_done(device: FakeDevice, on_step: Callable[[Any], None], limit_s: float) -> None:
    stop = threading.Event()
    timer = threading.Timer(limit_s, stop.set)
    timer.start()
    try:
        device.run(stop, on_step=on_step)
    finally:
        timer.cancel()


def test_fake_device_gets_everything_stored_across_a_restart(
    tmp_path: Path, collector: RunningCollector
) -> None:
    state = tmp_path / "mega-01.state.json"
    recorder = _Recorder()
    common: dict[str, Any] = {
        "sensors": ("pzem1", "pzem2"),
        "speed": 200.0,
        "batch_max": 7,
        "state_file": state,
        "persist_buffer": True,
    }
    # Boot 1 reaches the collector twice, then loses the network with readings unsent.
    first = FakeDevice(
        collector.url, "mega-01", "test-key-mega-01", poll_limit=30,
        transport=_FlakyTransport(2), **common,
    )  # fmt: skip
    stop = threading.Event()
    threading.Timer(1.5, stop.set).start()
    first.run(stop, on_step=recorder.step(first))
    first.close()
    assert first.buffered > 0

    second = FakeDevice(collector.url, "mega-01", "test-key-mega-01", poll_limit=20, **common)
    assert second.restored == first.buffered
    _run_until_done(second, recorder.step(second), limit_s=20.0)
    second.close()
    assert second.done

    rows = _rows(collector)
    stored = {(r["boot"], r["sensor"], r["seq"]): r for r in rows}
    assert len(rows) == len(stored) == len(recorder.polled) == 30 * 2 + 20 * 2
    for boot, reading in recorder.polled:
        row = stored[(boot, reading.sensor, reading.seq)]
        assert {k: row[k] for k in _stored(reading.raw)} == _stored(reading.raw)
    # Each boot's readings sit exactly their uptimes apart, re-sent ones included.
    for boot in (1, 2):
        mine = sorted((r for b, r in recorder.polled if b == boot), key=lambda r: r.seq)
        times = [stored[(boot, r.sensor, r.seq)]["time"] for r in mine]
        assert [t - times[0] for t in times] == [r.uptime_ms - mine[0].uptime_ms for r in mine]
