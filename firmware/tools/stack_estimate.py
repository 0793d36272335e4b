"""Worst-case stack depth of an AVR image, from its disassembly.

Each function's frame is read from its prologue (pushed registers, frame allocation); each call
adds the return address (three bytes on the ATmega2560). Every indirect call is assumed to reach
any function listed in a vtable, or named with --indirect: a pessimistic bound, since a real call
site reaches only the implementations of one interface. Cycles that assumption creates are
counted whole: every function of a cycle once, as if one chain went through all of them.
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


def disassemble(elf: str) -> tuple[dict[str, list[tuple[str, str]]], dict[int, str]]:
    out = subprocess.run(
        ["avr-objdump", "-d", elf], capture_output=True, text=True, check=True
    ).stdout
    funcs: dict[str, list[tuple[str, str]]] = {}
    starts: dict[int, str] = {}
    current = None
    for line in out.splitlines():
        m = HEADER.match(line)
        if m:
            current = m.group(2)
            funcs[current] = []
            starts[int(m.group(1), 16)] = current
            continue
        m = INSN.match(line)
        if m and current is not None:
            funcs[current].append((m.group(2), m.group(3)))
    return funcs, starts


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
            # objdump prints immediates in upper-case hex (0x4A), addresses in lower case.
            nums = re.findall(r"0x([0-9a-fA-F]+)", args.split(";")[0])
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


def strongly_connected(calls: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative (the call graph is deep)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for root in sorted(calls):
        if root in index:
            continue
        work = [(root, iter(sorted(calls.get(root, ()))))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, it = work[-1]
            advanced = False
            for nxt in it:
                if nxt not in calls:
                    continue
                if nxt not in index:
                    index[nxt] = low[nxt] = counter
                    counter += 1
                    stack.append(nxt)
                    on_stack.add(nxt)
                    work.append((nxt, iter(sorted(calls.get(nxt, ())))))
                    advanced = True
                    break
                if nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                members = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    members.append(w)
                    if w == node:
                        break
                out.append(members)
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("elf")
    ap.add_argument("--root", default="main")
    ap.add_argument("--indirect", action="append", default=[], help="a function reached by pointer")
    args = ap.parse_args()
    funcs, by_address = disassemble(args.elf)
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

    components = strongly_connected(calls)
    comp_of = {f: i for i, members in enumerate(components) for f in members}
    # A call chain without recursion visits each function of a cycle at most once, so a cycle
    # (created by the indirect-call assumption) costs at most all its frames and calls together.
    comp_cost = [
        sum(frames.get(f, 0) + RET_BYTES for f in members) - RET_BYTES for members in components
    ]
    memo: dict[int, tuple[int, list[str]]] = {}

    def comp_depth(c: int) -> tuple[int, list[str]]:
        if c in memo:
            return memo[c]
        best, chain = 0, []
        for f in sorted(components[c]):
            for callee in sorted(calls.get(f, ())):
                d = comp_of[callee]
                if d == c:
                    continue
                sub, sub_chain = comp_depth(d)
                if sub + RET_BYTES > best:
                    best, chain = sub + RET_BYTES, sub_chain
        memo[c] = (comp_cost[c] + best, [*sorted(components[c]), *chain])
        return memo[c]

    def depth(f: str, _path: tuple[str, ...] = ()) -> tuple[int, list[str]]:
        return comp_depth(comp_of[f])

    cycles = [members for members in components if len(members) > 1]
    main_depth, main_chain = depth(args.root, ())
    isrs = [f for f in funcs if f.startswith("__vector_")]
    isr_depth, isr_name = max(
        ((depth(f, ())[0] + RET_BYTES + 1, f) for f in isrs), default=(0, "none")
    )
    # The call into main from the start-up code, and the status register an ISR saves.
    total = main_depth + RET_BYTES + isr_depth
    print(f"deepest call chain from {args.root}: {main_depth + RET_BYTES} bytes")
    for name in main_chain:
        print(f"    {frames.get(name, 0):4d}  {name}")
    print(f"deepest interrupt handler on top: {isr_depth} bytes ({isr_name})")
    print(f"stack estimate: {total} bytes")
    if cycles:
        # These come from assuming any indirect call reaches any virtual function.
        print(f"call-graph cycles counted whole: {len(cycles)} ({sum(map(len, cycles))} functions)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
