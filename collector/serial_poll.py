"""Polls the PZEM-004T meters on the collector's own serial ports and hands readings to a sink.

`SerialPoller.run_once` asks every configured meter once; `run` calls it on schedule. A meter
that does not answer is reported as a failure (never as zeros). Readings the sink refuses are
kept, up to a bound, and offered again first on the next poll.
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from collector.pzem import PzemBus, SerialLinkError
from collector.submission import Candidate, Submission
from energymon import modbus
from energymon.boundary import ErrorBoundary, Faults
from energymon.clock import Clock, SystemClock
from energymon.errors import ConfigError, EnergymonError
from energymon.lineproto import name_problem
from energymon.schema import RawMeasurement, Reading
from energymon.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_MAX_PENDING = 3600
_NONCE_LIMIT = 2**32

# Returns once the submission is durable; raises an EnergymonError when it cannot be made so.
Sink = Callable[[Submission], None]


class MeterBus(Protocol):
    """What the poller needs of a bus; `PzemBus` is the real one."""

    def read(self, address: int) -> RawMeasurement: ...

    def close(self) -> None: ...


# Called with (port, timeout_s); `PzemBus` itself by default.
BusFactory = Callable[[str, float], MeterBus]


@dataclass(frozen=True, slots=True)
class SerialMeter:
    port: str
    address: int
    sensor: str


def parse_serial_meters(text: str) -> tuple[SerialMeter, ...]:
    """Parse the `serial_meters` setting: `port:address=sensor,...`."""
    meters: list[SerialMeter] = []
    for raw in text.split(","):
        item = raw.strip()
        if not item:
            continue
        where, sep, sensor = item.partition("=")
        # rpartition: ports such as /dev/serial/by-path/...-usb-0:1.2:1.0-port0 contain colons.
        port, colon, address_text = where.strip().rpartition(":")
        sensor, port = sensor.strip(), port.strip()
        if not sep or not colon or not port or not address_text.strip():
            raise ConfigError(
                f"ENERGYMON_SERIAL_METERS: {item!r} is not port:address=sensor "
                "(for example /dev/ttyUSB0:1=mains)"
            )
        try:
            address = int(address_text.strip(), 0)
        except ValueError:
            raise ConfigError(
                f"ENERGYMON_SERIAL_METERS: {item!r}: address {address_text!r} is not a number"
            ) from None
        if not 1 <= address <= modbus.GENERAL_ADDRESS:
            raise ConfigError(
                f"ENERGYMON_SERIAL_METERS: {item!r}: address {address} is not in 1..247 "
                "(or 248, the general address, for a port with a single meter)"
            )
        problem = name_problem(sensor)
        if problem:
            raise ConfigError(f"ENERGYMON_SERIAL_METERS: {item!r}: sensor name {problem}")
        meters.append(SerialMeter(port, address, sensor))
    _check_unique(meters)
    return tuple(meters)


def _check_unique(meters: Sequence[SerialMeter]) -> None:
    sensors = Counter(m.sensor for m in meters)
    twice = sorted(s for s, n in sensors.items() if n > 1)
    if twice:
        raise ConfigError(f"ENERGYMON_SERIAL_METERS: sensor {twice[0]!r} is configured twice")
    places = Counter((m.port, m.address) for m in meters)
    for (port, address), n in places.items():
        if n > 1:
            raise ConfigError(f"ENERGYMON_SERIAL_METERS: {port} address {address} is used twice")
    per_port = Counter(m.port for m in meters)
    for meter in meters:
        if meter.address == modbus.GENERAL_ADDRESS and per_port[meter.port] > 1:
            raise ConfigError(
                f"ENERGYMON_SERIAL_METERS: {meter.port} uses the general address 248 with other "
                "meters on the same port: every module answers it, so it must be alone"
            )


@dataclass(frozen=True, slots=True)
class MeterFailure:
    sensor: str
    port: str
    address: int
    kind: str  # the exception's class name, e.g. MeterTimeoutError, CrcMismatchError
    reason: str


@dataclass(frozen=True, slots=True)
class PollResult:
    readings: tuple[Reading, ...]  # produced by this poll
    failures: tuple[MeterFailure, ...]
    delivered: int  # readings the sink accepted in this poll, earlier pending ones included
    pending: int  # readings kept for the next poll because the sink refused them
    dropped: int  # readings given up in this poll because pending reached its bound


class SerialPoller:
    """Polls configured serial meters; see the module docstring."""

    def __init__(
        self,
        meters: Sequence[SerialMeter],
        *,
        device: str,
        boot: int,
        sink: Sink,
        timeout_s: float = 0.2,
        interval_s: float = 1.0,
        max_pending: int = DEFAULT_MAX_PENDING,
        clock: Clock | None = None,
        bus_factory: BusFactory = PzemBus,
    ) -> None:
        if max_pending < 0:
            raise ConfigError("max_pending must not be negative")
        self._meters = tuple(meters)
        self._device = device
        self._boot = boot
        self._sink = sink
        self._timeout_s = timeout_s
        self.interval_s = interval_s
        self._max_pending = max_pending
        self._clock: Clock = clock or SystemClock()
        self._bus_factory = bus_factory
        self._buses: dict[str, MeterBus] = {}
        self._next_seq = 1
        self._pending: list[Reading] = []
        self._sink_failing = False
        self._dropped_in_outage = 0
        self._failing: dict[str, int] = {}
        self._meter_errors: Counter[str] = Counter()
        self._dropped = 0
        # The Pi's meters are timed as a device times its own: an uptime from the monotonic
        # clock, and the wall clock only in the anchor each submission proposes, so a step of
        # the wall clock can never reorder or collide readings.
        self._start_ms = self._clock.now_ms()
        self._start_monotonic = self._clock.monotonic()
        self._last_offset_ms = -1
        # Drawn at each start, as the firmware draws one at each boot: the collector then tells
        # this run's readings from another's by identity, never by guessing from uptimes.
        self._nonce = secrets.randbelow(_NONCE_LIMIT - 1) + 1

    @classmethod
    def from_settings(
        cls, settings: Settings, *, boot: int, sink: Sink, clock: Clock | None = None
    ) -> SerialPoller:
        return cls(
            parse_serial_meters(settings.serial_meters),
            device=settings.serial_device_name,
            boot=boot,
            sink=sink,
            timeout_s=settings.serial_timeout_s,
            interval_s=settings.serial_poll_interval_s,
            clock=clock,
        )

    @property
    def meters(self) -> tuple[SerialMeter, ...]:
        return self._meters

    @property
    def boot(self) -> int:
        return self._boot

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def next_seq(self) -> int:
        return self._next_seq

    @property
    def meter_errors(self) -> Mapping[str, int]:
        """Failed polls per sensor since start (every configured sensor is present)."""
        return {m.sensor: self._meter_errors[m.sensor] for m in self._meters}

    @property
    def dropped(self) -> int:
        """Readings given up since start because the sink refused them for too long."""
        return self._dropped

    # --- one poll ---------------------------------------------------------------------------

    def run_once(self) -> PollResult:
        readings: list[Reading] = []
        failures: list[MeterFailure] = []
        for meter in self._meters:
            try:
                raw = self._bus(meter.port).read(meter.address)
            except EnergymonError as exc:
                failures.append(self._failed(meter, exc))
                continue
            readings.append(self._reading(meter, raw))
            self._answered(meter)
        delivered, dropped = self._deliver(readings)
        return PollResult(tuple(readings), tuple(failures), delivered, len(self._pending), dropped)

    def _bus(self, port: str) -> MeterBus:
        bus = self._buses.get(port)
        if bus is None:
            bus = self._bus_factory(port, self._timeout_s)
            self._buses[port] = bus
        return bus

    def _uptime_ms(self) -> int:
        return round((self._clock.monotonic() - self._start_monotonic) * 1000)

    def _reading(self, meter: SerialMeter, raw: RawMeasurement) -> Reading:
        # Uptime grows with seq at the collector's check, also for meters read in one tick.
        offset_ms = max(self._uptime_ms(), self._last_offset_ms + 1)
        self._last_offset_ms = offset_ms
        # Out-of-range values are handed on as they are: the pipeline quarantines them.
        reading = Reading(
            device=self._device,
            sensor=meter.sensor,
            boot=self._boot,
            seq=self._next_seq,
            time_ms=self._start_ms + offset_ms,
            measurement=raw.to_measurement(),
        )
        self._next_seq += 1
        return reading

    def _failed(self, meter: SerialMeter, exc: EnergymonError) -> MeterFailure:
        if isinstance(exc, SerialLinkError):
            # Reopen the port on the next poll: it may have been unplugged and come back.
            bus = self._buses.pop(meter.port, None)
            if bus is not None:
                bus.close()
        self._meter_errors[meter.sensor] += 1
        streak = self._failing.get(meter.sensor, 0)
        if streak == 0:
            log.warning(
                "serial meter %s (%s address %d) failed: %s",
                meter.sensor,
                meter.port,
                meter.address,
                exc,
            )
        self._failing[meter.sensor] = streak + 1
        return MeterFailure(meter.sensor, meter.port, meter.address, type(exc).__name__, str(exc))

    def _answered(self, meter: SerialMeter) -> None:
        streak = self._failing.pop(meter.sensor, 0)
        if streak:
            log.info("serial meter %s answers again after %d failed polls", meter.sensor, streak)

    def _deliver(self, readings: list[Reading]) -> tuple[int, int]:
        """Hand pending and new readings on; with none, a heartbeat still reports the meters'
        errors, so a bus whose every meter is silent shows in health."""
        batch = [*self._pending, *readings]
        candidates = tuple(
            Candidate.of_measurement(r.seq, r.time_ms - self._start_ms, r.sensor, r.measurement)
            for r in batch
        )
        uptime_ms = max(self._uptime_ms(), self._last_offset_ms)
        submission = Submission(
            self._device,
            self._boot,
            self._clock.now_ms() - uptime_ms,
            candidates,
            self._dropped,
            self.meter_errors,
            boot_nonce=self._nonce,
            uptime_ms=uptime_ms,
        )
        try:
            self._sink(submission)
        except EnergymonError as exc:
            return 0, self._keep(batch, exc)
        self._pending = []
        if self._sink_failing:
            log.info(
                "serial readings accepted again; %d were dropped while they were refused",
                self._dropped_in_outage,
            )
            self._sink_failing = False
            self._dropped_in_outage = 0
        return len(batch), 0

    def _keep(self, batch: list[Reading], exc: EnergymonError) -> int:
        excess = max(0, len(batch) - self._max_pending)
        if not self._sink_failing:
            log.warning(
                "serial readings refused (%s: %s); keeping up to %d",
                type(exc).__name__,
                exc,
                self._max_pending,
            )
            self._sink_failing = True
        if excess and not self._dropped_in_outage:
            log.warning(
                "serial readings pending reached %d: dropping the oldest", self._max_pending
            )
        # The oldest go first: the freshest readings matter most once the sink recovers.
        self._pending = batch[excess:]
        self._dropped += excess
        self._dropped_in_outage += excess
        return excess

    # --- the schedule -----------------------------------------------------------------------

    def run(self, stop: threading.Event, boundary: ErrorBoundary | None = None) -> None:
        """Poll every `interval_s` until `stop` is set; a late poll is not made up for. A poll
        that raises does not end the thread: `boundary` logs it once, shows it in health and
        backs off before the next poll."""
        guard = boundary or ErrorBoundary("serial poller", Faults(), self._clock)
        due = self._clock.monotonic()
        try:
            while not stop.is_set():
                guard.run(self.run_once)
                due += self.interval_s
                now = self._clock.monotonic()
                due = max(due, now + guard.retry_in_s)
                stop.wait(due - now)
        finally:
            self.close()

    def close(self) -> None:
        for bus in self._buses.values():
            bus.close()
        self._buses.clear()
