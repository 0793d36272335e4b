"""Fuzzing the served OpenAPI schema with schemathesis against a real collector and influxd:
no 5xx, every response as documented, and nothing invalid stored."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings

from energymon.schema import PHYSICAL_RANGES
from tests.conftest import DEVICE, DEVICE_KEY, RunningCollector


@pytest.fixture
def api_schema(collector: RunningCollector) -> Any:
    document = requests.get(f"{collector.url}/openapi.json", timeout=10).json()
    # Device names are configuration, not input: narrow them to this collector's devices so that
    # valid bodies can pass authentication and reach the store.
    narrowed = copy.deepcopy(document)
    narrowed["components"]["schemas"]["Batch"]["properties"]["device"]["enum"] = [DEVICE]
    return schemathesis.openapi.from_dict(narrowed)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_never_fails_and_stores_nothing_invalid(case: Any, collector: RunningCollector) -> None:
    case.call_and_validate(
        base_url=collector.url, headers={"Authorization": f"Bearer {DEVICE_KEY}"}
    )
    for series in collector.influx.query('SELECT * FROM "electricity"'):
        for row in series.records():
            for name, allowed in PHYSICAL_RANGES.items():
                assert allowed.contains(row[name]), row
            assert row["device"] == DEVICE and row["seq"] >= 1
