"""A deterministic household load: what a PZEM-004T on a home's mains would measure.

Elapsed second 0 is local midnight of day 0. Power is constant within each whole elapsed
second and is a pure function of (seed, second), so two loads with the same seed agree no matter
how often they are sampled. The energy counter is the exact integral of that step function, so
it is consistent with the power readings at any sampling rate.
"""

from __future__ import annotations

import math

from energymon.schema import RawMeasurement

_SECONDS_PER_DAY = 86_400
_DWS_PER_WH = 36_000  # deci-watt seconds in one watt hour
_MASK64 = (1 << 64) - 1

# Component identifiers for the hash, so that each random choice is independent.
_BASE, _FRIDGE, _COOK, _AC, _NOISE, _VOLT, _FREQ, _LIGHT = range(8)
_AC_FROM_S, _AC_UNTIL_S = 13 * 3600, 19 * 3600
# Meals: (earliest start hour, start window in hours, low W, high W, typical minutes).
_MEALS = (
    (6.5, 1.5, 1800.0, 2200.0, 6),  # kettle and toaster
    (12.0, 1.0, 1200.0, 2800.0, 30),  # hob at lunch
    (18.5, 1.5, 2000.0, 3500.0, 50),  # oven and hob at dinner
)


def _mix(*parts: int) -> int:
    """splitmix64 over the parts: a cheap, stable, well-spread hash (unlike `hash()`)."""
    state = 0x9E3779B97F4A7C15
    for part in parts:
        state = (state ^ (part & _MASK64)) & _MASK64
        state = (state + 0x9E3779B97F4A7C15) & _MASK64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        state = z ^ (z >> 31)
    return state


def _unit(*parts: int) -> float:
    """A uniform number in [0, 1) determined by the parts."""
    return (_mix(*parts) >> 11) / float(1 << 53)


class _Load:
    """One appliance's draw at an instant: real power and its power factor."""

    __slots__ = ("power_factor", "power_w")

    def __init__(self, power_w: float, power_factor: float) -> None:
        self.power_w = power_w
        self.power_factor = power_factor


class _DayPlan:
    """The random choices of one day: when meals are cooked, whether it is hot."""

    __slots__ = ("ac_w", "day", "lights_w", "meals")

    def __init__(self, seed: int, day: int) -> None:
        self.day = day
        self.meals: list[tuple[int, int, float, float]] = []
        for meal, (start_h, width_h, low_w, high_w, minutes) in enumerate(_MEALS):
            begin_s = round(3600 * (start_h + width_h * _unit(seed, _COOK, day, meal, 0)))
            length_s = round(60 * minutes * (0.6 + 0.8 * _unit(seed, _COOK, day, meal, 1)))
            duty = 0.55 + 0.4 * _unit(seed, _COOK, day, meal, 2)
            power_w = low_w + (high_w - low_w) * _unit(seed, _COOK, day, meal, 3)
            self.meals.append((begin_s, begin_s + length_s, duty, power_w))
        hot = _unit(seed, _AC, day) < 0.6
        self.ac_w = 700.0 + 900.0 * _unit(seed, _AC, day, 1) if hot else None
        self.lights_w = 60.0 + 120.0 * _unit(seed, _LIGHT, day)


class HouseholdLoad:
    """A household's mains: base load, fridge cycles, meals, air conditioning, lights."""

    def __init__(
        self, seed: int = 0, start_energy_wh: int = 0, nominal_voltage_v: float = 230.0
    ) -> None:
        if start_energy_wh < 0:
            raise ValueError("start_energy_wh must not be negative")
        self._seed = seed
        self._start_energy_wh = start_energy_wh
        self._nominal_voltage_v = nominal_voltage_v
        self._base_w = 70.0 + 60.0 * _unit(seed, _BASE)
        self._fridge_period_s = 2400 + int(1200 * _unit(seed, _FRIDGE, 0))
        self._fridge_on_s = int(self._fridge_period_s * (0.3 + 0.15 * _unit(seed, _FRIDGE, 1)))
        self._fridge_phase_s = int(self._fridge_period_s * _unit(seed, _FRIDGE, 2))
        self._fridge_w = 90.0 + 50.0 * _unit(seed, _FRIDGE, 3)
        self._plan_cache: _DayPlan | None = None
        self._last_elapsed_s = 0.0
        # Exact integral of whole seconds [0, _prefix_second), in deci-watt seconds.
        self._prefix_second = 0
        self._prefix_dws = 0

    # --- the power step function ------------------------------------------------------------

    def _plan(self, day: int) -> _DayPlan:
        if self._plan_cache is None or self._plan_cache.day != day:
            self._plan_cache = _DayPlan(self._seed, day)
        return self._plan_cache

    def _loads(self, second: int) -> list[_Load]:
        plan = self._plan(second // _SECONDS_PER_DAY)
        in_day = second % _SECONDS_PER_DAY
        loads = [_Load(self._base_w * (0.9 + 0.2 * _unit(self._seed, _NOISE, second)), 0.65)]
        if (second + self._fridge_phase_s) % self._fridge_period_s < self._fridge_on_s:
            loads.append(_Load(self._fridge_w, 0.8))
        for begin_s, end_s, duty, power_w in plan.meals:
            # Hobs and ovens switch their heating elements on and off in a duty cycle.
            if begin_s <= in_day < end_s and (in_day % 40) < 40 * duty:
                loads.append(_Load(power_w, 0.99))
        if plan.ac_w is not None and _AC_FROM_S <= in_day < _AC_UNTIL_S:
            # An inverter air conditioner: modulates slowly around the day's set point.
            swing = 0.75 + 0.25 * math.sin(2 * math.pi * in_day / 1800)
            loads.append(_Load(plan.ac_w * swing, 0.92))
        if in_day >= 18 * 3600 or in_day < 1800 or 6.5 * 3600 <= in_day < 8 * 3600:
            loads.append(_Load(plan.lights_w, 0.9))
        return loads

    def _power_dw(self, second: int) -> int:
        return round(10 * sum(load.power_w for load in self._loads(second)))

    def _power_factor_centi(self, second: int) -> int:
        loads = self._loads(second)
        real_w = sum(load.power_w for load in loads)
        apparent_va = sum(load.power_w / load.power_factor for load in loads)
        return round(100 * real_w / apparent_va)

    def _voltage_dv(self, second: int, power_dw: int) -> int:
        hour = (second % _SECONDS_PER_DAY) / 3600
        # The grid sags in the evening peak and under the home's own load.
        evening = max(0.0, math.cos(2 * math.pi * (hour - 19.5) / 24)) ** 4
        drop_v = 2.0 + 5.0 * evening + 0.4 * power_dw / 10_000
        noise_v = _unit(self._seed, _VOLT, second) - 0.5
        nominal = self._nominal_voltage_v
        volts = min(nominal, max(nominal - 10.0, nominal - drop_v + noise_v))
        return round(10 * volts)

    def _frequency_dhz(self, second: int) -> int:
        # A real grid wanders slowly around its nominal frequency, not from second to second.
        return 499 + int(3 * _unit(self._seed, _FREQ, second // 10))

    # --- sampling ---------------------------------------------------------------------------

    def _integral_dws(self, elapsed_s: float) -> float:
        whole = int(elapsed_s)
        while self._prefix_second < whole:
            self._prefix_dws += self._power_dw(self._prefix_second)
            self._prefix_second += 1
        return self._prefix_dws + self._power_dw(whole) * (elapsed_s - whole)

    def sample(self, elapsed_s: float) -> RawMeasurement:
        """The meter's registers `elapsed_s` seconds after midnight of day 0.

        Calls must come with non-decreasing `elapsed_s`.
        """
        if not math.isfinite(elapsed_s) or elapsed_s < 0:
            raise ValueError(f"elapsed_s must be a finite non-negative number, got {elapsed_s}")
        if elapsed_s < self._last_elapsed_s:
            raise ValueError(f"elapsed_s went backwards: {elapsed_s} after {self._last_elapsed_s}")
        self._last_elapsed_s = elapsed_s
        second = int(elapsed_s)
        power_dw = self._power_dw(second)
        power_factor_centi = self._power_factor_centi(second)
        voltage_dv = self._voltage_dv(second, power_dw)
        # I = P / (V * PF), in the registers' units (dW, dV, hundredths, mA).
        current_ma = round(100_000 * power_dw / (voltage_dv * power_factor_centi))
        energy_wh = self._start_energy_wh + int(self._integral_dws(elapsed_s) // _DWS_PER_WH)
        return RawMeasurement(
            voltage_dv=voltage_dv,
            current_ma=current_ma,
            power_dw=power_dw,
            energy_wh=energy_wh,
            frequency_dhz=self._frequency_dhz(second),
            power_factor_centi=power_factor_centi,
            alarm=False,
        )
