"""The canonical request body of `POST /api/v1/readings`, byte for byte as the firmware sends it.

`docs/api.md` ("Canonical encoding") is the rule; the golden files in `tests/contract/golden/`
pin it for this encoder and for the firmware's C++ one. Numbers are printed from the meter's
integer registers, so no float ever decides a digit.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from operator import call

from energymon.errors import EnergymonError
from energymon.schema import FIELDS, MeasuredField, RawMeasurement

_UINT32_MAX = 0xFFFF_FFFF
_UINT64_MAX = 0xFFFF_FFFF_FFFF_FFFF
# JSON's two-character escapes, which the firmware uses where one exists (as json.dumps does).
_SHORT_ESCAPES = {0x22: b'\\"', 0x5C: b"\\\\", 0x0A: b"\\n", 0x0D: b"\\r", 0x09: b"\\t",
                  0x08: b"\\b", 0x0C: b"\\f"}  # fmt: skip
# The firmware's ResetCause and Stage (firmware reset_cause.h) by their wire names.
RESET_CAUSES = ("power_on", "watchdog", "requested", "external")
RESET_STAGES = ("boot", "meters", "network", "dhcp", "send", "card", "idle")
# Only where the firmware cut the run short itself does it know the loop's stage.
_CAUSES_WITH_STAGE = ("watchdog", "requested")


class WireEncodingError(EnergymonError):
    """A value cannot be encoded the way the firmware would send it."""


@dataclass(frozen=True, slots=True)
class DeviceReading:
    """One poll of one meter as the device keeps it until the collector acknowledges it."""

    seq: int
    uptime_ms: int
    sensor: str
    raw: RawMeasurement


@dataclass(frozen=True, slots=True)
class ResetReport:
    """Why the device's current boot started, sent in every request of that boot."""

    cause: str
    watchdog_resets: int
    stage: str | None = None


def encode_name(name: str) -> bytes:
    """A JSON string literal with the firmware's escaping (see docs/api.md, Canonical encoding).

    Byte by byte over the UTF-8 form, which gives what `json.dumps(name, ensure_ascii=False)`
    gives: `\\"`, `\\\\`, `\\n`, `\\r`, `\\t`, `\\b`, `\\f`, other bytes below 0x20 as `\\u00xx`
    (lower-case hex), every other byte as it is.
    """
    try:
        utf8 = name.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise WireEncodingError(f"name {name!r} is not encodable as UTF-8") from exc
    out = bytearray(b'"')
    for byte in utf8:
        if byte in _SHORT_ESCAPES:
            out += _SHORT_ESCAPES[byte]
        elif byte < 0x20:
            out += b"\\u00%02x" % byte
        else:
            out.append(byte)
    out += b'"'
    return bytes(out)


def _uint(name: str, value: int, maximum: int | None = None) -> bytes:
    # bool is an int subclass; a True seq would silently print as 1.
    if not isinstance(value, int) or isinstance(value, bool):
        raise WireEncodingError(f"{name} must be an integer, got {value!r}")
    if value < 0 or (maximum is not None and value > maximum):
        limit = "" if maximum is None else f"..{maximum}"
        raise WireEncodingError(f"{name} {value} is outside 0{limit}")
    return b"%d" % value


def _field_encoder(field: MeasuredField) -> Callable[[int | bool], bytes]:
    """The field's key and value as the firmware prints it from the register value, which it
    holds in a C type as wide as the field's registers."""
    name, maximum = field.raw_name, field.raw_max
    key = b',"%s":' % field.name.encode("ascii")

    if field.kind is bool:

        def boolean(value: int | bool) -> bytes:
            if not isinstance(value, bool):
                raise WireEncodingError(f"{name} must be a bool, got {value!r}")
            return key + (b"true" if value else b"false")

        return boolean

    scale = field.scale
    # Integer division and remainder print the exact decimal; the remainder keeps its zeros.
    pattern = key + (b"%%d.%%0%dd" % field.decimals if field.decimals else b"%d")

    def number(value: int | bool) -> bytes:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= maximum:
            _uint(name, value, maximum)  # raises, saying why
        return pattern % divmod(value, scale) if scale > 1 else pattern % value

    return number


_ENCODERS = tuple(_field_encoder(f) for f in FIELDS)


def _encode_reading(reading: DeviceReading) -> bytes:
    return b"".join(
        [
            b'{"seq":',
            _uint("seq", reading.seq, _UINT32_MAX),
            b',"uptime_ms":',
            _uint("uptime_ms", reading.uptime_ms, _UINT64_MAX),
            b',"sensor":',
            encode_name(reading.sensor),
            *map(call, _ENCODERS, reading.raw.values()),
            b"}",
        ]
    )


def _encode_reset(reset: ResetReport) -> bytes:
    if reset.cause not in RESET_CAUSES:
        raise WireEncodingError(f"reset cause {reset.cause!r} is not one of {RESET_CAUSES}")
    parts = [b',"reset":{"cause":"', reset.cause.encode("ascii"), b'"']
    if reset.stage is not None:
        if reset.cause not in _CAUSES_WITH_STAGE:
            raise WireEncodingError(f"a {reset.cause} reset has no stage, got {reset.stage!r}")
        if reset.stage not in RESET_STAGES:
            raise WireEncodingError(f"reset stage {reset.stage!r} is not one of {RESET_STAGES}")
        parts += [b',"stage":"', reset.stage.encode("ascii"), b'"']
    parts += [
        b',"watchdog_resets":',
        _uint("watchdog_resets", reset.watchdog_resets, _UINT32_MAX),
        b"}",
    ]
    return b"".join(parts)


def encode_batch(
    device: str,
    boot: int,
    uptime_ms: int,
    readings: Sequence[DeviceReading],
    *,
    dropped: int = 0,
    meter_errors: Mapping[str, int] | None = None,
    boot_nonce: int | None = None,
    reset: ResetReport | None = None,
) -> bytes:
    """The request body; `meter_errors` iterates in the device's configuration order."""
    parts = [
        b'{"device":',
        encode_name(device),
        b',"boot":',
        _uint("boot", boot, _UINT32_MAX),
    ]
    if boot_nonce is not None:
        parts += [b',"boot_nonce":', _uint("boot_nonce", boot_nonce, _UINT32_MAX)]
    parts += [
        b',"uptime_ms":',
        _uint("uptime_ms", uptime_ms, _UINT64_MAX),
    ]
    if _uint("dropped", dropped, _UINT32_MAX) != b"0":
        parts += [b',"dropped":', b"%d" % dropped]
    errors = [
        encode_name(sensor) + b":" + _uint(f"meter_errors[{sensor!r}]", count, _UINT32_MAX)
        for sensor, count in (meter_errors or {}).items()
        if count != 0
    ]
    if errors:
        parts += [b',"meter_errors":{', b",".join(errors), b"}"]
    if reset is not None:
        parts.append(_encode_reset(reset))
    parts += [b',"readings":[', b",".join(_encode_reading(r) for r in readings), b"]}"]
    return b"".join(parts)
