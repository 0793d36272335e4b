"""A small client for InfluxDB's v1 HTTP API: `/ping`, `/write`, `/query` (InfluxQL).

InfluxDB 1.x serves this API natively and 2.x and 3.x serve it for compatibility, so one client
covers every version a user may run. Errors are classified so callers can decide what to do:
`InfluxUnavailableError` is worth retrying, `InfluxRejectedError` is not.

Only InfluxDB itself can refuse data for good: a 400 or 422 that carries its signature (its
version header, or its JSON error body) to a write. Everything else a server or a proxy in front
of it may answer (a 404 page of a load balancer during a deploy, 408, 413, 5xx, a captive
portal's 200) is transient, so the caller retries with back-off and never drops data for it.
Redirects are never followed: `requests` re-sends a streamed body empty after a 307/308, and
InfluxDB acknowledges the empty write; a redirect is reported as a configuration error naming
where it points. Every exchange has an overall deadline (`energymon.deadline`), not only a
socket timeout. The environment cannot change whom we trust or talk to: `trust_env` is off, so
`REQUESTS_CA_BUNDLE`, `CURL_CA_BUNDLE` and `.netrc` are ignored, the CA is the one given (or
the default bundle), and only the proxy variables (`HTTPS_PROXY`, `NO_PROXY`, ...) are honoured,
read once, explicitly. Writes to a plain `http://` server with no proxy in between (the local
InfluxDB) go over kept-alive connections of their own (`energymon.keepalive` from a thread,
`energymon.keepalive_async` from an event loop): the same head, deadline and classification, a
fraction of the CPU. Answers are read and classified in `energymon.influx_answers`.

Once a server has said it is InfluxDB 1.x, query results are asked for as MessagePack: cheaper
to produce and to decode than JSON, and it keeps `230.0` a float. Results are decoded by the
content type the server actually sent, so a server that ignores the request still works.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.utils import get_environ_proxies

from energymon.backoff import parse_retry_after
from energymon.clock import SystemClock
from energymon.deadline import Deadline, DeadlineAdapter, deadline
from energymon.errors import (
    ConfigError,
    InfluxAuthError,
    InfluxConfigError,
    InfluxError,
    InfluxRejectedError,
    InfluxUnavailableError,
)
from energymon.influx_answers import (
    DATA_REFUSED,
    MSGPACK,
    VERSION_HEADER,
    Series,
    answer_message,
    database_missing,
    from_influxdb,
    parse_query_response,
    transport_error,
)
from energymon.keepalive import Answer, KeptAlive, as_response
from energymon.keepalive_async import LoopKeptAlive
from energymon.urls import has_credentials, is_loopback, is_plain_http, mask_url


def quote_ident(name: str) -> str:
    """An InfluxQL identifier in double quotes."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_string(value: str) -> str:
    """An InfluxQL string literal in single quotes."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class InfluxClient:
    """Talks to one database on one server. Safe to share between threads for writes and
    queries (a `requests.Session` per client is thread-safe enough for this use).

    `timeout_s` is the overall deadline of one exchange (a streamed query answer: of each
    piece of it). `ca_file`, given, is the only CA trusted; otherwise the default bundle is.
    Credentials may not cross a network in clear text (an `http://` URL to another machine)
    unless `allow_http_credentials`."""

    def __init__(
        self,
        url: str,
        database: str,
        *,
        username: str = "",
        password: str = "",
        token: str = "",
        timeout_s: float = 10.0,
        ca_file: Path | None = None,
        compress_responses: bool = True,
        allow_http_credentials: bool = False,
        create_database: bool = True,
    ) -> None:
        if has_credentials(url):
            raise ConfigError(
                f"the InfluxDB URL {mask_url(url)} carries credentials: give them as the "
                "username and password (or token) settings instead"
            )
        if (
            (password or token)
            and is_plain_http(url)
            and not is_loopback(url)
            and not allow_http_credentials
        ):
            raise ConfigError(
                f"credentials for {url} would cross the network in clear text: use https://, "
                "or allow it explicitly (ENERGYMON_CLOUD_ALLOW_HTTP_CREDENTIALS)"
            )
        if ca_file is not None and not ca_file.is_file():
            raise ConfigError(f"the CA file {ca_file} does not exist")
        self.url = url.rstrip("/")
        self.database = database
        self.timeout_s = timeout_s
        self._verify: bool | str = str(ca_file) if ca_file is not None else True
        self._session = requests.Session()
        # Nothing from the environment decides whom we trust (see the module's docstring).
        self._session.trust_env = False
        self._session.proxies = get_environ_proxies(self.url)
        adapter = DeadlineAdapter()
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
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
        # Writes to a plain-HTTP server with no proxy between go through kept-alive connections
        # of their own (see `energymon.keepalive`); everything else through `requests`.
        where = urlsplit(self.url)
        self._kept_alive = (
            KeptAlive(where.hostname or "", where.port)
            if where.scheme == "http" and not self._session.proxies
            else None
        )
        self._write_head: tuple[str, dict[str, str]] | None = None
        # The same writes from an event loop (`write_async`), over connections of the loop's.
        self._loop_kept_alive = (
            None if self._kept_alive is None else LoopKeptAlive(where.hostname or "", where.port)
        )

    def __repr__(self) -> str:
        return f"InfluxClient({mask_url(self.url)!r}, {self.database!r})"

    def close(self) -> None:
        self._session.close()
        if self._kept_alive is not None:
            self._kept_alive.close()
        if self._loop_kept_alive is not None:
            self._loop_kept_alive.close()

    def ping(self) -> str:
        """The server's version; raises if it cannot be reached."""
        response = self._request("GET", "/ping", deadline_s=min(self.timeout_s, 5.0))
        if response.status_code != 204:
            raise self._error_for(response, "/ping")
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
        # A database dropped behind our back (or created on another server after a restore)
        # is created again once, where this client may create databases; a second refusal, or
        # a missing database it may not create, is the server's problem, retried later.
        for attempt in range(2):
            if not self._database_ready and self._may_create_database:
                self.create_database()
            response = self._post_write(body, timeout_s or self.timeout_s)
            if response is None:
                return
            self._unacknowledged(response, attempt)

    async def write_async(self, body: bytes, *, timeout_s: float | None = None) -> None:
        """`write` from an event loop, which it never blocks: over connections of the loop's
        where `write` uses kept-alive connections (a plain-HTTP server, no proxy between),
        otherwise `write` on a thread."""
        if not body:
            return
        if self._loop_kept_alive is None:
            await asyncio.to_thread(self.write, body, timeout_s=timeout_s)
            return
        for attempt in range(2):
            if not self._database_ready and self._may_create_database:
                await asyncio.to_thread(self.create_database)
            target, head = self._prepared_write_head()
            answer = await self._loop_kept_alive.post_within(
                target, head, body, timeout_s or self.timeout_s, where=f"{mask_url(self.url)}/write"
            )
            response = self._write_answer(answer, target)
            if response is None:
                return
            self._unacknowledged(response, attempt)

    def _unacknowledged(self, response: requests.Response, attempt: int) -> None:
        """After a write's answer other than an acknowledgement: returns when the write is to be
        sent again, the database having vanished and being created anew; otherwise raises what
        the answer means."""
        if attempt == 0 and self._may_create_database and database_missing(response):
            self._database_ready = False
            return
        raise self._write_error(response)

    def _write_params(self) -> dict[str, str]:
        return {"db": self.database, "precision": "ms"}

    def _post_write(self, body: bytes, seconds: float) -> requests.Response | None:
        """One write request: None once the server acknowledged it (HTTP 204), or its answer."""
        if self._kept_alive is None:
            response = self._request(
                "POST", "/write", params=self._write_params(), data=body, deadline_s=seconds
            )
            return None if response.status_code == 204 else response
        target, head = self._prepared_write_head()
        answer = self._kept_alive.post_within(
            target, head, body, seconds, where=f"{mask_url(self.url)}/write"
        )
        return self._write_answer(answer, target)

    def _write_answer(self, answer: Answer, target: str) -> requests.Response | None:
        """None for an acknowledgement; any other answer as `requests` gives one."""
        if answer.status == 204 and self._server_version is not None:
            return None
        response = as_response(answer, self.url + target)
        if self._server_version is None:
            self._server_version = response.headers.get(VERSION_HEADER)
        return None if answer.status == 204 else response

    def _prepared_write_head(self) -> tuple[str, dict[str, str]]:
        """The target and headers `requests` would send with a write, prepared once. The answer
        is asked for uncompressed: it is a status, or a short error read only to classify it."""
        if self._write_head is None:
            url = self.url + "/write"
            prepared = self._session.prepare_request(
                requests.Request("POST", url, params=self._write_params())
            )
            split = urlsplit(prepared.url or url)
            target = split.path + (f"?{split.query}" if split.query else "")
            head = {k: v for k, v in prepared.headers.items() if k.lower() != "content-length"}
            head["Accept-Encoding"] = "identity"
            self._write_head = (target, head)
        return self._write_head

    def write_stream(self, body: Iterable[bytes], *, timeout_s: float | None = None) -> None:
        """Write line protocol produced while it is sent (chunked transfer encoding), so the
        caller never holds the whole request. Returns only once the server acknowledged all of
        it (InfluxDB reads the whole body before it stores any of it). An exception raised by
        `body` aborts the request and propagates unchanged. A body cannot be sent twice: if
        the database vanished, this raises `InfluxUnavailableError` and the next write
        creates it again."""
        if not self._database_ready and self._may_create_database:
            self.create_database()
        response = self._request(
            "POST", "/write", params=self._write_params(), data=iter(body),
            deadline_s=timeout_s or self.timeout_s,
        )  # fmt: skip
        if response.status_code == 204:
            return
        if database_missing(response):
            self._database_ready = False
        raise self._write_error(response)

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
            response, bound = self._exchange("POST", "/query", data=params, headers=headers)
        else:
            response, bound = self._exchange(
                "GET", "/query", params=params, stream=bool(chunk_size), headers=headers
            )
        if response.status_code != 200:
            bound.finish()
            response.close()
            raise self._error_for(response, "/query")
        # Timed again only while waiting for the next piece (see `_pieces`).
        bound.pause()
        return parse_query_response(
            response, bound, chunked=bool(chunk_size), what=f"{mask_url(self.url)}/query"
        )

    def _request(
        self, method: str, path: str, *, deadline_s: float | None = None, **kwargs: Any
    ) -> requests.Response:
        """One exchange with its whole answer, bound by an overall deadline."""
        response, bound = self._exchange(method, path, deadline_s=deadline_s, **kwargs)
        bound.finish()
        return response

    def _exchange(
        self,
        method: str,
        path: str,
        *,
        deadline_s: float | None = None,
        stream: bool = False,
        **kwargs: Any,
    ) -> tuple[requests.Response, Deadline]:
        """One exchange; with `stream`, only up to the answer's headers: the caller reads the
        rest under the returned deadline, moving it on with each piece (a long result that
        keeps coming is fine, a stalled one is not), and finishes it."""
        seconds = deadline_s or self.timeout_s
        where = f"{mask_url(self.url)}{path}"
        with deadline(seconds) as bound:
            try:
                response = self._session.request(
                    method, self.url + path, timeout=seconds, verify=self._verify,
                    allow_redirects=False, stream=stream, **kwargs,
                )  # fmt: skip
            except requests.RequestException as exc:
                bound.finish()
                raise transport_error(exc, where, bound) from exc
        if self._server_version is None:
            self._server_version = response.headers.get(VERSION_HEADER)
        return response, bound

    def _redirect(self, response: requests.Response, path: str) -> InfluxConfigError:
        target = mask_url(response.headers.get("Location", "(no Location)"))
        return InfluxConfigError(
            f"{mask_url(self.url)}{path} answered a redirect ({response.status_code}) to "
            f"{target}: redirects are never followed, configure the URL it points to"
        )

    def _write_error(self, response: requests.Response) -> InfluxError:
        """Permanent only when InfluxDB itself refused the data."""
        if response.status_code in DATA_REFUSED and from_influxdb(response):
            return InfluxRejectedError(response.status_code, answer_message(response))
        return self._error_for(response, "/write")

    def _error_for(self, response: requests.Response, path: str) -> InfluxError:
        """Any answer but the expected one, classified by what it means; permanent only for a
        query InfluxDB refused (a bad statement)."""
        status = response.status_code
        if 300 <= status < 400:
            return self._redirect(response, path)
        message = answer_message(response)
        if status in (401, 403):
            return InfluxAuthError(f"InfluxDB refused the credentials ({status}): {message}")
        if path == "/query" and status in DATA_REFUSED and from_influxdb(response):
            return InfluxRejectedError(status, message)
        error = InfluxUnavailableError(
            f"{mask_url(self.url)}{path} answered {status}: {message[:200]}"
        )
        error.status = status
        error.transport = status == 413
        error.retry_after_s = parse_retry_after(
            response.headers.get("Retry-After"), SystemClock().now_ms()
        )
        return error
