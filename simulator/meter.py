"""A PZEM-004T v3 emulator: one or several meters on one line, served on a pseudo-terminal.

`PzemEmulator.handle` is the steppable core (one request frame in, the line's reply out, on an
injectable clock); `PtyServer` serves it on a pty with Modbus-RTU's silence-delimited framing.
Faults can be injected to exercise the collector: no reply, bad CRC, voltage sag, energy reset,
and a board that speaks the old v1 protocol.
"""

from __future__ import annotations

import logging
import os
import select
import threading
import tty
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from types import TracebackType

from energymon import modbus
from energymon.clock import Clock, SystemClock
from energymon.errors import ConfigError, ModbusError
from energymon.schema import RawMeasurement
from simulator.loadprofile import HouseholdLoad

log = logging.getLogger(__name__)

# Factory setting of the power alarm threshold: the 10 A model's full scale.
DEFAULT_ALARM_THRESHOLD_W = 2300
DEFAULT_SAG_VOLTAGE_V = 190.0
# What a v1 board sends: a voltage reply, 7 bytes with a sum checksum.
_V1_BODY = bytes([0xA0, 0x00, 0xE6, 0x02, 0x00, 0x00])
_V1_REPLY = _V1_BODY + bytes([sum(_V1_BODY) & 0xFF])
# Longer than a request's wire time on a pty, shorter than the driver's 3.5-character gap
# plus its reply timeout: silence this long ends a frame.
_FRAME_SILENCE_S = 0.003


class FaultKind(StrEnum):
    NO_REPLY = "no-reply"
    BAD_CRC = "bad-crc"
    SAG = "sag"
    ENERGY_RESET = "energy-reset"
    V1 = "v1"


@dataclass(frozen=True, slots=True)
class Fault:
    """A fault of one meter (or all when `address` is None) during simulated seconds
    [start_s, end_s); an energy reset happens once, at `start_s`."""

    kind: FaultKind
    address: int | None = None
    start_s: float = 0.0
    end_s: float | None = None

    def active(self, address: int, elapsed_s: float) -> bool:
        if self.address is not None and self.address != address:
            return False
        return self.start_s <= elapsed_s and (self.end_s is None or elapsed_s < self.end_s)


def parse_fault(text: str) -> Fault:
    """`KIND[@ADDRESS][:START[-END]]`, times in simulated seconds, e.g. `sag@2:60-90`."""
    spec, _, window = text.partition(":")
    kind_text, _, address_text = spec.partition("@")
    try:
        kind = FaultKind(kind_text.strip())
    except ValueError:
        kinds = ", ".join(k.value for k in FaultKind)
        raise ConfigError(f"fault {text!r}: unknown kind, expected one of {kinds}") from None
    try:
        address = int(address_text, 0) if address_text else None
        start_text, _, end_text = window.partition("-")
        start_s = float(start_text) if start_text else 0.0
        end_s = float(end_text) if end_text else None
    except ValueError:
        raise ConfigError(f"fault {text!r} is not KIND[@ADDRESS][:START[-END]]") from None
    if end_s is not None and end_s <= start_s:
        raise ConfigError(f"fault {text!r}: the end must come after the start")
    return Fault(kind, address, start_s, end_s)


class _Meter:
    __slots__ = ("address", "alarm_threshold_w", "energy_offset_wh", "load", "resets_done")

    def __init__(self, address: int, load: HouseholdLoad) -> None:
        self.address = address
        self.load = load
        self.alarm_threshold_w = DEFAULT_ALARM_THRESHOLD_W
        self.energy_offset_wh = 0
        self.resets_done: set[Fault] = set()


class PzemEmulator:
    """The meters on one line, answering Modbus-RTU requests as real PZEM-004T v3 modules do."""

    def __init__(
        self,
        addresses: Sequence[int] = (1,),
        *,
        seed: int = 0,
        speed: float = 1.0,
        start_s: float = 0.0,
        start_energy_wh: int = 0,
        faults: Iterable[Fault] = (),
        sag_voltage_v: float = DEFAULT_SAG_VOLTAGE_V,
        clock: Clock | None = None,
    ) -> None:
        if not addresses or len(set(addresses)) != len(addresses):
            raise ConfigError("the emulator needs one or more distinct meter addresses")
        for address in addresses:
            if not 1 <= address <= modbus.MAX_ADDRESS:
                raise ConfigError(f"meter address {address} is not in 1..247")
        if speed <= 0:
            raise ConfigError("the time factor must be positive")
        self._clock = clock or SystemClock()
        self._origin = self._clock.monotonic()
        self._speed = speed
        self._start_s = start_s
        self._sag_voltage_dv = round(10 * sag_voltage_v)
        self._faults = list(faults)
        self._lock = threading.Lock()
        self._meters = [
            _Meter(a, HouseholdLoad(seed=seed * 1000 + a, start_energy_wh=start_energy_wh))
            for a in addresses
        ]
        for meter in self._meters:
            # Integrates the load up to the start now, so the first request is answered in time.
            meter.load.sample(start_s)

    # --- test and CLI controls --------------------------------------------------------------

    @property
    def elapsed_s(self) -> float:
        """Simulated seconds since midnight of day 0."""
        return self._start_s + (self._clock.monotonic() - self._origin) * self._speed

    @property
    def addresses(self) -> tuple[int, ...]:
        with self._lock:
            return tuple(m.address for m in self._meters)

    def add_fault(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def measurement(self, address: int) -> RawMeasurement:
        """What the meter at `address` measures now (faults included)."""
        with self._lock:
            return self._measure(self._meter(address))

    # --- the steppable core -----------------------------------------------------------------

    def handle(self, frame: bytes) -> bytes | None:
        """The line's answer to one request frame, or None when nobody answers."""
        try:
            request = modbus.parse_request(frame)
        except ModbusError:
            # A real module ignores frames it cannot parse.
            return None
        with self._lock:
            if request.address in (modbus.GENERAL_ADDRESS, modbus.BROADCAST_ADDRESS):
                targets = list(self._meters)
            else:
                targets = [m for m in self._meters if m.address == request.address]
            replies = [r for r in (self._answer(m, request, frame) for m in targets) if r]
        if request.address == modbus.BROADCAST_ADDRESS or not replies:
            return None
        if len(replies) == 1:
            return replies[0]
        # Several modules answering the general address at once: open-collector outputs on
        # one wire give the bitwise AND of what they send.
        length = min(len(r) for r in replies)
        return bytes(_and_all(r[i] for r in replies) for i in range(length))

    def _fault(self, meter: _Meter, kind: FaultKind) -> Fault | None:
        elapsed_s = self.elapsed_s
        for fault in self._faults:
            if fault.kind is kind and fault.active(meter.address, elapsed_s):
                return fault
        return None

    def _answer(self, meter: _Meter, request: modbus.Request, frame: bytes) -> bytes | None:
        if self._fault(meter, FaultKind.NO_REPLY):
            return None
        if self._fault(meter, FaultKind.V1):
            return _V1_REPLY
        reply = self._execute(meter, request, frame)
        if self._fault(meter, FaultKind.BAD_CRC):
            reply = reply[:-1] + bytes([reply[-1] ^ 0xFF])
        return reply

    def _execute(self, meter: _Meter, request: modbus.Request, frame: bytes) -> bytes:
        address, function = request.address, request.function
        if function == modbus.READ_INPUT:
            registers = modbus.encode_measurement(self._measure(meter))
            return self._read(address, function, request, registers, first=0)
        if function == modbus.READ_HOLDING:
            holding = (meter.alarm_threshold_w, meter.address)
            return self._read(address, function, request, holding, first=1)
        if function == modbus.WRITE_SINGLE:
            if request.register == modbus.ALARM_THRESHOLD_REGISTER:
                meter.alarm_threshold_w = request.value
            elif request.register == modbus.ADDRESS_REGISTER:
                if not 1 <= request.value <= modbus.MAX_ADDRESS:
                    return modbus.exception_reply(address, function, 0x03)
                meter.address = request.value
            else:
                return modbus.exception_reply(address, function, 0x02)
            return frame
        if function == modbus.RESET_ENERGY:
            meter.energy_offset_wh += self._measure(meter).energy_wh
            return frame
        # Calibration (0x41) is factory-only and never sent by the collector: not emulated.
        return modbus.exception_reply(address, function, 0x01)

    @staticmethod
    def _read(
        address: int, function: int, request: modbus.Request, registers: Sequence[int], first: int
    ) -> bytes:
        count = request.value
        if not 1 <= count <= len(registers):
            return modbus.exception_reply(address, function, 0x03)
        start = request.register - first
        if start < 0 or start + count > len(registers):
            return modbus.exception_reply(address, function, 0x02)
        return modbus.read_reply(address, function, registers[start : start + count])

    def _measure(self, meter: _Meter) -> RawMeasurement:
        elapsed_s = self.elapsed_s
        raw = meter.load.sample(elapsed_s)
        for fault in self._faults:
            if (
                fault.kind is FaultKind.ENERGY_RESET
                and fault.active(meter.address, elapsed_s)
                and fault not in meter.resets_done
            ):
                meter.resets_done.add(fault)
                meter.energy_offset_wh = raw.energy_wh
        raw = replace(raw, energy_wh=raw.energy_wh - meter.energy_offset_wh)
        if self._fault(meter, FaultKind.SAG):
            # Household loads draw about the same power at a lower voltage: more current.
            current_ma = round(
                100_000 * raw.power_dw / (self._sag_voltage_dv * max(1, raw.power_factor_centi))
            )
            raw = replace(raw, voltage_dv=self._sag_voltage_dv, current_ma=current_ma)
        return replace(raw, alarm=raw.power_dw > 10 * meter.alarm_threshold_w)

    def _meter(self, address: int) -> _Meter:
        for meter in self._meters:
            if meter.address == address:
                return meter
        raise ConfigError(f"no emulated meter has address {address}")


def _and_all(values: Iterable[int]) -> int:
    result = 0xFF
    for value in values:
        result &= value
    return result


class PtyServer:
    """Serves an emulator on a new pseudo-terminal until stopped."""

    def __init__(self, emulator: PzemEmulator, link: Path | None = None) -> None:
        self._emulator = emulator
        self._link = link
        self._master, self._slave = os.openpty()
        # Raw mode: the line discipline must neither echo nor translate bytes.
        tty.setraw(self._slave)
        self.path = os.ttyname(self._slave)
        self._wake_read, self._wake_write = os.pipe()
        self._thread = threading.Thread(target=self._serve, name="pzem-emulator", daemon=True)

    def start(self) -> str:
        """Start serving; returns the path clients open (the link if one was asked for)."""
        if self._link is not None:
            if self._link.is_symlink():
                self._link.unlink()
            elif self._link.exists():
                raise ConfigError(f"{self._link} exists and is not a symbolic link")
            self._link.symlink_to(self.path)
        self._thread.start()
        log.info(
            "PZEM emulator for addresses %s serving on %s", self._emulator.addresses, self.path
        )
        return str(self._link) if self._link is not None else self.path

    def stop(self) -> None:
        os.write(self._wake_write, b"x")
        if self._thread.is_alive():
            self._thread.join()
        # Only our own link: another emulator may have taken the name since.
        link = self._link
        if link is not None and link.is_symlink() and os.readlink(link) == self.path:
            link.unlink()
        for fd in (self._master, self._slave, self._wake_read, self._wake_write):
            os.close(fd)

    def send_unasked(self, data: bytes) -> None:
        """Put bytes on the line that nobody asked for, like a late reply or noise."""
        os.write(self._master, data)

    def __enter__(self) -> PtyServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _serve(self) -> None:
        frame = b""
        while True:
            timeout = _FRAME_SILENCE_S if frame else None
            ready, _, _ = select.select([self._master, self._wake_read], [], [], timeout)
            if self._wake_read in ready:
                return
            if self._master in ready:
                frame += os.read(self._master, 256)
                continue
            # Silence after some bytes: the frame is complete.
            reply = self._emulator.handle(frame)
            frame = b""
            if reply is not None:
                os.write(self._master, reply)
