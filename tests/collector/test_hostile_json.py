"""Hypothesis over hostile JSON in every field of a request, against the app, committer and
store in this process over a real influxd: never a 500, never a failure of another device's
request sent at the same moment, the collector still takes a valid request afterwards, and
`/health` still answers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from energymon.influx import InfluxClient
from energymon.schema import FIELDS
from tests.collector.helpers import batch
from tests.collector.inprocess import in_process
from tests.collector.test_hostile_requests import (
    HUGE,
    KEYS,
    OTHER,
    OTHER_KEY,
    SURROGATE,
    assert_handled,
    assert_health_answers,
    post,
    post_text,
)

# Any JSON value at all, including the hostile ones, to put anywhere in a request.
_HOSTILE_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.sampled_from([HUGE, -HUGE, 2**63, 2**64, -(2**63) - 1, 2**53 + 1]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(),
    st.sampled_from([SURROGATE, "\udfff", "a" + SURROGATE + "b", "", " ", "a\\b", "\x00", "é"]),
)
_HOSTILE = st.recursive(
    _HOSTILE_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
_PATHS = (
    [("device",), ("boot",), ("uptime_ms",), ("dropped",), ("meter_errors",), ("readings",)]
    + [("readings", 0, name) for name in ("seq", "uptime_ms", "sensor")]
    + [("readings", 0, f.name) for f in FIELDS]
    + [("readings", 0), ("meter_errors", "pzem1")]
)


def _with(body: dict[str, Any], path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    target: Any = body
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return body


def _seqs() -> Iterator[int]:
    n = 1
    while True:
        yield n
        n += 1


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(cases=st.lists(st.tuples(st.sampled_from(_PATHS), _HOSTILE), min_size=1, max_size=3))
def test_hostile_values_in_every_field_never_get_500(
    influx: InfluxClient, tmp_path_factory: pytest.TempPathFactory, cases: list[Any]
) -> None:
    async def run() -> None:
        async with in_process(influx, tmp_path_factory.mktemp("hostile"), device_keys=KEYS) as c:
            seq = _seqs()
            for path, value in cases:
                body = batch([next(seq)], meter_errors={"pzem1": 1})
                # Sent together with another device's valid request, so they are likely to
                # share a group commit: the hostile one must not fail the other.
                hostile, innocent = await asyncio.gather(
                    post(c, _with(body, path, value)),
                    post(c, batch([next(seq)], device=OTHER), OTHER_KEY),
                )
                assert_handled(hostile)
                assert innocent.status_code == 200 and innocent.json()["accepted"] == 1
            # The collector still takes a valid request, and still reports its health. A new
            # boot of the device: what the hostile requests stored may rightly refuse a reading
            # of theirs (a seq of 2**53 at an early uptime makes any later seq's uptime wrong).
            good = await post(c, batch([1], boot_nonce=4242))
            assert good.status_code == 200 and good.json()["accepted"] == 1, good.json()
            await assert_health_answers(c)

    asyncio.run(run())


# Every hostile value in every field, deterministically, beside hypothesis' random search.
_CONSTANTS: list[Any] = [
    HUGE,
    -HUGE,
    2**63,
    2**64,
    SURROGATE,
    "a" + SURROGATE,
    "\udfff",
    "",
    "\x00",
    None,
    float("nan"),
    float("inf"),
    [],
    {},
    [[[[]]]],
]
_DEEP = "__deep__"
DEEP_JSON = "[" * 50_000 + "]" * 50_000


def test_every_hostile_value_in_every_field(influx: InfluxClient, tmp_path: Path) -> None:
    async def run() -> None:
        async with in_process(influx, tmp_path, device_keys=KEYS, max_body_bytes=10**6) as c:
            seq = _seqs()
            for path in _PATHS:
                for value in [*_CONSTANTS, _DEEP]:
                    body = batch([next(seq)], meter_errors={"pzem1": 1})
                    text = json.dumps(_with(body, path, value), ensure_ascii=True)
                    text = text.replace(f'"{_DEEP}"', DEEP_JSON)
                    hostile, innocent = await asyncio.gather(
                        post_text(c, text),
                        post(c, batch([next(seq)], device=OTHER), OTHER_KEY),
                    )
                    assert_handled(hostile)
                    assert innocent.status_code == 200, (path, value, innocent.text)
            await assert_health_answers(c)

    asyncio.run(run())
