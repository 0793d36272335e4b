"""The firmware's own suites, run from pytest so the Python test command covers the firmware too.

Each test drives `make -C firmware` into a private build directory: the host unit tests (which read
every golden file of tests/contract/golden), the same tests on an ATmega2560 under simavr, and the
whole sketch against Debian's Arduino AVR core and the real Ethernet and SD libraries (from
../shared/arduino-libraries) with its static RAM budget.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

FIRMWARE = Path(__file__).resolve().parents[2] / "firmware"
ARDUINO_CORE = Path("/usr/share/arduino/hardware/arduino/avr/cores/arduino/Arduino.h")
RAM_BUDGET = 6144


def _require(tools: list[str], files: tuple[Path, ...] = ()) -> None:
    """Skip when a toolchain piece is missing, except in CI, where that is a broken setup."""
    missing = [t for t in tools if shutil.which(t) is None]
    missing += [str(f) for f in files if not f.exists()]
    if not missing:
        return
    packages = "gcc-avr avr-libc arduino-core-avr simavr"
    reason = f"missing {', '.join(missing)} (apt-get install {packages})"
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def _make(target: str, build: Path) -> str:
    proc = subprocess.run(
        ["make", "-C", str(FIRMWARE), "--no-print-directory", target, f"BUILD={build}"],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"make {target} failed:\n{output[-4000:]}"
    return output


def test_host_unit_tests_pass(tmp_path: Path) -> None:
    _require(["g++", "make", "python3"])
    out = _make("test", tmp_path)
    assert re.search(r"ALL TESTS PASSED: \d+ tests", out), out[-2000:]
    assert "ok   every_golden_body_byte_for_byte" in out


def test_core_tests_pass_on_the_atmega2560_under_simavr(tmp_path: Path) -> None:
    _require(["avr-g++", "avr-size", "simavr", "make", "python3"])
    out = _make("simavr", tmp_path)
    assert "int is 16 bits" in out
    assert "SIMAVR RESULT: PASS" in out, out[-2000:]
    assert "ok   every_golden_body_byte_for_byte" in out


def test_whole_sketch_builds_within_the_static_ram_budget(tmp_path: Path) -> None:
    _require(["avr-g++", "avr-gcc", "avr-size", "avr-nm", "avr-objcopy"], (ARDUINO_CORE,))
    out = _make("sketch", tmp_path)
    measured = re.search(r"static RAM \(\.data\+\.bss\+\.noinit\): (\d+) bytes", out)
    assert measured, out[-2000:]
    assert int(measured.group(1)) <= RAM_BUDGET
    assert "Ethernet 2.0.2 and SD 1.3.0" in out
    assert (tmp_path / "sketch" / "energymon_mega.hex").stat().st_size > 0


def test_sd_batch_cost_does_not_grow_with_the_backlog(tmp_path: Path) -> None:
    _require(["avr-g++", "avr-gcc", "avr-size", "avr-nm", "avr-objcopy", "simavr"], (ARDUINO_CORE,))
    out = _make("sd-cost", tmp_path)
    assert out.count("SDSIM RESULT: PASS") == 6, out[-3000:]
    assert out.count(": the same") == 3, out[-3000:]
