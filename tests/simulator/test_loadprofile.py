"""The household load: plausible, deterministic, and its energy counter agrees with its power."""

from __future__ import annotations

import math
import statistics

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from energymon.schema import RawMeasurement
from simulator.loadprofile import HouseholdLoad

DAY_S = 86_400


def day_of_samples(seed: int, step_s: int = 60) -> list[tuple[int, RawMeasurement]]:
    load = HouseholdLoad(seed=seed)
    return [(t, load.sample(t + 0.5)) for t in range(0, DAY_S, step_s)]


@pytest.mark.parametrize("seed", [0, 1, 42])
def test_a_day_stays_in_the_meters_ranges(seed: int) -> None:
    for _, raw in day_of_samples(seed):
        m = raw.to_measurement()
        assert m.problem() is None
        assert 220.0 <= m.voltage_v <= 230.0
        assert 49.9 <= m.frequency_hz <= 50.1
        assert 0.5 <= m.power_factor <= 1.0
        assert 30.0 <= m.power_w <= 10_000.0
        assert not m.alarm
        # I = P / (V * PF), within the registers' rounding.
        expected_a = m.power_w / (m.voltage_v * m.power_factor)
        assert math.isclose(m.current_a, expected_a, rel_tol=0.01, abs_tol=0.002)


def test_the_day_has_a_shape() -> None:
    samples = day_of_samples(3)

    def mean_w(from_h: float, to_h: float) -> float:
        return statistics.mean(
            r.power_dw / 10 for t, r in samples if from_h * 3600 <= t < to_h * 3600
        )

    night, dinner = mean_w(1, 5), mean_w(18.5, 21)
    assert 50 < night < 400
    assert dinner > 2 * night
    daily_kwh = samples[-1][1].energy_wh / 1000
    assert 3 < daily_kwh < 40
    powers = {r.power_dw for _, r in samples[: 6 * 60]}
    assert len(powers) > 50  # noise and the fridge's cycles, not a constant


def test_same_seed_same_load_and_seeds_differ() -> None:
    times = [0.0, 10.5, 3600.0, 7 * 3600 + 0.25, 8 * 3600]
    a, b, c = HouseholdLoad(seed=5), HouseholdLoad(seed=5), HouseholdLoad(seed=6)
    first = [a.sample(t) for t in times]
    assert first == [b.sample(t) for t in times]
    assert first != [c.sample(t) for t in times]


def test_sampling_rate_does_not_change_the_answer() -> None:
    dense, sparse = HouseholdLoad(seed=9), HouseholdLoad(seed=9)
    for t in range(0, 7200, 3):
        dense.sample(t + 0.1)
    assert dense.sample(7200.7) == sparse.sample(7200.7)


def test_start_energy_and_nominal_voltage() -> None:
    load = HouseholdLoad(seed=2, start_energy_wh=1_000_000, nominal_voltage_v=120.0)
    first = load.sample(0)
    later = load.sample(3 * 3600)
    assert first.energy_wh == 1_000_000
    assert later.energy_wh > first.energy_wh
    for raw in (first, later):
        assert 1100 <= raw.voltage_dv <= 1200


def test_time_must_not_go_backwards() -> None:
    load = HouseholdLoad()
    load.sample(10.0)
    load.sample(10.0)
    with pytest.raises(ValueError, match="backwards"):
        load.sample(9.9)
    with pytest.raises(ValueError, match="non-negative"):
        HouseholdLoad().sample(-1.0)


# Each example integrates up to a day, second by second: a few examples cover it.
@settings(max_examples=12, deadline=None)
@given(
    st.integers(0, 2**32),
    st.floats(0, DAY_S),
    st.lists(st.floats(0.01, 900), min_size=1, max_size=20),
)
def test_energy_is_the_integral_of_power(seed: int, start_s: float, steps: list[float]) -> None:
    """Between any two samples the counter grows by the integral of the reported power.

    The reference integral is built from a second load's power readings, one per second,
    since the power is constant within each second.
    """
    load, reference = HouseholdLoad(seed=seed), HouseholdLoad(seed=seed)
    times = [start_s]
    for step in steps:
        times.append(times[-1] + step)
    samples = [load.sample(t) for t in times]
    first_second, last_second = int(times[0]), int(times[-1])
    power_dw = {s: reference.sample(s).power_dw for s in range(first_second, last_second + 1)}

    def integral_dws(a: float, b: float) -> float:
        total = 0.0
        for second in range(int(a), int(b) + 1):
            overlap = min(b, second + 1) - max(a, second)
            if overlap > 0:
                total += power_dw[second] * overlap
        return total

    for i in range(1, len(times)):
        (t0, s0), (t1, s1) = (times[i - 1], samples[i - 1]), (times[i], samples[i])
        expected_wh = integral_dws(t0, t1) / 36_000
        assert s1.energy_wh >= s0.energy_wh
        assert abs((s1.energy_wh - s0.energy_wh) - expected_wh) < 1.0 + 1e-6
        assert s1.power_dw == power_dw[int(t1)]
