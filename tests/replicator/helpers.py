"""The replication rig: a local and a cloud database, a collector journal, a manual clock."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from energymon import journal
from energymon.clock import ManualClock
from energymon.influx import InfluxClient
from energymon.schema import Measurement, Reading
from replicator.deadletters import DeadLetterStore
from replicator.engine import Replicator, ReplicatorConfig
from replicator.sink import BatchSink
from replicator.state import StateStore

HOME = "home-a"
T0 = 1_700_000_000_000


def reading(device: str, sensor: str, seq: int, time_ms: int, power_w: float = 230.0) -> Reading:
    m = Measurement(230.1, 1.25, power_w, 1000 + seq, 50.0, 0.95, False)
    return Reading(device, sensor, 1, seq, time_ms, m)


@dataclass
class Rig:
    local: InfluxClient
    cloud: InfluxClient
    data_dir: Path
    clock: ManualClock
    home: str = HOME
    batch_size: int = 500
    replicators: list[Replicator] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(self.data_dir / journal.STATE_DB_NAME) as conn:
            for statement in (journal.SCHEMA, *journal.IDENTITY_SCHEMA):
                conn.execute(statement)

    def record(self, lines: Sequence[str]) -> None:
        times = [int(line.rsplit(" ", 1)[1]) for line in lines]
        with sqlite3.connect(self.data_dir / journal.STATE_DB_NAME) as conn:
            journal.record(
                conn,
                recorded_ms=self.clock.now_ms(),
                min_time_ms=min(times),
                max_time_ms=max(times),
                points=len(lines),
            )

    def write(self, lines: Sequence[str], *, journal_entry: bool = True) -> None:
        """What the collector does: record the range in the journal, then write."""
        if journal_entry:
            self.record(lines)
        self.local.write(lines)

    def write_readings(self, readings: Sequence[Reading], **kw: bool) -> None:
        self.write([r.to_line(self.home) for r in readings], **kw)

    def dead_letters(self) -> DeadLetterStore:
        return DeadLetterStore(self.data_dir / "replicator" / "dead_letters.db")

    def replicator(self, cloud: InfluxClient | None = None, **config: int) -> Replicator:
        """A replicator of this rig; `cloud`: another way to the cloud (a proxy)."""
        settings = {
            "window_ms": 3_600_000,
            "settle_ms": 1000,
            "journal_settle_ms": 10_000,
        } | config
        cloud = cloud or self.cloud
        sink = BatchSink(
            cloud, self.dead_letters(), self.clock, batch_size=self.batch_size, target="cloud"
        )
        replicator = Replicator(
            local=self.local,
            cloud=cloud,
            sink=sink,
            store=StateStore(self.data_dir / "replicator" / "state.json"),
            journal=journal.JournalReader(self.data_dir),
            clock=self.clock,
            config=ReplicatorConfig(home=self.home, **settings),
        )
        self.replicators.append(replicator)
        return replicator

    def run_until_caught_up(self, replicator: Replicator, steps: int = 1000) -> None:
        for _ in range(steps):
            if replicator.run_once().caught_up:
                return
        raise AssertionError("the replicator did not catch up")


def points(client: InfluxClient, measurement: str = "electricity", home: str = HOME) -> set[str]:
    """Every point of a measurement, as comparable text (time, tags, fields)."""
    out: set[str] = set()
    for series in client.query(f"SELECT * FROM \"{measurement}\" WHERE home = '{home}' GROUP BY *"):
        for record in series.records():
            out.add(repr((sorted(series.tags.items()), sorted(record.items()))))
    return out
