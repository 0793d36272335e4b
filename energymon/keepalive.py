"""InfluxDB writes over kept-alive `http.client` connections, for writes from a thread.

`requests` spends a few hundred microseconds of CPU on every request (merging settings,
preparing the URL, parsing the answer's headers with the email package), so
`InfluxClient.write` sends its writes to a plain `http://` server that no proxy stands in front
of through this pool instead (the spool's drain, the replicator's writes to such a server; the
collector's group commits go from its event loop, `energymon.keepalive_async`). It sends the
head `requests` prepares for the same request, names a missing answer as `InfluxClient` names
one, and hands any answer but the expected one back as a `requests.Response` to the same
classification, so only the cost changes.

A connection is put under its calling thread's overall deadline when it starts a request
(`energymon.deadline`), as `requests`' connections are. One that the server may have closed
while it sat idle is dropped before it is used again, and one that failed or that the server
said it would close is never given back, so a request is never sent on a connection known to
be dead.
"""

from __future__ import annotations

import http.client
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers

from energymon.deadline import Deadline, deadline, follow_current_deadline
from energymon.errors import InfluxUnavailableError


@dataclass(frozen=True, slots=True)
class Answer:
    """A whole answer: its status line, its headers in the order received, its body."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes


class _Connection(http.client.HTTPConnection):
    deadline: Deadline | None = None

    def request(self, *args: Any, **kwargs: Any) -> None:
        follow_current_deadline(self)
        super().request(*args, **kwargs)


class KeptAlive:
    """Connections to one host and port, each used by one thread at a time. Safe to share
    between threads: at most as many connections are open as requests ever ran at once."""

    def __init__(self, host: str, port: int | None) -> None:
        self.host = host
        self.port = port
        self._idle: list[_Connection] = []
        self._lock = threading.Lock()

    def post(
        self, target: str, headers: Mapping[str, str], body: bytes, timeout_s: float
    ) -> Answer:
        """Send one POST and read its whole answer; raises `OSError` or
        `http.client.HTTPException` when there is no answer (refused, reset, timed out)."""
        connection = self._take(timeout_s)
        try:
            connection.request("POST", target, body, dict(headers))
            response = connection.getresponse()
            answer = Answer(
                response.status, response.reason, response.getheaders(), response.read()
            )
        except BaseException:
            connection.close()
            raise
        if response.will_close:
            connection.close()
        else:
            with self._lock:
                self._idle.append(connection)
        return answer

    def post_within(
        self, target: str, head: Mapping[str, str], body: bytes, timeout_s: float, *, where: str
    ) -> Answer:
        """`post` under an overall deadline of `timeout_s`; no answer within it, or none at
        all, raises `InfluxUnavailableError` naming `where`."""
        with deadline(timeout_s) as bound:
            try:
                answer = self.post(
                    target, {**head, "Content-Length": str(len(body))}, body, timeout_s
                )
            except (OSError, http.client.HTTPException) as exc:
                raise _no_answer(exc, where, bound) from exc
            finally:
                bound.finish()
        if bound.expired:
            raise no_answer_within(where, bound.seconds)
        return answer

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()

    def _take(self, timeout_s: float) -> _Connection:
        while True:
            with self._lock:
                if not self._idle:
                    break
                connection = self._idle.pop()
            if connection.sock is not None and _still_open(connection.sock):
                connection.sock.settimeout(timeout_s)
                return connection
            connection.close()
        return _Connection(self.host, self.port, timeout=timeout_s)


def _still_open(sock: socket.socket) -> bool:
    """Nothing is waiting to be read on an idle connection: anything there (its end, or bytes
    nobody asked for) means the server closed it or it is out of step."""
    sock.setblocking(False)
    try:
        sock.recv(1, socket.MSG_PEEK)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return False


def no_answer_within(where: str, seconds: float) -> InfluxUnavailableError:
    """No complete answer within an exchange's overall deadline, however it was kept."""
    error = InfluxUnavailableError(
        f"{where} gave no complete answer within the deadline of {seconds:g} s"
    )
    error.transport = True
    return error


def unreachable(where: str) -> InfluxUnavailableError:
    """No answer at all: refused, reset, or closed before one came."""
    error = InfluxUnavailableError(f"{where} is unreachable or closed the connection")
    error.transport = True
    return error


def _no_answer(
    exc: OSError | http.client.HTTPException, where: str, bound: Deadline
) -> InfluxUnavailableError:
    """No answer, named as `InfluxClient` names a missing answer from `requests`."""
    if bound.expired:
        return no_answer_within(where, bound.seconds)
    if not isinstance(exc, TimeoutError):
        return unreachable(where)
    error = InfluxUnavailableError(f"{where} timed out")
    error.transport = True
    return error


def as_response(answer: Answer, url: str) -> requests.Response:
    """An answer as `requests` gives one (repeated headers joined), so that one classification
    serves both."""
    headers: CaseInsensitiveDict[str] = CaseInsensitiveDict()
    for name, value in answer.headers:
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    response = requests.Response()
    response.status_code = answer.status
    response.reason = answer.reason
    response.headers = headers
    response._content = answer.body
    response.encoding = get_encoding_from_headers(headers)
    response.url = url
    return response
