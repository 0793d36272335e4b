"""The fake device's SD card: an append-only log of readings and acknowledgements, replayed at
boot, as the firmware keeps it."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from energymon.errors import EnergymonError
from energymon.schema import RawMeasurement
from simulator.wire import DeviceReading


class DeviceStateError(EnergymonError):
    """The device's state file or buffer journal is unreadable."""


class SdCardLog:
    """The SD card: an append-only log of readings and acknowledgements, replayed at boot."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[str] | None = None
        self._lines = 0

    def replay(self) -> Iterator[dict[str, Any]]:
        if not self.path.exists():
            return
        lines = self.path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines, 1):
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as exc:
                if number == len(lines):
                    return  # torn by a crash while appending: the record never completed
                raise DeviceStateError(f"{self.path}:{number} is not a journal line") from exc
            yield entry

    def append(self, entry: dict[str, Any]) -> None:
        if self._file is None:
            self._file = self.path.open("a", encoding="utf-8")
        self._file.write(json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n")
        self._lines += 1

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def rewrite(self, entries: Sequence[dict[str, Any]]) -> None:
        self.close()
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as out:
            out.writelines(
                json.dumps(e, ensure_ascii=False, separators=(",", ":")) + "\n" for e in entries
            )
        os.replace(tmp, self.path)
        self._lines = len(entries)

    @property
    def lines(self) -> int:
        return self._lines

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def reading_entry(boot: int, r: DeviceReading) -> dict[str, Any]:
    # The register values in the order of the schema's fields; `entry_reading` reads them back.
    return {"r": [boot, r.seq, r.uptime_ms, r.sensor, *r.raw.values()]}


def entry_reading(values: list[Any]) -> tuple[int, DeviceReading]:
    boot, seq, uptime_ms, sensor, *raw = values
    return boot, DeviceReading(seq, uptime_ms, sensor, RawMeasurement.from_values(raw))
