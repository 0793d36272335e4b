"""The Modbus-RTU codec against the reference test vectors, plus properties of the framing."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from energymon import modbus
from energymon.errors import ModbusError
from energymon.modbus import (
    CrcMismatchError,
    ModbusExceptionReplyError,
    UnexpectedReplyError,
    V1ProtocolError,
)
from energymon.schema import RawMeasurement


def h(text: str) -> bytes:
    return bytes.fromhex(text)


READ_1 = h("01 04 00 00 00 0A 70 0D")
VECTOR_4 = h("01 04 14 08 D1 00 6C 00 00 00 F4 00 00 00 26 00 00 01 F4 00 64 00 00 51 34")
VECTOR_5 = h("01 04 14 04 D0 63 46 00 01 90 FC 00 00 1D EA 00 02 02 58 00 21 00 00 D4 BB")
VECTOR_6 = h("01 04 14 08 FD E2 40 00 01 6E FF 00 00 D6 87 00 12 01 F4 00 5F FF FF 64 5D")


def test_crc_check_value() -> None:
    assert modbus.crc16(b"123456789") == 0x4B37


@pytest.mark.parametrize(
    ("address", "frame"),
    [(0x01, READ_1), (0x02, h("02 04 00 00 00 0A 70 3E")), (0xF8, h("F8 04 00 00 00 0A 64 64"))],
)
def test_read_requests_match_vectors_1_to_3(address: int, frame: bytes) -> None:
    assert modbus.read_request(address, modbus.READ_INPUT, 0, 10) == frame
    assert modbus.parse_request(frame) == modbus.Request(address, modbus.READ_INPUT, 0, 10)


@pytest.mark.parametrize(
    ("frame", "expected"),
    [
        (VECTOR_4, RawMeasurement(2257, 108, 244, 38, 500, 100, False)),
        (VECTOR_5, RawMeasurement(1232, 90_950, 37_116, 138_730, 600, 33, False)),
        (VECTOR_6, RawMeasurement(2301, 123_456, 28_415, 1_234_567, 500, 95, True)),
    ],
)
def test_measurement_replies_match_vectors_4_to_6(frame: bytes, expected: RawMeasurement) -> None:
    registers = modbus.decode_read_reply(frame, READ_1)
    assert modbus.decode_measurement(registers) == expected
    assert modbus.read_reply(1, modbus.READ_INPUT, modbus.encode_measurement(expected)) == frame
    assert modbus.reply_length(frame[:3], READ_1) == len(frame)


def test_vector_5_physical_values_use_low_word_first() -> None:
    raw = modbus.decode_measurement(modbus.decode_read_reply(VECTOR_5, READ_1))
    m = raw.to_measurement()
    assert (m.voltage_v, m.current_a, m.power_w) == (123.2, 90.95, 3711.6)
    assert (m.energy_wh, m.frequency_hz, m.power_factor, m.alarm) == (138_730, 60.0, 0.33, False)


def test_vector_7_set_address_through_general_address() -> None:
    frame = h("F8 06 00 02 00 01 FD A3")
    assert modbus.write_request(0xF8, modbus.ADDRESS_REGISTER, 1) == frame
    modbus.check_reply(frame, frame)


def test_vector_8_set_alarm_threshold() -> None:
    frame = h("01 06 00 01 08 FC DF 8B")
    assert modbus.write_request(1, modbus.ALARM_THRESHOLD_REGISTER, 2300) == frame
    assert modbus.parse_request(frame) == modbus.Request(1, modbus.WRITE_SINGLE, 1, 2300)
    modbus.check_reply(frame, frame)


@pytest.mark.parametrize(("address", "frame"), [(0x01, h("01 42 80 11")), (0xF8, h("F8 42 C2 41"))])
def test_vector_9_reset_energy(address: int, frame: bytes) -> None:
    assert modbus.reset_energy_request(address) == frame
    assert modbus.parse_request(frame) == modbus.Request(address, modbus.RESET_ENERGY, 0, 0)
    modbus.check_reply(frame, frame)
    assert modbus.reply_length(frame[:3], frame) == len(frame)


def test_vector_10_exception_reply_names_the_code() -> None:
    frame = h("01 84 02 C2 C1")
    assert modbus.exception_reply(1, modbus.READ_INPUT, 2) == frame
    assert modbus.reply_length(frame[:3], READ_1) == len(frame)
    with pytest.raises(ModbusExceptionReplyError, match="illegal data address") as caught:
        modbus.decode_read_reply(frame, READ_1)
    assert caught.value.code == 2


def test_v1_reply_is_recognised() -> None:
    v1 = h("A0 00 E6 02 00 00 88")
    assert modbus.reply_length(v1[:3], READ_1) == len(v1)
    with pytest.raises(V1ProtocolError, match="v1 protocol"):
        modbus.decode_read_reply(v1, READ_1)


def test_reply_from_another_address_is_rejected() -> None:
    with pytest.raises(UnexpectedReplyError, match="address 1, expected 2"):
        modbus.decode_read_reply(VECTOR_4, modbus.read_request(2, modbus.READ_INPUT, 0, 10))


def test_general_address_accepts_the_modules_own_address() -> None:
    request = modbus.read_request(0xF8, modbus.READ_INPUT, 0, 10)
    assert len(modbus.decode_read_reply(VECTOR_4, request)) == 10


def test_wrong_byte_count_is_rejected() -> None:
    request = modbus.read_request(1, modbus.READ_INPUT, 0, 9)
    with pytest.raises(UnexpectedReplyError, match="byte count"):
        modbus.decode_read_reply(VECTOR_4, request)


def test_write_reply_must_echo() -> None:
    request = modbus.write_request(1, modbus.ALARM_THRESHOLD_REGISTER, 2300)
    other = modbus.write_request(1, modbus.ALARM_THRESHOLD_REGISTER, 2301)
    with pytest.raises(UnexpectedReplyError, match="does not echo"):
        modbus.check_reply(other, request)


# --- properties ------------------------------------------------------------------------------

addresses = st.integers(1, modbus.MAX_ADDRESS)
words = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFF_FFFF)
measurement_registers = st.tuples(*[words] * 9, st.sampled_from([0, modbus.ALARM_ON]))
raw_measurements = st.builds(RawMeasurement, words, u32, u32, u32, words, words, st.booleans())


@given(addresses, measurement_registers)
def test_measurement_registers_round_trip(address: int, registers: tuple[int, ...]) -> None:
    request = modbus.read_request(address, modbus.READ_INPUT, 0, 10)
    frame = modbus.read_reply(address, modbus.READ_INPUT, registers)
    decoded = modbus.decode_read_reply(frame, request)
    assert decoded == registers
    assert modbus.encode_measurement(modbus.decode_measurement(decoded)) == registers


@given(raw_measurements)
def test_raw_measurement_round_trips(raw: RawMeasurement) -> None:
    assert modbus.decode_measurement(modbus.encode_measurement(raw)) == raw


@given(addresses, st.sampled_from([modbus.READ_HOLDING, modbus.READ_INPUT]), st.data())
def test_any_register_read_round_trips(address: int, function: int, data: st.DataObject) -> None:
    registers = data.draw(st.lists(words, min_size=1, max_size=125))
    request = modbus.read_request(address, function, 0, len(registers))
    frame = modbus.read_reply(address, function, registers)
    assert modbus.reply_length(frame[:3], request) == len(frame)
    assert modbus.decode_read_reply(frame, request) == tuple(registers)


def _valid_exchanges() -> st.SearchStrategy[tuple[bytes, bytes]]:
    """(request, correct reply) pairs of every kind the driver sends."""
    reads = st.builds(
        lambda a, regs: (
            modbus.read_request(a, modbus.READ_INPUT, 0, 10),
            modbus.read_reply(a, modbus.READ_INPUT, regs),
        ),
        addresses,
        measurement_registers,
    )
    writes = st.builds(
        lambda a, reg, v: (modbus.write_request(a, reg, v),) * 2,
        addresses,
        st.sampled_from([modbus.ALARM_THRESHOLD_REGISTER, modbus.ADDRESS_REGISTER]),
        words,
    )
    resets = st.builds(lambda a: (modbus.reset_energy_request(a),) * 2, addresses)
    return st.one_of(reads, writes, resets)


def _validate(reply: bytes, request: bytes) -> None:
    if request[1] in (modbus.READ_HOLDING, modbus.READ_INPUT):
        modbus.decode_read_reply(reply, request)
    else:
        modbus.check_reply(reply, request)


@given(_valid_exchanges(), st.data())
def test_any_single_byte_corruption_is_detected(
    exchange: tuple[bytes, bytes], data: st.DataObject
) -> None:
    request, reply = exchange
    _validate(reply, request)
    index = data.draw(st.integers(0, len(reply) - 1))
    flip = data.draw(st.integers(1, 0xFF))
    corrupted = bytearray(reply)
    corrupted[index] ^= flip
    # No valid reply here is 7 bytes long, so a corruption cannot pass for a v1 frame either.
    with pytest.raises(CrcMismatchError):
        _validate(bytes(corrupted), request)


@given(_valid_exchanges(), st.data())
def test_truncated_replies_are_rejected(exchange: tuple[bytes, bytes], data: st.DataObject) -> None:
    request, reply = exchange
    cut = data.draw(st.integers(0, len(reply) - 1))
    with pytest.raises(ModbusError):
        _validate(reply[:cut], request)


@given(_valid_exchanges(), st.binary(max_size=64))
def test_garbage_raises_nothing_but_modbus_errors(
    exchange: tuple[bytes, bytes], garbage: bytes
) -> None:
    request, _ = exchange
    with contextlib.suppress(ModbusError):
        _validate(garbage, request)
    with contextlib.suppress(ModbusError):
        modbus.parse_request(garbage)
    if len(garbage) >= 3:
        assert modbus.reply_length(garbage[:3], request) >= 4


@given(st.binary(min_size=1, max_size=64))
def test_crc_appended_frames_check(body: bytes) -> None:
    frame = modbus.with_crc(body)
    assert modbus.crc_ok(frame)
    assert modbus.crc16(frame) == 0  # the CRC over a frame with its own CRC is zero
