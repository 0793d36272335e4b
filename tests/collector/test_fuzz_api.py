"""Fuzzing the served OpenAPI schema with schemathesis against a real collector and influxd:
no 5xx, every response as documented, and nothing invalid stored.

Cases come from schemathesis' strategies inside an ordinary hypothesis test, valid and invalid
ones, for every operation the schema describes.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from energymon.schema import FIELDS
from tests.conftest import DEVICE, DEVICE_KEY, RunningCollector

OPERATIONS = [("/api/v1/readings", "POST"), ("/health", "GET")]


def _schema(collector: RunningCollector) -> Any:
    document = requests.get(f"{collector.url}/openapi.json", timeout=10).json()
    assert {
        (path, method.upper()) for path, ops in document["paths"].items() for method in ops
    } == set(OPERATIONS)
    # Device names are configuration, not input: narrow them to this collector's devices so that
    # valid bodies can pass authentication and reach the store.
    narrowed = copy.deepcopy(document)
    narrowed["components"]["schemas"]["Batch"]["properties"]["device"]["enum"] = [DEVICE]
    return schemathesis.openapi.from_dict(narrowed)


def _nothing_invalid_stored(collector: RunningCollector) -> None:
    for series in collector.influx.query('SELECT * FROM "electricity"'):
        for row in series.records():
            for field in FIELDS:
                if field.valid is not None:
                    assert field.valid.contains(row[field.name]), row
            assert row["device"] == DEVICE and row["seq"] >= 1


# `/health` takes no input, so there is no invalid request to make of it.
CASES = [
    ("/api/v1/readings", "POST", GenerationMode.POSITIVE),
    ("/api/v1/readings", "POST", GenerationMode.NEGATIVE),
    ("/health", "GET", GenerationMode.POSITIVE),
]


@pytest.mark.parametrize(("path", "method", "mode"), CASES)
def test_api_never_fails_and_stores_nothing_invalid(
    collector: RunningCollector, path: str, method: str, mode: GenerationMode
) -> None:
    operation = _schema(collector)[path][method]

    @given(operation.as_strategy(generation_mode=mode))
    @settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
    def check(case: Any) -> None:
        case.call_and_validate(
            base_url=collector.url, headers={"Authorization": f"Bearer {DEVICE_KEY}"}
        )
        _nothing_invalid_stored(collector)

    check()
