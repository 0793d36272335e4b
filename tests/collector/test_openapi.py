"""The OpenAPI document against the app it describes: every status the app answers is
documented, and every body it answers is valid under the documented schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest

from collector.openapi import openapi_document
from energymon.influx import InfluxClient
from harness.influxd import InfluxServer
from tests.collector.helpers import batch, reading
from tests.collector.inprocess import KEY, in_process

pytestmark = pytest.mark.anyio

DOCUMENT = openapi_document()
POST = DOCUMENT["paths"]["/api/v1/readings"]["post"]


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def validate(schema: dict[str, Any], instance: Any) -> None:
    """Validate with the document's components in scope, so its `$ref`s resolve."""
    jsonschema_rs.validator_for({**schema, "components": DOCUMENT["components"]}).validate(instance)


def response_schema(status: int) -> dict[str, Any]:
    documented = POST["responses"][str(status)]
    return dict(documented["content"]["application/json"]["schema"])


def test_the_document_is_openapi_and_its_schemas_are_valid_json_schema() -> None:
    assert DOCUMENT["openapi"].startswith("3.1")
    for name, schema in DOCUMENT["components"]["schemas"].items():
        assert jsonschema_rs.meta.is_valid(schema), name


def test_a_documented_batch_is_accepted_by_the_schema() -> None:
    body = batch(range(1, 3), dropped=0, meter_errors={"pzem1": 2})
    validate({"$ref": "#/components/schemas/Batch"}, body)
    with pytest.raises(jsonschema_rs.ValidationError):
        validate({"$ref": "#/components/schemas/Batch"}, {**body, "boot": -1})


@pytest.mark.parametrize(
    ("content", "key", "expected"),
    [
        (json.dumps(batch(range(1, 3))).encode(), KEY, 200),
        (json.dumps(batch([1]) | {"readings": [reading(1, voltage_v=999)]}).encode(), KEY, 200),
        (b"{", KEY, 400),
        (json.dumps({"device": "mega-01"}).encode(), KEY, 400),
        (json.dumps(batch([1])).encode(), "wrong", 401),
        (json.dumps(batch(range(1, 60))).encode(), KEY, 413),
    ],
)
async def test_every_answer_is_documented_and_valid(
    influx: InfluxClient, tmp_path: Path, content: bytes, key: str, expected: int
) -> None:
    async with in_process(influx, tmp_path, max_body_bytes=8192) as c:
        answer = await c.client.post(
            "/api/v1/readings", content=content, headers={"Authorization": f"Bearer {key}"}
        )
    assert answer.status_code == expected
    validate(response_schema(answer.status_code), answer.json())


async def test_not_durable_is_documented_and_valid(
    own_influx: InfluxServer, tmp_path: Path
) -> None:
    influx = InfluxClient(own_influx.url, "energymon", timeout_s=1.0)
    async with in_process(influx, tmp_path, spool_max_bytes=10, write_timeout_s=1.0) as c:
        own_influx.stop()
        answer = await c.post(batch([1]))
    assert answer.status_code == 503
    validate(response_schema(503), answer.json())


async def test_the_app_serves_the_document(influx: InfluxClient, tmp_path: Path) -> None:
    async with in_process(influx, tmp_path) as c:
        served = (await c.client.get("/openapi.json")).json()
    assert served == json.loads(json.dumps(DOCUMENT))
