"""InfluxDB's answers, read and classified: a query's result streamed as MessagePack or JSON
into `Series`, and what an answer other than the expected one means (`energymon.influx` decides
what to do with it)."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import msgpack  # type: ignore[import-untyped]
import requests

from energymon.deadline import Deadline
from energymon.errors import (
    InfluxConfigError,
    InfluxError,
    InfluxRejectedError,
    InfluxUnavailableError,
)
from energymon.keepalive import no_answer_within, unreachable

Row = list[Any]

MSGPACK = "application/x-msgpack"
# What a streamed answer is read in.
PIECE_BYTES = 1 << 16
VERSION_HEADER = "X-Influxdb-Version"
# What InfluxDB answers to data it cannot take: unparseable (400), conflicting or outside a
# retention policy (400 partial write; 422 on 2.x).
DATA_REFUSED = frozenset({400, 422})


@dataclass(frozen=True)
class Series:
    name: str
    columns: list[str]
    values: list[Row]
    tags: dict[str, str] = field(default_factory=dict)

    def records(self) -> Iterator[dict[str, Any]]:
        for row in self.values:
            yield dict(zip(self.columns, row, strict=True))


def transport_error(exc: requests.RequestException, where: str, bound: Deadline) -> InfluxError:
    """No answer at all: named by cause, a certificate problem as such."""
    error: InfluxError
    if bound.expired:
        return no_answer_within(where, bound.seconds)
    if isinstance(exc, requests.exceptions.SSLError):
        reason = _certificate_problem(exc)
        if reason is not None:
            return InfluxConfigError(
                f"the TLS certificate of {where} is not trusted ({reason}): give the CA that "
                "signed it as ENERGYMON_CLOUD_CA_FILE"
            )
        return InfluxUnavailableError(f"TLS with {where} failed: {exc}")
    if isinstance(exc, requests.Timeout):
        error = InfluxUnavailableError(f"{where} timed out")
    elif isinstance(exc, requests.ConnectionError):
        return unreachable(where)
    else:
        error = InfluxUnavailableError(f"request to {where} failed: {exc}")
    error.transport = True
    return error


def _certificate_problem(exc: BaseException) -> str | None:
    """The verification message of a certificate error somewhere in the exception's chain."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return current.verify_message or str(current)
        pending += [current.__cause__, current.__context__, *_nested(current)]
    text = str(exc)
    return "certificate verify failed" if "CERTIFICATE_VERIFY_FAILED" in text else None


def _nested(exc: BaseException) -> list[BaseException]:
    # urllib3 keeps the underlying error as `reason`, requests as the first argument.
    found = [getattr(exc, "reason", None), *exc.args]
    return [e for e in found if isinstance(e, BaseException)]


def from_influxdb(response: requests.Response) -> bool:
    """InfluxDB's own answer, not a proxy's: its version header, or its JSON error body."""
    if VERSION_HEADER in response.headers:
        return True
    try:
        document = response.json()
    except ValueError:
        return False
    return isinstance(document, dict) and isinstance(
        document.get("error", document.get("message")), str
    )


def database_missing(response: requests.Response) -> bool:
    return (
        response.status_code == 404
        and from_influxdb(response)
        and "database not found" in response.text
    )


def answer_message(response: requests.Response) -> str:
    try:
        if _is_msgpack(response):
            document = msgpack.unpackb(response.content, raw=False)
        else:
            document = response.json()
        return str(document.get("error", response.text))
    except (ValueError, AttributeError, msgpack.UnpackException):
        return response.text.strip() or response.reason


def _is_msgpack(response: requests.Response) -> bool:
    return response.headers.get("Content-Type", "").startswith(MSGPACK)


def parse_query_response(
    response: requests.Response, bound: Deadline, *, chunked: bool, what: str
) -> Iterator[list[Series]]:
    documents: Iterator[Any]
    try:
        if _is_msgpack(response):
            documents = _msgpack_documents(response, bound)
        elif chunked:
            documents = (json.loads(line) for line in _lines(response, bound) if line)
        else:
            documents = iter([response.json()])
        for document in documents:
            yield _series_of(document)
    except requests.RequestException as exc:
        raise transport_error(exc, what, bound) from exc
    except (ValueError, KeyError, TypeError, AttributeError, msgpack.UnpackException) as exc:
        raise InfluxUnavailableError(f"{what} sent an unreadable query result: {exc}") from exc
    finally:
        bound.finish()
        response.close()


def _pieces(response: requests.Response, bound: Deadline) -> Iterator[bytes]:
    """The body as it arrives. The server has a full deadline for each piece; the time the
    caller spends between pieces (writing a batch to the cloud) is not counted."""
    pieces = response.iter_content(chunk_size=PIECE_BYTES)
    while True:
        bound.extend()
        piece = next(pieces, None)
        bound.pause()
        if piece is None:
            return
        yield piece


def _msgpack_documents(response: requests.Response, bound: Deadline) -> Iterator[Any]:
    """The documents of a MessagePack body: one, or one per chunk of a chunked result, each
    a MessagePack value right after the other."""
    # Its buffer starts at the size of a piece, not msgpack's default of a mebibyte for each
    # query: it grows only for a document that needs it.
    unpacker = msgpack.Unpacker(raw=False, read_size=PIECE_BYTES)
    received = 0
    for piece in _pieces(response, bound):
        unpacker.feed(piece)
        received += len(piece)
        yield from unpacker
    if unpacker.tell() != received:
        raise ValueError("the response ends inside a document")


def _lines(response: requests.Response, bound: Deadline) -> Iterator[bytes]:
    """The lines of a streamed body. `Response.iter_lines` re-splits everything it has buffered
    for every small chunk, which is quadratic in the length of a line (a chunk of a result)."""
    pending: list[bytes] = []
    for chunk in _pieces(response, bound):
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            pending.append(chunk[start:end])
            yield b"".join(pending)
            pending.clear()
            start = end + 1
        if start < len(chunk):
            pending.append(chunk[start:])
    if pending:
        yield b"".join(pending)


def _series_of(document: dict[str, Any]) -> list[Series]:
    if "error" in document:
        raise InfluxRejectedError(200, document["error"])
    # Anything else without results (a portal's or a proxy's JSON) is not an answer.
    out: list[Series] = []
    for result in document["results"]:
        if "error" in result:
            raise InfluxRejectedError(200, result["error"])
        out.extend(
            Series(s.get("name", ""), s["columns"], s.get("values", []), s.get("tags", {}))
            for s in result.get("series", [])
        )
    return out
