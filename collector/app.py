"""The collector's HTTP API (docs/api.md): thin routes over the group committer.

Routes raise; `_RESPONSES` is the one place where errors become HTTP statuses. Starlette finds
the handler by walking the exception's class hierarchy, so the most specific class wins whatever
the order of the table.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import secrets
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from collector import health
from collector.committer import GroupCommitter
from collector.openapi import openapi_document
from collector.payload import parse_body
from collector.watch import Watch
from energymon.clock import Clock
from energymon.errors import (
    AuthError,
    BodyTimeoutError,
    BodyTooLargeError,
    BusyError,
    EnergymonError,
    MalformedJsonError,
    PayloadError,
    SpoolFullError,
    StoreError,
)
from energymon.settings import keys_match

_JSON_TYPE = "application/json"


@dataclass(frozen=True, slots=True)
class _ErrorResponse:
    status: int
    code: str
    retry_after_s: int | None = None


_RESPONSES: dict[type[EnergymonError], _ErrorResponse] = {
    EnergymonError: _ErrorResponse(500, "internal"),
    BodyTooLargeError: _ErrorResponse(413, "body_too_large"),
    BodyTimeoutError: _ErrorResponse(408, "body_timeout"),
    PayloadError: _ErrorResponse(400, "invalid_payload"),
    MalformedJsonError: _ErrorResponse(400, "malformed_json"),
    AuthError: _ErrorResponse(401, "unauthorized"),
    BusyError: _ErrorResponse(503, "busy", retry_after_s=2),
    StoreError: _ErrorResponse(503, "not_durable", retry_after_s=30),
    SpoolFullError: _ErrorResponse(503, "not_durable", retry_after_s=30),
}


async def _error_response(request: Request, exc: Exception) -> Response:
    spec = next(_RESPONSES[c] for c in type(exc).__mro__ if c in _RESPONSES)
    headers = None if spec.retry_after_s is None else {"Retry-After": str(spec.retry_after_s)}
    # ASCII escapes: a detail quoting a client's text can never make the answer unencodable.
    body = json.dumps({"error": spec.code, "detail": str(exc)}, ensure_ascii=True)
    return Response(body, spec.status, headers=headers, media_type=_JSON_TYPE)


@dataclass(frozen=True)
class ApiConfig:
    device_keys: dict[str, str]
    max_body_bytes: int
    max_readings: int
    max_inflight_bytes: int
    inflight_device_share: float = 0.5
    body_read_timeout_s: float = 10.0

    @property
    def max_device_inflight_bytes(self) -> int:
        return int(self.max_inflight_bytes * self.inflight_device_share)


async def _read_body(request: Request, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLargeError(f"body over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class _KeyIndex:
    """The devices of each key, found by the key's keyed digest: one dictionary look-up
    whatever the number of keys, and no comparison an attacker can time (the digests are keyed
    with a secret drawn at start, so a guess says nothing about how close it came)."""

    def __init__(self, keys: dict[str, str]) -> None:
        self._secret = secrets.token_bytes(32)
        devices: dict[bytes, set[str]] = {}
        for device, key in keys.items():
            devices.setdefault(self._digest(key), set()).add(device)
        self._devices = {digest: frozenset(names) for digest, names in devices.items()}

    def _digest(self, key: str) -> bytes:
        return hmac.digest(self._secret, key.encode("utf-8"), "sha256")

    def devices(self, key: str) -> frozenset[str] | None:
        return self._devices.get(self._digest(key))


def _authenticate(request: Request, keys: dict[str, str], index: _KeyIndex) -> frozenset[str]:
    """The devices whose key the request carries, from its headers alone, before its body is
    read: an unauthenticated client never spends the in-flight budget. The key identifies the
    device (keys are per device); `X-Device` names it when several devices share one key."""
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    given = given.strip()
    if scheme.lower() != "bearer" or not given:
        raise AuthError("an Authorization: Bearer <device key> header is required")
    named = request.headers.get("x-device")
    if named is not None:
        expected = keys.get(named)
        if expected is None or not keys_match(expected, given):
            raise AuthError(f"unknown device {named!r} or wrong key")
        return frozenset([named])
    matches = index.devices(given)
    if matches is None:
        raise AuthError("unknown device key")
    return matches


def _check_device(device: str, allowed: frozenset[str]) -> None:
    if device not in allowed:
        raise AuthError(f"the key given is not the key of device {device!r}")


def build_app(
    committer: GroupCommitter,
    clock: Clock,
    config: ApiConfig,
    lifespan: Callable[[Starlette], AbstractAsyncContextManager[None]] | None = None,
    watch: Watch | None = None,
) -> Starlette:
    watch = watch or Watch()
    key_index = _KeyIndex(config.device_keys)
    in_flight_bytes = 0
    # Bytes in flight per authenticated key holder, so one device cannot take the whole budget.
    held_bytes: dict[frozenset[str], int] = {}

    def _admit(holder: frozenset[str], size: int) -> None:
        # Refused before the body is read, so a burst cannot make the collector grow; a
        # request alone is always admitted (its own size is bounded by max_body_bytes).
        if in_flight_bytes and in_flight_bytes + size > config.max_inflight_bytes:
            raise BusyError(f"{in_flight_bytes} bytes of requests in flight; retry in a moment")
        held = held_bytes.get(holder, 0)
        if held and held + size > config.max_device_inflight_bytes:
            raise BusyError(
                f"this device has {held} bytes of requests in flight; at most "
                f"{config.max_device_inflight_bytes}; retry in a moment"
            )

    async def post_readings(request: Request) -> Response:
        nonlocal in_flight_bytes
        allowed = _authenticate(request, config.device_keys, key_index)
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > config.max_body_bytes:
            raise BodyTooLargeError(f"body of {declared} bytes; at most {config.max_body_bytes}")
        size = int(declared) if declared.isdigit() else config.max_body_bytes
        _admit(allowed, size)
        in_flight_bytes += size
        held_bytes[allowed] = held_bytes.get(allowed, 0) + size
        try:
            return await _store_readings(request, allowed)
        except (StoreError, SpoolFullError):
            watch.refused_not_durable += 1
            raise
        finally:
            in_flight_bytes -= size
            held_bytes[allowed] -= size
            if not held_bytes[allowed]:
                del held_bytes[allowed]

    async def _store_readings(request: Request, allowed: frozenset[str]) -> Response:
        arrival_ms = clock.now_ms()
        try:
            async with asyncio.timeout(config.body_read_timeout_s):
                body = await _read_body(request, config.max_body_bytes)
        except TimeoutError as exc:
            raise BodyTimeoutError(
                f"the body did not arrive within {config.body_read_timeout_s} s"
            ) from exc
        submission = parse_body(body, config.max_readings, arrival_ms)
        _check_device(submission.device, allowed)
        outcome = await committer.submit(submission)
        return JSONResponse(
            {
                "ack": outcome.ack,
                "accepted": outcome.accepted,
                "duplicates": outcome.duplicates,
                "rejected": [{"seq": s, "reason": r} for s, r in outcome.rejected],
            }
        )

    async def get_health(request: Request) -> Response:
        report = await committer.call(
            lambda: health.snapshot(committer.store, clock.now_ms(), watch)
        )
        # ASCII escapes: no text in the report (a reason quoting a device's input) can make
        # encoding the answer fail.
        return Response(json.dumps(report.to_json(), ensure_ascii=True), media_type=_JSON_TYPE)

    document = json.dumps(openapi_document()).encode("utf-8")

    async def get_openapi(request: Request) -> Response:
        return Response(document, media_type=_JSON_TYPE)

    async def not_found(request: Request, exc: Any) -> Response:
        return JSONResponse({"error": "not_found", "detail": f"no route {request.url.path}"}, 404)

    async def method_not_allowed(request: Request, exc: Any) -> Response:
        # Starlette's exception carries the Allow header that RFC 9110 requires with a 405.
        return JSONResponse(
            {"error": "method_not_allowed", "detail": request.method},
            405,
            headers=getattr(exc, "headers", None),
        )

    return Starlette(
        routes=[
            Route("/api/v1/readings", post_readings, methods=["POST"]),
            Route("/health", get_health, methods=["GET"]),
            Route("/openapi.json", get_openapi, methods=["GET"]),
        ],
        exception_handlers={
            **dict.fromkeys(_RESPONSES, _error_response),
            404: not_found,
            405: method_not_allowed,
        },
        lifespan=lifespan,
    )
