"""A small client for InfluxDB's v1 HTTP API: `/ping`, `/write`, `/query` (InfluxQL).

InfluxDB 1.x serves this API natively and 2.x and 3.x serve it for compatibility, so one client
covers every version a user may run. Errors are classified so callers can decide what to do:
`InfluxUnavailableError` is worth retrying, `InfluxRejectedError` is not.

Once a server has said it is InfluxDB 1.x, query results are asked for as MessagePack: cheaper
to produce and to decode than JSON, and it keeps `230.0` a float. Results are decoded by the
content type the server actually sent, so a server that ignores the request still works.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgpack  # type: ignore[import-untyped]
import requests

from energymon.backoff import parse_retry_after
from energymon.clock import SystemClock
from energymon.errors import (
    InfluxAuthError,
    InfluxError,
    InfluxRejectedError,
    InfluxUnavailableError,
)

Row = list[Any]

MSGPACK = "application/x-msgpack"


@dataclass(frozen=True)
class Series:
    name: str
    columns: list[str]
    values: list[Row]
    tags: dict[str, str] = field(default_factory=dict)

    def records(self) -> Iterator[dict[str, Any]]:
        for row in self.values:
            yield dict(zip(self.columns, row, strict=True))


def quote_ident(name: str) -> str:
    """An InfluxQL identifier in double quotes."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_string(value: str) -> str:
    """An InfluxQL string literal in single quotes."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class InfluxClient:
    """Talks to one database on one server. Safe to share between threads for writes and
    queries (a `requests.Session` per client is thread-safe enough for this use)."""

    def __init__(
        self,
        url: str,
        database: str,
        *,
        username: str = "",
        password: str = "",
        token: str = "",
        timeout_s: float = 10.0,
        verify: bool | str = True,
        retention_policy: str = "",
        compress_responses: bool = True,
        create_database: bool = True,
    ) -> None:
        self.url = url.rstrip("/")
        self.database = database
        self.timeout_s = timeout_s
        self.retention_policy = retention_policy
        self._session = requests.Session()
        self._session.verify = verify
        if not compress_responses:
            # On loopback, gzip only costs CPU on both ends (a Pi has little to spare).
            self._session.headers["Accept-Encoding"] = "identity"
        if token:
            self._session.headers["Authorization"] = f"Token {token}"
        elif username:
            self._session.auth = (username, password)
        # Off for a least-privilege user: `CREATE DATABASE` needs an admin on InfluxDB 1.x, and a
        # database that vanished must not silently come back empty.
        self._may_create_database = create_database
        self._database_ready = False
        # Learnt from the first response: 1.x answers queries in MessagePack when asked.
        self._server_version: str | None = None

    def __repr__(self) -> str:
        # Never show credentials.
        return f"InfluxClient({self.url!r}, {self.database!r})"

    def close(self) -> None:
        self._session.close()

    def ping(self) -> str:
        """The server's version; raises if it cannot be reached."""
        response = self._request("GET", "/ping", timeout=min(self.timeout_s, 5.0))
        if response.status_code != 204:
            raise _error_for(response)
        return response.headers.get("X-Influxdb-Version", "unknown")

    def create_database(self) -> None:
        self.query(f"CREATE DATABASE {quote_ident(self.database)}", database=None, method="POST")
        self._database_ready = True

    def write(self, lines: Sequence[str] | bytes, *, timeout_s: float | None = None) -> None:
        """Write line-protocol points with millisecond time stamps. Returns only once the server
        acknowledged them (HTTP 204)."""
        body = lines if isinstance(lines, bytes) else "\n".join(lines).encode("utf-8")
        if not body:
            return
        if not self._database_ready and self._may_create_database:
            self.create_database()
        response = self._request(
            "POST", "/write", params=self._write_params(), data=body,
            timeout=timeout_s or self.timeout_s,
        )  # fmt: skip
        if response.status_code == 204:
            return
        if (
            response.status_code == 404
            and "database not found" in response.text
            and self._may_create_database
        ):
            # Dropped behind our back, or created on another server after a restore.
            self._database_ready = False
            self.write(body, timeout_s=timeout_s)
            return
        raise _error_for(response)

    def _write_params(self) -> dict[str, str]:
        params = {"db": self.database, "precision": "ms"}
        if self.retention_policy:
            params["rp"] = self.retention_policy
        return params

    def write_stream(self, body: Iterable[bytes], *, timeout_s: float | None = None) -> None:
        """Write line protocol produced while it is sent (chunked transfer encoding), so the
        caller never holds the whole request. Returns only once the server acknowledged all of
        it (InfluxDB reads the whole body before it stores any of it). An exception raised by
        `body` aborts the request and propagates unchanged. A body cannot be sent twice: if
        the database vanished, this raises `InfluxRejectedError` (404) and the next write
        creates it again."""
        if not self._database_ready and self._may_create_database:
            self.create_database()
        response = self._request(
            "POST", "/write", params=self._write_params(), data=iter(body),
            timeout=timeout_s or self.timeout_s,
        )  # fmt: skip
        if response.status_code == 204:
            return
        if response.status_code == 404:
            self._database_ready = False
        raise _error_for(response)

    def query(self, q: str, *, database: str | None = "", method: str = "GET") -> list[Series]:
        """Run InfluxQL and return every series of every statement; raise on any error."""
        return [s for chunk in self._query(q, database=database, method=method) for s in chunk]

    def query_chunks(self, q: str, *, chunk_size: int = 10_000) -> Iterator[list[Series]]:
        """Stream a large result in chunks, so that memory stays bounded whatever its size."""
        return self._query(q, database="", method="GET", chunk_size=chunk_size)

    def _query(
        self, q: str, *, database: str | None, method: str, chunk_size: int = 0
    ) -> Iterator[list[Series]]:
        params = {"q": q, "epoch": "ms"}
        db = self.database if database == "" else database
        if db:
            params["db"] = db
        if chunk_size:
            params["chunked"] = "true"
            params["chunk_size"] = str(chunk_size)
        headers = {"Accept": MSGPACK} if (self._server_version or "").startswith("1.") else {}
        if method == "POST":
            response = self._request("POST", "/query", data=params, headers=headers)
        else:
            response = self._request(
                "GET", "/query", params=params, stream=bool(chunk_size), headers=headers
            )
        if response.status_code != 200:
            raise _error_for(response)
        return _parse_query_response(response, chunked=bool(chunk_size))

    def _request(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        kwargs.setdefault("timeout", self.timeout_s)
        try:
            response = self._session.request(method, self.url + path, **kwargs)
        except requests.Timeout as exc:
            raise InfluxUnavailableError(f"InfluxDB at {self.url} timed out") from exc
        except requests.ConnectionError as exc:
            raise InfluxUnavailableError(f"InfluxDB at {self.url} is unreachable") from exc
        except requests.RequestException as exc:
            raise InfluxUnavailableError(
                f"request to InfluxDB at {self.url} failed: {exc}"
            ) from exc
        if self._server_version is None:
            self._server_version = response.headers.get("X-Influxdb-Version")
        return response


def _is_msgpack(response: requests.Response) -> bool:
    return response.headers.get("Content-Type", "").startswith(MSGPACK)


def _parse_query_response(response: requests.Response, *, chunked: bool) -> Iterator[list[Series]]:
    documents: Iterator[Any]
    try:
        if _is_msgpack(response):
            documents = _msgpack_documents(response)
        elif chunked:
            documents = (json.loads(line) for line in _lines(response) if line)
        else:
            documents = iter([response.json()])
        for document in documents:
            yield _series_of(document)
    except (ValueError, msgpack.UnpackException, requests.RequestException) as exc:
        raise InfluxUnavailableError(f"InfluxDB sent an unreadable query result: {exc}") from exc
    finally:
        response.close()


def _msgpack_documents(response: requests.Response) -> Iterator[Any]:
    """The documents of a MessagePack body: one, or one per chunk of a chunked result, each
    a MessagePack value right after the other."""
    unpacker = msgpack.Unpacker(raw=False)
    received = 0
    for piece in response.iter_content(chunk_size=1 << 16):
        unpacker.feed(piece)
        received += len(piece)
        yield from unpacker
    if unpacker.tell() != received:
        raise ValueError("the response ends inside a document")


def _lines(response: requests.Response) -> Iterator[bytes]:
    """The lines of a streamed body. `Response.iter_lines` re-splits everything it has buffered
    for every small chunk, which is quadratic in the length of a line (a chunk of a result)."""
    pending: list[bytes] = []
    for chunk in response.iter_content(chunk_size=1 << 16):
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
    out: list[Series] = []
    for result in document.get("results", []):
        if "error" in result:
            raise InfluxRejectedError(200, result["error"])
        out.extend(
            Series(s.get("name", ""), s["columns"], s.get("values", []), s.get("tags", {}))
            for s in result.get("series", [])
        )
    return out


def _error_for(response: requests.Response) -> InfluxError:
    try:
        if _is_msgpack(response):
            document = msgpack.unpackb(response.content, raw=False)
        else:
            document = response.json()
        message = str(document.get("error", response.text))
    except (ValueError, AttributeError, msgpack.UnpackException):
        message = response.text.strip() or response.reason
    status = response.status_code
    if status in (401, 403):
        return InfluxAuthError(f"InfluxDB refused the credentials ({status}): {message}")
    if status in (429, 502, 503, 504) or status >= 500:
        error = InfluxUnavailableError(f"InfluxDB is unavailable ({status}): {message}")
        error.retry_after_s = parse_retry_after(
            response.headers.get("Retry-After"), SystemClock().now_ms()
        )
        return error
    return InfluxRejectedError(status, message)
