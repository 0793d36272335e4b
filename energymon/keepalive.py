"""Plain-HTTP exchanges over kept-alive `http.client` connections: the collector's hot write.

`requests` spends a few hundred microseconds of CPU on every request (merging settings,
preparing the URL, parsing the answer's headers with the email package). The collector makes
one InfluxDB write per group commit on a machine whose CPU is the bottleneck, so
`InfluxClient.write` sends its writes to a plain `http://` server that no proxy stands in front
of through this pool instead. It sends the head `requests` prepares for the same request and
hands any answer but the expected one back to the same classification, so only the cost
changes.

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

from energymon.deadline import Deadline, follow_current_deadline


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
