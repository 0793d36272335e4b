"""The spool's tally: a record, kept outside `collector.db`, of what the spool must hold.

A damaged SD card can take the end of `collector.db`'s write-ahead log (truncated, scribbled,
deleted) or the whole file (emptied) with it. SQLite then opens an older, self-consistent state:
nothing inside the database can tell that acknowledged rows are gone, because the rows and any
count kept beside them vanish together. So every spool row is also written to this small
append-only file, fsynced before the readings are acknowledged, with what it carries per
(device, boot): the seq ranges. A row drained into InfluxDB is struck off here before it leaves
the database, so the tally never claims a row that was rightly removed. At start,
`collector.integrity` compares the two: a row the tally lists and the database does not hold
was acknowledged and lost, and its ranges say exactly which readings.

One JSON object per line: `{"add": id, "crc": ..., "points": ..., "ranges": [...]}` or
`{"drop": [id, ...]}`. A torn last line is the unacknowledged tail of a crash and is ignored.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from energymon.errors import StoreError

TALLY_NAME = "spool.tally"


@dataclass(frozen=True, slots=True)
class SeqRange:
    device: str
    boot: int
    first_seq: int
    last_seq: int

    def __str__(self) -> str:
        seqs = (
            str(self.first_seq)
            if self.first_seq == self.last_seq
            else f"{self.first_seq}-{self.last_seq}"
        )
        return f"{self.device} boot {self.boot} seq {seqs}"


@dataclass(frozen=True, slots=True)
class TalliedRow:
    id: int
    crc: int
    points: int
    ranges: tuple[SeqRange, ...]


def body_crc(body: bytes) -> int:
    return zlib.crc32(body)


class SpoolTally:
    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / TALLY_NAME
        self.damaged_lines = 0
        self.rows: dict[int, TalliedRow] = self._load()

    def add(self, row_id: int, body: bytes, points: int) -> None:
        row = TalliedRow(row_id, body_crc(body), points, seq_ranges(body))
        self._append(
            {
                "add": row.id,
                "crc": row.crc,
                "points": row.points,
                "ranges": [[r.device, r.boot, r.first_seq, r.last_seq] for r in row.ranges],
            }
        )
        self.rows[row_id] = row

    def drop(self, row_ids: Iterable[int]) -> None:
        ids = [i for i in row_ids if i in self.rows]
        if not ids:
            return
        self._append({"drop": ids})
        for row_id in ids:
            del self.rows[row_id]

    def rewrite(self, rows: Iterable[TalliedRow]) -> None:
        """Replace the file by exactly these rows (at start, and when the spool empties), so it
        stays as small as the spool."""
        self.rows = {r.id: r for r in rows}
        text = "".join(
            json.dumps(
                {
                    "add": r.id,
                    "crc": r.crc,
                    "points": r.points,
                    "ranges": [[s.device, s.boot, s.first_seq, s.last_seq] for s in r.ranges],
                }
            )
            + "\n"
            for r in self.rows.values()
        )
        fresh = self.path.with_suffix(".new")
        try:
            with open(fresh, "w", encoding="utf-8") as f:
                f.write(text)
                f.flush()
                os.fsync(f.fileno())
            os.replace(fresh, self.path)
            _fsync_dir(self.path.parent)
        except OSError as exc:
            raise StoreError(f"cannot rewrite {self.path}: {exc}") from exc
        self.damaged_lines = 0

    def _append(self, record: dict[str, object]) -> None:
        try:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            raise StoreError(f"cannot record the spool in {self.path}: {exc}") from exc

    def _load(self) -> dict[int, TalliedRow]:
        try:
            lines = self.path.read_text(encoding="utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise StoreError(f"cannot read {self.path}: {exc}") from exc
        rows: dict[int, TalliedRow] = {}
        for number, line in enumerate(lines, 1):
            try:
                record = json.loads(line)
                if "drop" in record:
                    for row_id in record["drop"]:
                        rows.pop(int(row_id), None)
                else:
                    ranges = tuple(
                        SeqRange(str(d), int(b), int(lo), int(hi))
                        for d, b, lo, hi in record["ranges"]
                    )
                    rows[int(record["add"])] = TalliedRow(
                        int(record["add"]), int(record["crc"]), int(record["points"]), ranges
                    )
            except (ValueError, KeyError, TypeError):
                # The last line may be torn by a crash before its readings were acknowledged.
                if number != len(lines):
                    self.damaged_lines += 1
        return rows


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def seq_ranges(body: bytes) -> tuple[SeqRange, ...]:
    """Per (device, boot), the seqs a spool row's points carry, as ranges. Points without a
    device or seq (the collector's own health records) carry no reading and are left out."""
    seqs: dict[tuple[str, int], list[int]] = {}
    for line in body.decode("utf-8").splitlines():
        identity = _identity(line)
        if identity is not None:
            device, boot, seq = identity
            seqs.setdefault((device, boot), []).append(seq)
    ranges: list[SeqRange] = []
    for (device, boot), found in sorted(seqs.items()):
        ordered = sorted(set(found))
        first = last = ordered[0]
        for seq in ordered[1:]:
            if seq != last + 1:
                ranges.append(SeqRange(device, boot, first, last))
                first = seq
            last = seq
        ranges.append(SeqRange(device, boot, first, last))
    return tuple(ranges)


def _identity(line: str) -> tuple[str, int, int] | None:
    """(device, boot, seq) of one point, from its `device` tag and `boot`/`seq` fields."""
    series, fields = _split_unescaped(line, " ", 1)
    device = None
    for tag in _split_unescaped(series, ",")[1:]:
        key, _, value = tag.partition("=")
        if key == "device":
            device = value.replace("\\ ", " ").replace("\\,", ",").replace("\\=", "=")
    if device is None:
        return None
    values = _field_values(fields.rpartition(" ")[0])
    boot, seq = values.get("boot"), values.get("seq")
    if boot is None or seq is None:
        return None
    return device, int(boot.rstrip("i")), int(seq.rstrip("i"))


def _split_unescaped(text: str, sep: str, limit: int = -1) -> list[str]:
    parts: list[str] = []
    start = i = 0
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == sep and (limit < 0 or len(parts) < limit):
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return parts


def _field_values(fields: str) -> dict[str, str]:
    """Field key -> raw value, skipping over quoted strings (which may hold anything)."""
    values: dict[str, str] = {}
    i = 0
    while i < len(fields):
        eq = fields.index("=", i)
        key = fields[i:eq]
        j = eq + 1
        if j < len(fields) and fields[j] == '"':
            j += 1
            while fields[j] != '"':
                j += 2 if fields[j] == "\\" else 1
            j += 1
        else:
            while j < len(fields) and fields[j] != ",":
                j += 1
        values[key] = fields[eq + 1 : j]
        i = j + 1
    return values
