"""The Python encoder against the golden bodies the firmware's C++ encoder is also tested with."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from energymon.schema import FIELDS, RawMeasurement
from simulator.wire import RESET_CAUSES, RESET_STAGES, DeviceReading, ResetReport, encode_batch

GOLDEN = Path(__file__).parent / "golden"
CASES = sorted(p.name.removesuffix(".input.json") for p in GOLDEN.glob("*.input.json"))

SCALED = [f for f in FIELDS if f.decimals]
UNSCALED = [f for f in FIELDS if not f.decimals]


def _load(name: str) -> tuple[dict[str, Any], bytes]:
    case = json.loads((GOLDEN / f"{name}.input.json").read_text(encoding="utf-8"))
    return case, (GOLDEN / f"{name}.body.json").read_bytes()


def _reading(item: dict[str, Any]) -> DeviceReading:
    raw = RawMeasurement(*(item[f.raw_name] for f in FIELDS))
    return DeviceReading(item["seq"], item["uptime_ms"], item["sensor"], raw)


def _reset(case: dict[str, Any]) -> ResetReport | None:
    if "reset" not in case:
        return None
    item = case["reset"]
    return ResetReport(item["cause"], item["watchdog_resets"], item.get("stage"))


def test_every_golden_input_has_a_body() -> None:
    bodies = sorted(p.name.removesuffix(".body.json") for p in GOLDEN.glob("*.body.json"))
    assert bodies == CASES
    assert len(CASES) >= 7


@pytest.mark.parametrize("name", CASES)
def test_encoder_matches_golden_body(name: str) -> None:
    case, body = _load(name)
    encoded = encode_batch(
        case["device"],
        case["boot"],
        case["uptime_ms"],
        [_reading(item) for item in case["readings"]],
        dropped=case["dropped"],
        meter_errors=case["meter_errors"],
        boot_nonce=case.get("boot_nonce"),
        reset=_reset(case),
    )
    assert encoded == body


@pytest.mark.parametrize("name", CASES)
def test_golden_body_means_its_input(name: str) -> None:
    """Checks the golden files themselves, independently of the encoder that wrote them."""
    case, body = _load(name)
    assert not body.endswith(b"\n")
    parsed = json.loads(body.decode("utf-8"), parse_float=Decimal)
    expected_keys = ["device", "boot"]
    if "boot_nonce" in case:
        expected_keys.append("boot_nonce")
    expected_keys.append("uptime_ms")
    if case["dropped"]:
        expected_keys.append("dropped")
    meter_errors = {s: n for s, n in case["meter_errors"].items() if n}
    if meter_errors:
        expected_keys.append("meter_errors")
    if "reset" in case:
        expected_keys.append("reset")
    assert list(parsed) == [*expected_keys, "readings"]
    assert parsed.get("meter_errors", {}) == meter_errors
    assert list(parsed.get("meter_errors", {})) == list(meter_errors)
    assert (parsed["device"], parsed["boot"], parsed["uptime_ms"]) == (
        case["device"],
        case["boot"],
        case["uptime_ms"],
    )
    assert parsed.get("dropped", 0) == case["dropped"]
    assert parsed.get("boot_nonce") == case.get("boot_nonce")
    if "boot_nonce" in case:
        assert 1 <= case["boot_nonce"] <= 0xFFFFFFFF
    assert parsed.get("reset") == case.get("reset")
    if "reset" in case:
        reset = case["reset"]
        stage_key = ["stage"] if reset["cause"] in ("watchdog", "requested") else []
        assert list(parsed["reset"]) == ["cause", *stage_key, "watchdog_resets"]
        assert reset["cause"] in RESET_CAUSES
        assert reset.get("stage", "boot") in RESET_STAGES
        assert 0 <= reset["watchdog_resets"] <= 0xFFFFFFFF
    assert len(parsed["readings"]) == len(case["readings"])
    for got, item in zip(parsed["readings"], case["readings"], strict=True):
        assert list(got) == ["seq", "uptime_ms", "sensor", *(f.name for f in FIELDS)]
        for field in ("seq", "uptime_ms", "sensor"):
            assert got[field] == item[field]
        for f in UNSCALED:
            assert got[f.name] == item[f.raw_name]
        for f in SCALED:
            assert isinstance(got[f.name], Decimal)
            assert got[f.name].as_tuple().exponent == -f.decimals
            assert got[f.name] == Decimal(item[f.raw_name]).scaleb(-f.decimals)
    # Non-ASCII characters travel as their UTF-8 bytes, never as \u escapes.
    names = {case["device"], *case["meter_errors"], *(r["sensor"] for r in case["readings"])}
    for text in names:
        if not any(ord(c) < 0x20 for c in text):
            assert json.dumps(text, ensure_ascii=False).encode("utf-8") in body
