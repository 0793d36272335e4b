"""The PZEM-004T v3 driver: one `PzemBus` per serial port, any number of meters on it.

Every reply is validated (address, function, byte count, CRC, exact echo for writes); a meter
that does not answer raises `MeterTimeoutError`, never a reading of zeros.
"""

from __future__ import annotations

import logging
import time
from types import TracebackType

import serial

from energymon import modbus
from energymon.errors import MeterTimeoutError, ModbusError
from energymon.schema import RawMeasurement

log = logging.getLogger(__name__)

BAUD_RATE = 9600
# Modbus-RTU separates frames by 3.5 character times of silence; a character is 10 bits (8N1).
FRAME_GAP_S = 3.5 * 10 / BAUD_RATE
_HEAD_LEN = 3


class SerialLinkError(ModbusError):
    """The serial port itself failed: missing, unplugged, or not a serial device."""


def check_address(address: int, *, allow_general: bool = False) -> int:
    """`address` if a single meter can be asked with it, else ValueError."""
    if 1 <= address <= modbus.MAX_ADDRESS:
        return address
    if allow_general and address == modbus.GENERAL_ADDRESS:
        return address
    allowed = "1..247" + (" or 248 (general)" if allow_general else "")
    raise ValueError(f"meter address {address} is not in {allowed}")


class PzemBus:
    """The meters on one serial line, asked one at a time."""

    def __init__(self, port: str, timeout_s: float = 0.2) -> None:
        self.port = port
        self.timeout_s = timeout_s
        try:
            self._serial = serial.Serial(
                port,
                baudrate=BAUD_RATE,
                bytesize=serial.EIGHTBITS,
                parity=serial.PARITY_NONE,
                stopbits=serial.STOPBITS_ONE,
                timeout=timeout_s,
                write_timeout=timeout_s,
            )
        except (serial.SerialException, OSError) as exc:
            raise SerialLinkError(f"cannot open serial port {port}: {exc}") from exc
        self._quiet_since = time.monotonic()

    def close(self) -> None:
        self._serial.close()

    def __enter__(self) -> PzemBus:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- meter operations -------------------------------------------------------------------

    def read(self, address: int) -> RawMeasurement:
        """The meter's ten measurement registers."""
        check_address(address, allow_general=True)
        request = modbus.read_request(address, modbus.READ_INPUT, 0, modbus.MEASUREMENT_REGISTERS)
        return modbus.decode_measurement(modbus.decode_read_reply(self._ask(request), request))

    def read_alarm_threshold(self, address: int) -> int:
        """The power alarm threshold in watts."""
        check_address(address, allow_general=True)
        request = modbus.read_request(
            address, modbus.READ_HOLDING, modbus.ALARM_THRESHOLD_REGISTER, 1
        )
        (watts,) = modbus.decode_read_reply(self._ask(request), request)
        return watts

    def set_alarm_threshold(self, address: int, watts: int) -> None:
        check_address(address, allow_general=True)
        if not 0 <= watts <= 0xFFFF:
            raise ValueError(f"alarm threshold {watts} W does not fit the register")
        self._write(modbus.write_request(address, modbus.ALARM_THRESHOLD_REGISTER, watts))

    def reset_energy(self, address: int) -> None:
        """Set the meter's energy counter to zero."""
        check_address(address, allow_general=True)
        self._write(modbus.reset_energy_request(address))

    def set_address(self, old: int, new: int) -> None:
        """Give the meter at `old` the address `new`; `old` may be the general address."""
        check_address(old, allow_general=True)
        check_address(new)
        if old == modbus.GENERAL_ADDRESS:
            log.warning(
                "setting an address through the general address 0x%02X on %s: every module on "
                "the line obeys it, so only one module may be connected",
                old,
                self.port,
            )
        self._write(modbus.write_request(old, modbus.ADDRESS_REGISTER, new))

    # --- the wire ---------------------------------------------------------------------------

    def _write(self, request: bytes) -> None:
        modbus.check_reply(self._ask(request), request)

    def _ask(self, request: bytes) -> bytes:
        """Send one request and return the raw reply (possibly short, never empty)."""
        try:
            # A late reply to an earlier request must not be taken for this one's.
            self._serial.reset_input_buffer()
            gap_left_s = self._quiet_since + FRAME_GAP_S - time.monotonic()
            if gap_left_s > 0:
                time.sleep(gap_left_s)
            self._serial.write(request)
            self._serial.flush()
            deadline = time.monotonic() + self.timeout_s
            reply = self._read_until(_HEAD_LEN, deadline)
            if len(reply) == _HEAD_LEN:
                reply += self._read_until(modbus.reply_length(reply, request) - _HEAD_LEN, deadline)
        except (serial.SerialException, OSError) as exc:
            raise SerialLinkError(f"serial port {self.port} failed: {exc}") from exc
        finally:
            self._quiet_since = time.monotonic()
        if not reply:
            raise MeterTimeoutError(
                f"meter {request[0]} on {self.port} did not answer within {self.timeout_s:g} s "
                "(no mains on the meter, wrong address or a broken wire)"
            )
        return reply

    def _read_until(self, count: int, deadline: float) -> bytes:
        data = b""
        while len(data) < count:
            remaining_s = deadline - time.monotonic()
            if remaining_s <= 0:
                break
            self._serial.timeout = remaining_s
            chunk = self._serial.read(count - len(data))
            if not chunk:
                break
            data += chunk
        return data
