"""The OpenAPI 3 description of the collector's HTTP API (served at `/openapi.json`).

Written by hand from the same constants the validator uses, because the contract is richer than
a type: out-of-range values are accepted and quarantined, not refused.
"""

from __future__ import annotations

from typing import Any

from collector.payload import (
    MAX_BOOT,
    MAX_METER_ERROR_SENSORS,
    MAX_NAME_CHARS,
    MAX_SEQ,
    MAX_UPTIME_MS,
)
from energymon import __version__
from energymon.schema import FIELDS, MeasuredField
from energymon.settings import Settings

# Names: no control characters or backslash, no white space at either end.
NAME_PATTERN = r"^(?!\s)[^\x00-\x1f\x7f\\]*(?<!\s)$"


def _name(description: str) -> dict[str, Any]:
    return {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_NAME_CHARS,
        "pattern": NAME_PATTERN,
        "description": description,
    }


def _int(low: int, high: int, description: str) -> dict[str, Any]:
    return {"type": "integer", "minimum": low, "maximum": high, "description": description}


_JSON_TYPES = {float: "number", int: "integer", bool: "boolean"}


def _measured(field: MeasuredField) -> dict[str, Any]:
    meaning = field.label + (f" in {field.unit}" if field.unit else "")
    if field.valid is not None:
        meaning += f", {field.valid}"
    # Any JSON value is accepted: a wrong type, NaN or an out-of-range value is acknowledged and
    # quarantined with its reason, so that one bad reading never blocks a device.
    return {
        "description": f"{_JSON_TYPES[field.kind]}, {meaning}; any other value is accepted and "
        "quarantined",
        "examples": [0],
    }


_READING = {
    "type": "object",
    "required": ["seq", "uptime_ms", "sensor", *(f.name for f in FIELDS)],
    "properties": {
        "seq": _int(1, MAX_SEQ, "1 at each boot, +1 per reading"),
        "uptime_ms": _int(0, MAX_UPTIME_MS, "device uptime when measured"),
        "sensor": _name("the meter's name on this device"),
        **{f.name: _measured(f) for f in FIELDS},
    },
}

_BATCH = {
    "type": "object",
    "required": ["device", "boot", "uptime_ms", "readings"],
    "properties": {
        "device": _name("the device's name, as in the collector's device keys"),
        "boot": _int(0, MAX_BOOT, "changes at every device restart"),
        "uptime_ms": _int(0, MAX_UPTIME_MS, "device uptime when the request was sent"),
        "dropped": _int(0, MAX_SEQ, "readings discarded by the device since this boot"),
        "meter_errors": {
            "type": "object",
            "additionalProperties": _int(0, MAX_SEQ, "failed polls since this boot"),
            "propertyNames": {"maxLength": MAX_NAME_CHARS, "pattern": NAME_PATTERN, "minLength": 1},
            "maxProperties": MAX_METER_ERROR_SENSORS,
        },
        "reset": {
            "type": "object",
            "description": "why the current boot began, as the firmware recorded it",
            "required": ["cause", "watchdog_resets"],
            "properties": {
                "cause": _name("power_on, watchdog, requested or external"),
                "stage": _name("the loop's stage when the watchdog fired"),
                "watchdog_resets": _int(0, MAX_BOOT, "watchdog resets since power-on"),
            },
        },
        "readings": {
            "type": "array",
            # The served document is the same for every installation: it states the default.
            "maxItems": Settings.model_fields["max_readings_per_request"].default,
            "items": _READING,
        },
    },
}

_ACK = {
    "type": "object",
    "required": ["ack", "accepted", "duplicates", "rejected"],
    "properties": {
        "ack": {"type": ["integer", "null"], "description": "highest seq of the request"},
        "accepted": {"type": "integer", "minimum": 0},
        "duplicates": {"type": "integer", "minimum": 0},
        "rejected": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["seq", "reason"],
                "properties": {"seq": {"type": "integer"}, "reason": {"type": "string"}},
            },
        },
    },
}

_ERROR = {
    "type": "object",
    "required": ["error", "detail"],
    "properties": {"error": {"type": "string"}, "detail": {"type": "string"}},
}


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "energymon collector",
            "version": __version__,
            "description": "Readings from PZEM-004T meters; see docs/api.md.",
        },
        "paths": {
            "/api/v1/readings": {
                "post": {
                    "summary": "Store readings; acknowledged once durable",
                    "security": [{"deviceKey": []}],
                    "parameters": [
                        {
                            "name": "X-Device",
                            "in": "header",
                            "required": False,
                            "description": "the device the key belongs to; needed only when "
                            "several devices share one key (the key alone names the device)",
                            "schema": {"type": "string"},
                        }
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": {"$ref": "#/components/schemas/Batch"}}
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "every reading is durable",
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/Ack"}}
                            },
                        },
                        "400": _error("malformed JSON or an invalid envelope; nothing stored"),
                        "401": _error("unknown device or wrong key; nothing stored"),
                        "408": _error("the body did not arrive in time; nothing stored"),
                        "413": _error("body or reading count over the limit; nothing stored"),
                        "503": _error("busy, or not durable now; retry after Retry-After"),
                    },
                }
            },
            "/health": {
                "get": {
                    "summary": "Collector health",
                    "responses": {
                        "200": {
                            "description": "health figures",
                            "content": {"application/json": {"schema": {"type": "object"}}},
                        }
                    },
                }
            },
        },
        "components": {
            "schemas": {"Batch": _BATCH, "Reading": _READING, "Ack": _ACK, "Error": _ERROR},
            "securitySchemes": {"deviceKey": {"type": "http", "scheme": "bearer"}},
        },
    }
