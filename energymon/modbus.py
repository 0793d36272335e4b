"""Modbus-RTU framing for the PZEM-004T v3: requests, replies and their validation.

Both sides use this codec: the driver builds requests and checks replies, the emulator parses
requests and builds (sometimes deliberately broken) replies. It mirrors the firmware's C++ core
and is checked against the same test vectors (`docs/decisions.md` says why it is our own).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from energymon.errors import ModbusError
from energymon.schema import FIELDS, MeasuredField, RawMeasurement

READ_HOLDING = 0x03
READ_INPUT = 0x04
WRITE_SINGLE = 0x06
RESET_ENERGY = 0x42
EXCEPTION_FLAG = 0x80

BROADCAST_ADDRESS = 0x00
MAX_ADDRESS = 0xF7
GENERAL_ADDRESS = 0xF8

# Input registers of one measurement, and the PZEM's holding registers.
MEASUREMENT_REGISTERS = 1 + max(r for f in FIELDS for r in f.registers)
ALARM_THRESHOLD_REGISTER = 0x0001
ADDRESS_REGISTER = 0x0002
ALARM_ON = 0xFFFF

EXCEPTION_NAMES = {
    0x01: "illegal function",
    0x02: "illegal data address",
    0x03: "illegal data value",
    0x04: "slave device failure",
}

_CRC_LEN = 2
_EXCEPTION_LEN = 5
_WORD_MAX = 0xFFFF
_WORD_BITS = 16
_V1_LEN = 7
_V1_REPLY_CODES = range(0xA0, 0xA6)


class CrcMismatchError(ModbusError):
    """A frame's CRC does not match its content: noise on the line or a collision."""


class UnexpectedReplyError(ModbusError):
    """A reply is well formed but is not the answer to our request, or is cut short."""


class ModbusExceptionReplyError(ModbusError):
    """The meter understood the request and refused it with a Modbus exception code."""

    def __init__(self, address: int, function: int, code: int) -> None:
        name = EXCEPTION_NAMES.get(code, "unknown exception")
        super().__init__(
            f"meter {address} refused function 0x{function:02X}: {name} (code 0x{code:02X})"
        )
        self.address = address
        self.function = function
        self.code = code


class V1ProtocolError(ModbusError):
    """The board speaks the old PZEM-004T v1 protocol, not Modbus-RTU."""


def crc16(data: bytes) -> int:
    """CRC-16/MODBUS: reflected polynomial 0xA001, initial value 0xFFFF, no final XOR."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def with_crc(body: bytes) -> bytes:
    """The frame: body followed by its CRC, low byte first as every PZEM sends it."""
    return body + crc16(body).to_bytes(2, "little")


def crc_ok(frame: bytes) -> bool:
    return len(frame) > _CRC_LEN and crc16(frame[:-_CRC_LEN]) == int.from_bytes(
        frame[-_CRC_LEN:], "little"
    )


def _word(value: int, what: str) -> bytes:
    if not 0 <= value <= _WORD_MAX:
        raise ValueError(f"{what} {value} does not fit a 16-bit register")
    return value.to_bytes(2, "big")


def _byte(value: int, what: str) -> int:
    if not 0 <= value <= 0xFF:
        raise ValueError(f"{what} {value} does not fit a byte")
    return value


# --- requests (what the driver sends) ------------------------------------------------------


def read_request(address: int, function: int, start: int, count: int) -> bytes:
    if function not in (READ_HOLDING, READ_INPUT):
        raise ValueError(f"function 0x{function:02X} is not a register read")
    body = bytes([_byte(address, "address"), function])
    return with_crc(body + _word(start, "register") + _word(count, "count"))


def write_request(address: int, register: int, value: int) -> bytes:
    body = bytes([_byte(address, "address"), WRITE_SINGLE])
    return with_crc(body + _word(register, "register") + _word(value, "value"))


def reset_energy_request(address: int) -> bytes:
    return with_crc(bytes([_byte(address, "address"), RESET_ENERGY]))


@dataclass(frozen=True, slots=True)
class Request:
    """A request as the meter sees it. `register`/`value` are 0 for a reset-energy request;
    for reads `value` is the register count."""

    address: int
    function: int
    register: int
    value: int


def parse_request(frame: bytes) -> Request:
    """Decode a request frame (the emulator's side); raises ModbusError if it is not one."""
    if len(frame) < 4 or not crc_ok(frame):
        raise CrcMismatchError(f"request {frame.hex(' ')} has a bad CRC or is too short")
    address, function = frame[0], frame[1]
    if function == RESET_ENERGY and len(frame) == 4:
        return Request(address, function, 0, 0)
    if len(frame) == 8:
        register = int.from_bytes(frame[2:4], "big")
        return Request(address, function, register, int.from_bytes(frame[4:6], "big"))
    raise UnexpectedReplyError(f"request {frame.hex(' ')} has an unexpected length")


# --- replies (what the meter sends) --------------------------------------------------------


def read_reply(address: int, function: int, registers: Sequence[int]) -> bytes:
    data = b"".join(_word(r, "register value") for r in registers)
    return with_crc(
        bytes([_byte(address, "address"), function, _byte(len(data), "byte count")]) + data
    )


def exception_reply(address: int, function: int, code: int) -> bytes:
    return with_crc(bytes([address, (function | EXCEPTION_FLAG) & 0xFF, code]))


def reply_length(head: bytes, request: bytes) -> int:
    """How long the reply that starts with `head` (at least 3 bytes) will be in total.

    Lets the driver stop reading as soon as a reply is complete instead of waiting for the
    timeout; whatever it reads is then validated by `check_reply`.
    """
    if head[0] in _V1_REPLY_CODES and head[0] != request[0]:
        return _V1_LEN
    if head[1] & EXCEPTION_FLAG:
        return _EXCEPTION_LEN
    if head[1] in (READ_HOLDING, READ_INPUT):
        return 3 + head[2] + _CRC_LEN
    return len(request)


def _is_v1_frame(frame: bytes) -> bool:
    return (
        len(frame) == _V1_LEN
        and frame[0] in _V1_REPLY_CODES
        and sum(frame[:-1]) & 0xFF == frame[-1]
    )


def _check_common(frame: bytes, request: bytes) -> None:
    """Checks every reply must pass: v1 protocol, CRC, address, exception."""
    address, function = request[0], request[1]
    if (frame[:1] != request[:1] or not crc_ok(frame)) and _is_v1_frame(frame):
        raise V1ProtocolError(
            f"the meter answered {frame.hex(' ')}: this board speaks the old PZEM-004T v1 "
            "protocol (7-byte frames with a sum checksum), not Modbus-RTU; use a v3 module"
        )
    if len(frame) < 4:
        raise UnexpectedReplyError(f"reply {frame.hex(' ')} is too short to be a frame")
    if not crc_ok(frame):
        hint = (
            " (several modules answering the general address?)"
            if address == GENERAL_ADDRESS
            else ""
        )
        raise CrcMismatchError(f"reply {frame.hex(' ')} from meter {address} has a bad CRC{hint}")
    # With the general address, a module answers either with it or with its own address.
    if frame[0] != address and address != GENERAL_ADDRESS:
        raise UnexpectedReplyError(f"reply from address {frame[0]}, expected {address}")
    if frame[1] == function | EXCEPTION_FLAG:
        if len(frame) != _EXCEPTION_LEN:
            raise UnexpectedReplyError(f"exception reply {frame.hex(' ')} has a wrong length")
        raise ModbusExceptionReplyError(address, function, frame[2])
    if frame[1] != function:
        raise UnexpectedReplyError(
            f"reply has function 0x{frame[1]:02X}, expected 0x{function:02X}"
        )


def check_reply(frame: bytes, request: bytes) -> None:
    """Validate a reply to a write or reset request: it must echo the request exactly."""
    _check_common(frame, request)
    if frame != request:
        raise UnexpectedReplyError(
            f"reply {frame.hex(' ')} does not echo the request {request.hex(' ')}"
        )


def decode_read_reply(frame: bytes, request: bytes) -> tuple[int, ...]:
    """Validate a reply to a register read and return the register values."""
    _check_common(frame, request)
    count = int.from_bytes(request[4:6], "big")
    if frame[2] != 2 * count:
        raise UnexpectedReplyError(f"reply has byte count {frame[2]}, expected {2 * count}")
    if len(frame) != 3 + 2 * count + _CRC_LEN:
        raise UnexpectedReplyError(
            f"reply is {len(frame)} bytes long, expected {3 + 2 * count + _CRC_LEN}"
        )
    data = frame[3:-_CRC_LEN]
    return tuple(int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2))


# --- the measurement registers -------------------------------------------------------------


def _field_value(field: MeasuredField, registers: Sequence[int]) -> int | bool:
    if field.kind is bool:
        return registers[field.registers[0]] != 0
    # The PZEM sends the LOW word first: reading it as the high word breaks every value
    # above one register.
    return sum(registers[r] << (_WORD_BITS * i) for i, r in enumerate(field.registers))


def _field_registers(field: MeasuredField, value: int | bool) -> tuple[int, ...]:
    if field.kind is bool:
        return (ALARM_ON if value else 0,)
    if not 0 <= value <= field.raw_max:
        raise ValueError(f"{field.raw_name} {value} is outside its registers' 0..{field.raw_max}")
    shifts = range(0, _WORD_BITS * len(field.registers), _WORD_BITS)
    return tuple((value >> shift) & _WORD_MAX for shift in shifts)


def decode_measurement(registers: Sequence[int]) -> RawMeasurement:
    if len(registers) != MEASUREMENT_REGISTERS:
        raise UnexpectedReplyError(
            f"a measurement has {MEASUREMENT_REGISTERS} registers, got {len(registers)}"
        )
    return RawMeasurement.from_values(_field_value(f, registers) for f in FIELDS)


def encode_measurement(raw: RawMeasurement) -> tuple[int, ...]:
    """The registers a meter sends for `raw` (the emulator's side)."""
    registers = [0] * MEASUREMENT_REGISTERS
    for field, value in zip(FIELDS, raw.values(), strict=True):
        for register, word in zip(field.registers, _field_registers(field, value), strict=True):
            registers[register] = word
    return tuple(registers)
