"""Run the AVR unit-test image under simavr and turn its UART output into an exit status."""

from __future__ import annotations

import re
import subprocess
import sys

ANSI = re.compile(r"\x1b\[[0-9;]*m")
TIMEOUT_S = 120


def main() -> int:
    simavr, mcu, elf = sys.argv[1:4]
    proc = subprocess.run(
        [simavr, "-m", mcu, "-f", "16000000", elf],
        capture_output=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    # simavr prints each UART line in colour, with the newline shown as a trailing dot.
    text = ANSI.sub("", proc.stdout.decode("utf-8", "replace") + proc.stderr.decode("utf-8", "replace"))
    lines = [line[:-1] if line.endswith(".") else line for line in text.splitlines()]
    print("\n".join(lines))
    if "SIMAVR RESULT: PASS" in lines:
        return 0
    print("simavr run did not report a pass", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
