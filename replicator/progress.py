"""A one-line progress bar on stderr for the long-running commands (verify, restore)."""

from __future__ import annotations

import sys
from typing import TextIO


class ProgressBar:
    def __init__(self, label: str, stream: TextIO | None = None, width: int = 30) -> None:
        self.label = label
        self.stream = stream or sys.stderr
        self.width = width
        self._last = ""

    def update(self, fraction: float, detail: str = "") -> None:
        fraction = min(1.0, max(0.0, fraction))
        filled = round(fraction * self.width)
        bar = "#" * filled + "." * (self.width - filled)
        line = f"{self.label} [{bar}] {fraction:6.1%} {detail}"
        if line == self._last:
            return
        self._last = line
        if self.stream.isatty():
            self.stream.write("\r" + line.ljust(100))
        elif fraction >= 1.0:
            self.stream.write(line + "\n")
        self.stream.flush()

    def done(self) -> None:
        if self.stream.isatty() and self._last:
            self.stream.write("\n")
            self.stream.flush()
