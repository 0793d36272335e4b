"""An HTTP proxy on loopback in front of a real server, which misbehaves on demand the way
proxies, load balancers and networks do: redirects, bursts of a status (a load balancer's 404
page during a deploy, 408, 503 with Retry-After, a captive portal's 200), a reply trickled a byte
at a time, a connection reset once a request body passes a size limit, a request never answered.

Each connection carries one request and is closed after the answer (`Connection: close` both
ways), which keeps the relaying simple and every fault confined to one request.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import BinaryIO

from harness.influxd import free_port

_MAX_HEAD_BYTES = 65536


@dataclass(frozen=True)
class Fault:
    """What to do to the requests whose path starts with one of `paths` (every request when
    empty): `count` of them, or all while it is set when None.

    kind: "status" answers `status` with `body` and `headers` itself; "redirect" answers
    `status` (a 3xx) with `Location: location + path?query`; "trickle" relays the real answer
    one byte every `interval_s`; "reset" resets the connection once the request body passes
    `limit_bytes` (a proxy's body limit), and relays smaller ones; "hang" never answers."""

    kind: str
    status: int = 503
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    location: str = ""
    interval_s: float = 2.0
    limit_bytes: int = 0
    paths: tuple[str, ...] = ()
    count: int | None = None

    def applies_to(self, path: str) -> bool:
        return not self.paths or any(path.startswith(p) for p in self.paths)


def status(
    code: int,
    body: bytes = b"",
    *,
    headers: Sequence[tuple[str, str]] = (),
    paths: Sequence[str] = (),
    count: int | None = None,
) -> Fault:
    return Fault("status", code, body, tuple(headers), paths=tuple(paths), count=count)


def redirect(
    code: int, location: str, *, paths: Sequence[str] = (), count: int | None = None
) -> Fault:
    return Fault("redirect", code, location=location.rstrip("/"), paths=tuple(paths), count=count)


def trickle(interval_s: float, *, paths: Sequence[str] = (), count: int | None = None) -> Fault:
    return Fault("trickle", interval_s=interval_s, paths=tuple(paths), count=count)


def reset_above(limit_bytes: int, *, paths: Sequence[str] = ()) -> Fault:
    return Fault("reset", limit_bytes=limit_bytes, paths=tuple(paths))


def hang(*, paths: Sequence[str] = (), count: int | None = None) -> Fault:
    return Fault("hang", paths=tuple(paths), count=count)


@dataclass
class Seen:
    """One request the proxy received, and what it did with it."""

    method: str
    path: str
    body_bytes: int
    action: str


@dataclass
class _Request:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes = b""

    @property
    def path(self) -> str:
        return self.target.split("?", 1)[0]


class _BodyLimitError(Exception):
    """The request's body passed the limit: the connection is reset."""


@dataclass
class _State:
    fault: Fault | None = None
    remaining: int | None = None
    seen: list[Seen] = field(default_factory=list)


class FaultProxy:
    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._lock = threading.Lock()
        self._state = _State()
        self._open: set[socket.socket] = set()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True, name="faultproxy").start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def set(self, fault: Fault | None) -> None:
        """Apply `fault` from now on (None: relay faithfully)."""
        with self._lock:
            self._state.fault = fault
            self._state.remaining = None if fault is None else fault.count

    def clear(self) -> None:
        self.set(None)

    def seen(self) -> list[Seen]:
        with self._lock:
            return list(self._state.seen)

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        with self._lock:
            for s in self._open:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                self._open.add(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _take(self, path: str) -> Fault | None:
        with self._lock:
            fault = self._state.fault
            if fault is None or not fault.applies_to(path):
                return None
            if self._state.remaining is not None:
                self._state.remaining -= 1
                if self._state.remaining <= 0:
                    self._state.fault = None
            return fault

    def _note(self, request: _Request, action: str) -> None:
        with self._lock:
            self._state.seen.append(Seen(request.method, request.path, len(request.body), action))

    def _serve(self, client: socket.socket) -> None:
        try:
            reader: BinaryIO = client.makefile("rb")
            head = _read_head(reader)
            if head is None:
                return
            fault = self._take(head.path)
            limit = fault.limit_bytes if fault is not None and fault.kind == "reset" else None
            try:
                head.body = _read_body(reader, head.headers, limit)
            except _BodyLimitError:
                self._note(head, "reset")
                # SO_LINGER with a zero timeout: close sends RST, as a proxy cutting a body does.
                client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                return
            self._answer(client, head, fault)
        except OSError:
            return  # the client went away or the proxy was closed: nothing left to answer
        finally:
            with self._lock:
                self._open.discard(client)
            with contextlib.suppress(OSError):
                client.close()

    def _answer(self, client: socket.socket, request: _Request, fault: Fault | None) -> None:
        kind = "pass" if fault is None or fault.kind == "reset" else fault.kind
        self._note(request, kind)
        if fault is not None and kind == "status":
            client.sendall(_response(fault.status, fault.body, fault.headers))
        elif fault is not None and kind == "redirect":
            location = (("Location", fault.location + request.target),)
            client.sendall(_response(fault.status, b"", location))
        elif kind == "hang":
            while not self._closed and client.recv(1):
                pass
        else:
            answer = self._relay(request)
            if fault is not None and kind == "trickle":
                for i in range(len(answer)):
                    client.sendall(answer[i : i + 1])
                    time.sleep(fault.interval_s)
            else:
                client.sendall(answer)

    def _relay(self, request: _Request) -> bytes:
        """The upstream's whole answer to the request."""
        with socket.create_connection(("127.0.0.1", self.target_port), timeout=60) as upstream:
            headers = [
                (k, v)
                for k, v in request.headers
                if k.lower() not in ("connection", "transfer-encoding", "content-length")
            ]
            headers += [("Content-Length", str(len(request.body))), ("Connection", "close")]
            lines = [f"{request.method} {request.target} HTTP/1.1"]
            lines += [f"{k}: {v}" for k, v in headers]
            upstream.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + request.body)
            chunks = []
            while data := upstream.recv(65536):
                chunks.append(data)
            return b"".join(chunks)


def _read_head(reader: BinaryIO) -> _Request | None:
    lines: list[bytes] = []
    size = 0
    while True:
        line = reader.readline(_MAX_HEAD_BYTES)
        if not line:
            return None
        size += len(line)
        if line in (b"\r\n", b"\n") or size > _MAX_HEAD_BYTES:
            break
        lines.append(line)
    if not lines:
        return None
    method, target, _ = lines[0].decode("latin-1").split(" ", 2)
    headers = []
    for raw in lines[1:]:
        name, _, value = raw.decode("latin-1").partition(":")
        headers.append((name.strip(), value.strip()))
    return _Request(method, target, headers)


def _read_body(reader: BinaryIO, headers: list[tuple[str, str]], limit: int | None) -> bytes:
    fields = {k.lower(): v for k, v in headers}
    read, readline = reader.read, reader.readline
    body = bytearray()
    if fields.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int(readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while readline() not in (b"\r\n", b"\n", b""):
                    pass
                break
            body += read(size)
            readline()
            if limit is not None and len(body) > limit:
                raise _BodyLimitError
    else:
        length = int(fields.get("content-length", "0"))
        if limit is not None and length > limit:
            body += read(limit)
            raise _BodyLimitError
        body += read(length)
    return bytes(body)


def _response(code: int, body: bytes, headers: Sequence[tuple[str, str]]) -> bytes:
    lines = [f"HTTP/1.1 {code} {_REASONS.get(code, 'Fault')}"]
    lines += [f"{k}: {v}" for k, v in headers]
    lines += [f"Content-Length: {len(body)}", "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


_REASONS = {
    200: "OK",
    301: "Moved Permanently",
    302: "Found",
    307: "Temporary Redirect",
    308: "Permanent Redirect",
    404: "Not Found",
    408: "Request Timeout",
    413: "Payload Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}
