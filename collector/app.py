"""The collector's HTTP API (docs/api.md): thin routes over the group committer.

Routes raise; `_RESPONSES` is the one place where errors become HTTP statuses. Starlette finds
the handler by walking the exception's class hierarchy, so the most specific class wins whatever
the order of the table.
"""

from __future__ import annotations

import json
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
from collector.payload import parse_json, parse_submission
from energymon.clock import Clock
from energymon.errors import (
    AuthError,
    BodyTooLargeError,
    BusyError,
    EnergymonError,
    MalformedJsonError,
    PayloadError,
    SpoolFullError,
    StoreError,
)
from energymon.settings import keys_match


@dataclass(frozen=True, slots=True)
class _ErrorResponse:
    status: int
    code: str
    retry_after_s: int | None = None


_RESPONSES: dict[type[EnergymonError], _ErrorResponse] = {
    EnergymonError: _ErrorResponse(500, "internal"),
    BodyTooLargeError: _ErrorResponse(413, "body_too_large"),
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
    return JSONResponse({"error": spec.code, "detail": str(exc)}, spec.status, headers=headers)


@dataclass(frozen=True)
class ApiConfig:
    device_keys: dict[str, str]
    max_body_bytes: int
    max_readings: int
    max_inflight_bytes: int


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLargeError(f"body of {declared} bytes; at most {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLargeError(f"body over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _authenticate(request: Request, device: str, keys: dict[str, str]) -> None:
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        raise AuthError("an Authorization: Bearer <device key> header is required")
    expected = keys.get(device)
    if expected is None or not keys_match(expected, given.strip()):
        raise AuthError(f"unknown device {device!r} or wrong key")


def build_app(
    committer: GroupCommitter,
    clock: Clock,
    config: ApiConfig,
    lifespan: Callable[[Starlette], AbstractAsyncContextManager[None]] | None = None,
) -> Starlette:
    in_flight_bytes = 0

    async def post_readings(request: Request) -> Response:
        nonlocal in_flight_bytes
        declared = request.headers.get("content-length", "")
        size = int(declared) if declared.isdigit() else config.max_body_bytes
        # Refused before the body is read, so a burst cannot make the collector grow; a
        # request alone is always admitted (its own size is bounded by max_body_bytes).
        if in_flight_bytes and in_flight_bytes + size > config.max_inflight_bytes:
            raise BusyError(f"{in_flight_bytes} bytes of requests in flight; retry in a moment")
        in_flight_bytes += size
        try:
            return await _store_readings(request)
        finally:
            in_flight_bytes -= size

    async def _store_readings(request: Request) -> Response:
        arrival_ms = clock.now_ms()
        body = await _read_body(request, config.max_body_bytes)
        submission = parse_submission(parse_json(body), config.max_readings, arrival_ms)
        _authenticate(request, submission.device, config.device_keys)
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
        report = await committer.call(lambda: health.snapshot(committer.store, clock.now_ms()))
        return JSONResponse(report.to_json())

    document = json.dumps(openapi_document()).encode("utf-8")

    async def get_openapi(request: Request) -> Response:
        return Response(document, media_type="application/json")

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
