"""The memory bound of the sink: it never holds more than one batch, whatever the backlog; and
the next batch is sent while the destination stores the previous one."""

from __future__ import annotations

import threading
from collections.abc import Iterable

from energymon.influx import InfluxClient
from energymon.lineproto import format_line
from replicator.copy import copy_range
from replicator.points import TimeRange
from replicator.sink import BatchSink
from tests.replicator.helpers import HOME, T0, Rig, points, reading

SENSORS = ("a", "b", "c")


def _backlog(rig: Rig, seconds: int) -> None:
    # Three series with the same time stamps, so that batches end inside a run of equal times.
    lines = [
        reading("d", s, i, T0 + i * 1000).to_line(HOME) for i in range(seconds) for s in SENSORS
    ]
    for start in range(0, len(lines), 5000):
        rig.local.write(lines[start : start + 5000])


def _sink(rig: Rig, client: InfluxClient, batch_size: int) -> BatchSink:
    return BatchSink(client, rig.dead_letters(), rig.clock, batch_size=batch_size, target="cloud")


def test_a_large_copy_streams_batches_and_holds_less_than_one(rig: Rig) -> None:
    _backlog(rig, 4000)
    sink = _sink(rig, rig.cloud, batch_size=1000)

    copied = copy_range(rig.local, sink, HOME, TimeRange(T0, T0 + 4000 * 1000))

    assert copied == 12_000
    assert sink.stats.batches == 12
    assert 0 < sink.stats.peak_held_points <= sink.run_size < sink.batch_size
    assert points(rig.cloud) == points(rig.local)


def test_a_refused_batch_is_read_again_exactly_and_held_alone(rig: Rig) -> None:
    _backlog(rig, 4000)
    # One point of the backlog has a field the cloud stores with another type: its batch is
    # refused as a partial write and must be split.
    tags = {"home": HOME, "device": "d", "sensor": "b"}
    rig.local.write([format_line("electricity", tags, {"note": 7}, T0 + 2345 * 1000)])
    rig.cloud.write([format_line("electricity", {"home": "other"}, {"note": "text"}, T0)])
    sink = _sink(rig, rig.cloud, batch_size=1000)

    copied = copy_range(rig.local, sink, HOME, TimeRange(T0, T0 + 4000 * 1000))

    assert copied == 12_000
    assert sink.stats.dead_letters == 1
    [letter] = rig.dead_letters().list()
    assert "note=7i" in letter.line
    # The refused batch, read again: exactly its points, every one of them, and no more.
    assert sink.stats.peak_held_points == sink.batch_size
    local = points(rig.local)
    cloud = points(rig.cloud)
    assert len(local - cloud) == 1
    assert cloud - local == set()


class _SlowToAnswer(InfluxClient):
    """The cloud, answering each write only once the next write has started (or never would)."""

    def __init__(self, url: str, database: str, writes: int) -> None:
        super().__init__(url, database)
        self.writes = writes
        self.started = [threading.Event() for _ in range(writes + 1)]
        self.next_started_first: list[bool] = []
        self.most_at_once = 0
        self._count = 0
        self._at_once = 0
        self._lock = threading.Lock()

    def write_stream(self, body: Iterable[bytes], *, timeout_s: float | None = None) -> None:
        with self._lock:
            n, self._count = self._count, self._count + 1
            self._at_once += 1
            self.most_at_once = max(self.most_at_once, self._at_once)
        self.started[n].set()
        try:
            super().write_stream(body, timeout_s=timeout_s)
            if n + 1 < self.writes:
                self.next_started_first.append(self.started[n + 1].wait(timeout=5))
        finally:
            with self._lock:
                self._at_once -= 1


def test_the_next_batch_is_sent_while_the_cloud_stores_the_previous(rig: Rig) -> None:
    _backlog(rig, 1000)
    cloud = _SlowToAnswer(rig.cloud.url, rig.cloud.database, writes=3)
    sink = _sink(rig, cloud, batch_size=1000)

    assert copy_range(rig.local, sink, HOME, TimeRange(T0, T0 + 1000 * 1000)) == 3000

    assert cloud.next_started_first == [True, True]
    assert cloud.most_at_once == 2
    assert 0 < sink.stats.peak_held_points <= sink.run_size
    assert points(rig.cloud) == points(rig.local)
