"""`parse_body` (orjson where both parsers agree) tells every body what `parse_submission` over
the standard parser tells it: the same submission, or the same error."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.payload import parse_body, parse_json, parse_submission
from collector.submission import Submission
from energymon.errors import EnergymonError
from tests.collector.helpers import batch

ARRIVAL_MS = 1_700_000_000_000

# Values where the two parsers part: integers beyond 64 bits, NaN and infinities, lone
# surrogates, text where a number belongs.
odd_values = (
    st.integers()
    | st.sampled_from([2**63, 2**64 + 1, -(2**63) - 1, 10**30])
    | st.floats()
    | st.booleans()
    | st.none()
    | st.text(max_size=4)
    | st.sampled_from(["\ud800", "a\udfff"])
)
reading_keys = st.sampled_from(
    ["seq", "uptime_ms", "sensor", "voltage_v", "energy_wh", "alarm", "extra"]
)
top_keys = st.sampled_from(["device", "boot", "uptime_ms", "dropped", "boot_nonce", "extra"])


def _told(parse: Callable[[], Submission]) -> str:
    """What a parser tells a body, as text: floats and integers that compare equal differ."""
    try:
        return repr(parse())
    except EnergymonError as exc:
        return f"{type(exc).__name__}: {exc}"


def _agree(body: bytes) -> None:
    fast = _told(lambda: parse_body(body, 1000, ARRIVAL_MS))
    standard = _told(lambda: parse_submission(parse_json(body), 1000, ARRIVAL_MS))
    assert fast == standard


@given(
    st.lists(st.tuples(st.integers(0, 2), reading_keys, odd_values), max_size=3),
    st.lists(st.tuples(top_keys, odd_values), max_size=2),
)
def test_both_parsers_tell_a_body_the_same(
    changes: list[tuple[int, str, Any]], top_changes: list[tuple[str, Any]]
) -> None:
    document = batch(range(1, 4))
    for index, key, value in changes:
        document["readings"][index][key] = value
    for key, value in top_changes:
        document[key] = value
    _agree(json.dumps(document).encode("utf-8", "surrogatepass"))


@given(st.binary(max_size=200))
def test_any_bytes_are_told_the_same(body: bytes) -> None:
    _agree(body)


def test_a_firmware_body_is_read_from_orjson_as_it_would_be_from_json() -> None:
    body = json.dumps(batch(range(1, 6))).encode()
    assert parse_body(body, 1000, ARRIVAL_MS) == parse_submission(
        parse_json(body), 1000, ARRIVAL_MS
    )


@pytest.mark.parametrize(
    "reading_changes",
    [
        {"extra": 2**64 + 1},  # orjson reads it as a float
        {"energy_wh": 2**64 + 1},
        {"seq": 2**64},
        {"voltage_v": float("nan")},  # orjson refuses NaN
        {"sensor": "\ud800"},  # and lone surrogates
        {"uptime_ms": 10**9},  # after the request was sent
    ],
)
def test_where_the_parsers_part_the_standard_one_decides(reading_changes: dict[str, Any]) -> None:
    document = batch(range(1, 3))
    document["readings"][1].update(reading_changes)
    _agree(json.dumps(document).encode("utf-8", "surrogatepass"))
