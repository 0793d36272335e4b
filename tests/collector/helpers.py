"""Builders shared by the collector tests."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def wait_for(probe: Callable[[], T], done: Callable[[T], bool], timeout_s: float = 20.0) -> T:
    """Poll a real process until `done`; only for processes that cannot be stepped."""
    deadline = time.monotonic() + timeout_s
    value = probe()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(0.05)
        value = probe()
    return value


def reading(
    seq: int, uptime_ms: int | None = None, sensor: str = "pzem1", **values: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "seq": seq,
        "uptime_ms": seq * 1000 if uptime_ms is None else uptime_ms,
        "sensor": sensor,
        "voltage_v": 229.8,
        "current_a": 1.234,
        "power_w": 270.5,
        "energy_wh": 123456 + seq,
        "frequency_hz": 50.0,
        "power_factor": 0.95,
        "alarm": False,
    }
    body.update(values)
    return body


def batch(
    seqs: range | list[int],
    *,
    device: str = "mega-01",
    boot: int = 1,
    uptime_ms: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    readings = [reading(s) for s in seqs]
    top = max((r["uptime_ms"] for r in readings), default=0) + 500
    return {
        "device": device,
        "boot": boot,
        "uptime_ms": top if uptime_ms is None else uptime_ms,
        "readings": readings,
        **extra,
    }
