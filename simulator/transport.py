"""How the fake device reaches the collector: an HTTP transport and the reading of its replies."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import requests

from energymon.backoff import parse_retry_after
from energymon.errors import EnergymonError


class TransportError(EnergymonError):
    """The request did not get an HTTP response (refused, reset, timed out)."""


class Transport(Protocol):
    def post(
        self, url: str, body: bytes, headers: Mapping[str, str]
    ) -> tuple[int, Mapping[str, str], bytes]:
        """Send one request; raise `TransportError` when no HTTP response came back."""
        ...


class RequestsTransport:
    def __init__(self, timeout_s: float = 10.0) -> None:
        self._session = requests.Session()
        self._timeout_s = timeout_s

    def post(
        self, url: str, body: bytes, headers: Mapping[str, str]
    ) -> tuple[int, Mapping[str, str], bytes]:
        try:
            response = self._session.post(
                url, data=body, headers=dict(headers), timeout=self._timeout_s
            )
        except requests.RequestException as exc:
            raise TransportError(f"POST {url} failed: {exc}") from exc
        return response.status_code, response.headers, response.content

    def close(self) -> None:
        self._session.close()


@dataclass(frozen=True, slots=True)
class Ack:
    seq: int | None
    accepted: int
    duplicates: int


def retry_after_s(headers: Mapping[str, str], now_ms: int) -> float | None:
    """The reply's Retry-After in seconds; a transport may hand over a plain, case-keeping dict."""
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    return parse_retry_after(value, now_ms)


def parse_ack(body: bytes) -> Ack | None:
    try:
        reply = json.loads(body)
        ack = Ack(seq=reply["ack"], accepted=reply["accepted"], duplicates=reply["duplicates"])
        rejected = reply["rejected"]
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(rejected, list):
        return None
    counts = (
        (ack.accepted, ack.duplicates)
        if ack.seq is None
        else (ack.seq, ack.accepted, ack.duplicates)
    )
    if not all(isinstance(n, int) and not isinstance(n, bool) for n in counts):
        return None
    return ack
