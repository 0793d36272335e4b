"""Worst-case stack depth of an AVR image, from its disassembly.

Each function's frame is read from its prologue (pushed registers, frame allocation); each call
adds the return address (three bytes on the ATmega2560). Every indirect call is assumed to reach
any function listed in a vtable, or named with --indirect: a pessimistic bound, since a real call
site reaches only the implementations of one interface. Cycles that assumption creates are cut.
The deepest interrupt handler is added once: the handlers do not re-enable interrupts.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from pathlib import Path

RET_BYTES = 3
HEADER = re.compile(r"^([0-9a-f]+) <(.+)>:$")
INSN = re.compile(r"^\s+([0-9a-f]+):\s+(?:[0-9a-f]{2} )+\s*(\S+)\s*(.*)$")
TARGET = re.compile(r"0x([0-9a-f]+)")


def disassemble(elf: str) -> dict[str, list[tuple[str, str]]]:
    out = subprocess.run(["avr-objdump", "-d", elf], capture_output=True, text=True, check=True).stdout
    funcs: dict[str, list[tuple[str, str]]] = {}
    current = None
    for line in out.splitlines():
        m = HEADER.match(line)
        if m:
            current = m.group(2)
            funcs[current] = []
            continue
        m = INSN.match(line)
        if m and current is not None:
            funcs[current].append((m.group(2), m.group(3)))
    return funcs


def addresses(elf: str) -> dict[int, str]:
    out = subprocess.run(["avr-nm", elf], capture_output=True, text=True, check=True).stdout
    table = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1] in "tTwW":
            table[int(parts[0], 16)] = parts[2]
    return table


def frame(insns: list[tuple[str, str]]) -> int:
    size = 0
    i = 0
    while i < len(insns) and insns[i][0] in ("push", "rcall"):
        op, args = insns[i]
        if op == "rcall" and not args.startswith(".+0"):
            break
        size += 1 if op == "push" else RET_BYTES
        i += 1
    window = insns[i : i + 4]
    if window and window[0] == ("in", "r28, 0x3d\t; 61"):
        for op, args in window[1:]:
            nums = re.findall(r"0x([0-9a-f]+)", args.split(";")[0])
            if op == "subi" and args.startswith("r28"):
                size += int(nums[0], 16)
            elif op in ("sbci", "sbc") and args.startswith("r29") and nums:
                size += 256 * int(nums[0], 16)
            elif op == "sbiw" and args.startswith("r28"):
                size += int(nums[0], 16)
    return size


def vtable_targets(elf: str, by_address: dict[int, str]) -> set[str]:
    nm = subprocess.run(["avr-nm", "-S", elf], capture_output=True, text=True, check=True).stdout
    with tempfile.TemporaryDirectory() as tmp:
        image = Path(tmp) / "data.bin"
        subprocess.run(["avr-objcopy", "-O", "binary", "-j", ".data", elf, str(image)], check=True)
        data = image.read_bytes()
    headers = subprocess.run(["avr-objdump", "-h", elf], capture_output=True, text=True, check=True)
    start = int(headers.stdout.split(" .data ")[1].split()[1], 16)
    targets = set()
    for line in nm.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[3].startswith("_ZTV"):
            at, size = int(parts[0], 16) - start, int(parts[1], 16)
            for off in range(at, at + size - 1, 2):
                word = data[off] | (data[off + 1] << 8)
                name = by_address.get(word * 2)
                if name:
                    targets.add(name)
    return targets


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("elf")
    ap.add_argument("--root", default="main")
    ap.add_argument("--indirect", action="append", default=[], help="a function reached by pointer")
    args = ap.parse_args()
    funcs = disassemble(args.elf)
    by_address = addresses(args.elf)
    indirect = vtable_targets(args.elf, by_address)
    indirect |= {f for f in funcs if any(p in f for p in args.indirect)}
    frames = {f: frame(insns) for f, insns in funcs.items()}
    calls: dict[str, set[str]] = {}
    for f, insns in funcs.items():
        callees = set()
        for op, operand in insns:
            if op in ("call", "rcall", "jmp", "rjmp"):
                m = re.search(r"<([^>+]+)>", operand)
                if m and m.group(1) != f and m.group(1) in funcs:
                    callees.add(m.group(1))
            elif op in ("icall", "eicall"):
                callees |= indirect - {f}
        calls[f] = callees

    memo: dict[str, tuple[int, list[str]]] = {}
    cycles: set[str] = set()

    def depth(f: str, path: tuple[str, ...]) -> tuple[int, list[str]]:
        if f in memo:
            return memo[f]
        best, chain = 0, []
        for c in calls.get(f, ()):
            if c in path:
                cycles.add(f"{f} -> {c}")
                continue
            d, ch = depth(c, path + (f,))
            if d + RET_BYTES > best:
                best, chain = d + RET_BYTES, ch
        memo[f] = (frames.get(f, 0) + best, [f, *chain])
        return memo[f]

    main_depth, main_chain = depth(args.root, ())
    isrs = [f for f in funcs if f.startswith("__vector_")]
    isr_depth, isr_name = max(((depth(f, ())[0] + RET_BYTES + 1, f) for f in isrs), default=(0, "none"))
    # The call into main from the start-up code, and the status register an ISR saves.
    total = main_depth + RET_BYTES + isr_depth
    print(f"deepest call chain from {args.root}: {main_depth + RET_BYTES} bytes")
    for name in main_chain:
        print(f"    {frames.get(name, 0):4d}  {name}")
    print(f"deepest interrupt handler on top: {isr_depth} bytes ({isr_name})")
    print(f"stack estimate: {total} bytes")
    if cycles:
        # Almost all of these come from assuming any indirect call reaches any virtual function.
        print(f"call-graph cycles cut: {len(cycles)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
