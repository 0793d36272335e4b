"""Exact verification on real influxd processes: every change of a single point is found, with
the first differing point named; the aggregates the old check compared could not see these."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from energymon.clock import ManualClock
from energymon.influx import InfluxClient
from energymon.lineproto import format_line
from harness.influxd import InfluxServer
from replicator.points import TimeRange
from replicator.sink import BatchSink
from replicator.verify import HOUR_MS, compare, verify
from tests.replicator.helpers import HOME, T0, Rig, points

_numbers = itertools.count(1)
HOUR = T0 - T0 % HOUR_MS
TAGS = {"home": HOME, "device": "mega-01", "sensor": "mains"}


def _line(
    time_ms: int,
    *,
    energy: int,
    power: float,
    alarm: bool = False,
    note: str = "ok",
    measurement: str = "electricity",
) -> str:
    fields = {"energy_wh": energy, "power_w": power, "alarm": alarm, "note": note}
    return format_line(measurement, TAGS, fields, time_ms)


def _dataset() -> list[str]:
    # A 9 MWh counter, one point a minute for two hours.
    return [
        _line(HOUR + i * 60_000, energy=9_000_000 + i * 4, power=230.0 + i / 10, alarm=i % 5 == 0)
        for i in range(120)
    ]


@pytest.fixture
def pair(influx_server: InfluxServer, cloud_server: InfluxServer, tmp_path: Path) -> Iterator[Rig]:
    """Local and cloud holding the same points (written to both, not replicated)."""
    n = next(_numbers)
    local = InfluxClient(influx_server.url, f"exact_local_{n}")
    cloud = InfluxClient(cloud_server.url, f"exact_cloud_{n}")
    for client in (local, cloud):
        client.create_database()
        client.write(_dataset())
    yield Rig(local, cloud, tmp_path / "data", ManualClock(HOUR + 3 * HOUR_MS))
    local.close()
    cloud.close()


def _sink(rig: Rig) -> BatchSink:
    return BatchSink(rig.cloud, rig.dead_letters(), rig.clock, batch_size=100, target="cloud")


WINDOW = TimeRange(HOUR, HOUR + 2 * HOUR_MS)


def _overwrite(
    client: InfluxClient,
    i: int,
    *,
    energy_wh: int | None = None,
    power_w: float | None = None,
    alarm: bool | None = None,
    note: str = "ok",
) -> None:
    client.write(
        [
            _line(
                HOUR + i * 60_000,
                energy=9_000_000 + i * 4 if energy_wh is None else energy_wh,
                power=230.0 + i / 10 if power_w is None else power_w,
                alarm=i % 5 == 0 if alarm is None else alarm,
                note=note,
            )
        ]
    )


def _delete(client: InfluxClient, time_ms: int) -> None:
    client.query(
        f"DELETE FROM electricity WHERE time >= {time_ms}ms AND time <= {time_ms}ms", method="POST"
    )


def _move(client: InfluxClient, i: int, by_ms: int) -> None:
    t = HOUR + i * 60_000
    _delete(client, t)
    client.write(
        [_line(t + by_ms, energy=9_000_000 + i * 4, power=230.0 + i / 10, alarm=i % 5 == 0)]
    )


MUTATIONS: dict[str, Callable[[InfluxClient], int]] = {
    "energy_wh +25 on a 9 MWh counter": lambda c: (_overwrite(c, 30, energy_wh=9_000_145), 30)[1],
    "flipped boolean": lambda c: (_overwrite(c, 31, alarm=True), 31)[1],
    "altered string": lambda c: (_overwrite(c, 32, note="ko"), 32)[1],
    "time stamp moved 1 ms within the hour": lambda c: (_move(c, 33, 1), 33)[1],
    "two swapped values": lambda c: (
        _overwrite(c, 34, power_w=230.0 + 3.5),
        _overwrite(c, 35, power_w=230.0 + 3.4),
        34,
    )[2],
    "two changes that cancel": lambda c: (
        _overwrite(c, 36, energy_wh=9_000_144 + 7),
        _overwrite(c, 37, energy_wh=9_000_148 - 7),
        36,
    )[2],
}


@pytest.mark.parametrize("name", list(MUTATIONS))
def test_a_single_change_is_found_with_its_first_differing_point(pair: Rig, name: str) -> None:
    assert compare(pair.local, pair.cloud, HOME, WINDOW)[1] == []
    changed = MUTATIONS[name](pair.cloud)
    hours, mismatches = compare(pair.local, pair.cloud, HOME, WINDOW)
    assert hours == 2
    [mismatch] = mismatches
    assert mismatch.measurement == "electricity"
    assert mismatch.hour_ms == HOUR
    assert mismatch.series == "device=mega-01,sensor=mains"
    assert mismatch.first is not None
    assert mismatch.first.time_ms == HOUR + changed * 60_000


def test_repair_makes_the_cloud_equal_point_for_point(pair: Rig) -> None:
    for mutate in MUTATIONS.values():
        mutate(pair.cloud)
    result = verify(pair.local, pair.cloud, _sink(pair), HOME, WINDOW, repair=True)
    # Copying again cannot remove the point moved by 1 ms, which the cloud holds extra.
    assert (result.repaired_hours, result.unresolved_hours) == (0, 1)
    _delete(pair.cloud, HOUR + 33 * 60_000 + 1)
    assert verify(pair.local, pair.cloud, _sink(pair), HOME, WINDOW, repair=False).ok
    assert points(pair.cloud) == points(pair.local)


def test_the_current_hour_is_checked_up_to_the_end_of_the_window(pair: Rig) -> None:
    _overwrite(pair.cloud, 100, power_w=1.0)  # 40 minutes into the second hour
    upto = HOUR + HOUR_MS + 41 * 60_000
    hours, mismatches = compare(pair.local, pair.cloud, HOME, TimeRange(HOUR, upto))
    assert hours == 2
    assert [m.hour_ms for m in mismatches] == [HOUR + HOUR_MS]
    # Only up to the end: a difference after it is not this window's business.
    assert compare(pair.local, pair.cloud, HOME, TimeRange(HOUR, upto - 120_000))[1] == []


def test_an_integer_and_a_float_of_the_same_value_differ(pair: Rig) -> None:
    for client, value in ((pair.local, "5i"), (pair.cloud, "5")):
        client.write([f"other,home={HOME},sensor=x v={value} {HOUR}"])
    [mismatch] = compare(pair.local, pair.cloud, HOME, WINDOW)[1]
    assert mismatch.measurement == "other"
    assert mismatch.first is not None and mismatch.first.time_ms == HOUR


single_mutation = st.tuples(
    st.integers(0, 119),
    st.sampled_from(["energy", "power_ulp", "alarm", "note", "shift", "delete", "extra"]),
    st.sampled_from([-1, 1]),
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(mutation=single_mutation)
def test_any_single_mutation_is_found(
    influx_server: InfluxServer, cloud_server: InfluxServer, mutation: tuple[int, str, int]
) -> None:
    i, kind, sign = mutation
    n = next(_numbers)
    local = InfluxClient(influx_server.url, f"prop_local_{n}")
    cloud = InfluxClient(cloud_server.url, f"prop_cloud_{n}")
    try:
        for client in (local, cloud):
            client.create_database()
            client.write(_dataset())
        t = HOUR + i * 60_000
        if kind == "energy":
            _overwrite(cloud, i, energy_wh=9_000_000 + i * 4 + sign)
        elif kind == "power_ulp":
            _overwrite(cloud, i, power_w=math.nextafter(230.0 + i / 10, sign * math.inf))
        elif kind == "alarm":
            _overwrite(cloud, i, alarm=i % 5 != 0)
        elif kind == "note":
            _overwrite(cloud, i, note="ok ")
        elif kind == "shift":
            # Within the hour: the first point of an hour moves forward.
            _move(cloud, i, 1 if i % 60 == 0 else sign)
        elif kind == "delete":
            _delete(cloud, t)
        else:
            cloud.write([_line(t + 1, energy=1, power=1.0)])
        mismatches = compare(local, cloud, HOME, WINDOW)[1]
        assert len(mismatches) == 1, mutation
        assert mismatches[0].first is not None
        assert abs(mismatches[0].first.time_ms - t) <= 1
    finally:
        for client in (local, cloud):
            client.query(f'DROP DATABASE "{client.database}"', database=None, method="POST")
            client.close()
