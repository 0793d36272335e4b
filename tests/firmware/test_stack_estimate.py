"""The firmware's static stack estimate reads each frame from the function's prologue."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

TOOL = Path(__file__).resolve().parents[2] / "firmware" / "tools" / "stack_estimate.py"


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("stack_estimate", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _prologue(allocation: list[tuple[str, str]]) -> list[tuple[str, str]]:
    pushes = [("push", f"r{n}") for n in (16, 17, 28, 29)]
    frame_pointer = [("in", "r28, 0x3d\t; 61"), ("in", "r29, 0x3e\t; 62")]
    return [*pushes, *frame_pointer, *allocation, ("movw", "r8, r24")]


def test_frame_counts_pushes_and_allocation_in_either_hex_case() -> None:
    frame = _tool().frame
    # avr-objdump as it prints a 74-byte and a 72-byte frame of Uplink::step.
    assert frame(_prologue([("subi", "r28, 0x4A\t; 74"), ("sbc", "r29, r1")])) == 4 + 74
    assert frame(_prologue([("subi", "r28, 0x48\t; 72"), ("sbc", "r29, r1")])) == 4 + 72
    assert frame(_prologue([("subi", "r28, 0x2E\t; 46"), ("sbci", "r29, 0x01\t; 1")])) == 4 + 302
    assert frame(_prologue([("sbiw", "r28, 0x1e\t; 30")])) == 4 + 30
