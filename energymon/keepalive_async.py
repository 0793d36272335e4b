"""InfluxDB writes from the event loop, over kept-alive connections: the collector's hot write.

The collector's group commit used to hand each InfluxDB request to a writer thread. Under load
the request then waited, at every step of sending and reading, for the interpreter lock held by
the threads that parse and prepare readings, and the answer's headers were parsed by the email
package. From the event loop, a write is a few bytes queued on a socket and an answer read when
it is complete, with no thread to wake and no lock to win back (docs/BENCHMARKS.md).

Only what a write needs: a POST with a body, and an answer whose body has a `Content-Length`,
is chunked, or ends with the connection. The answer is the `keepalive.Answer` that the
threaded pool gives, for the same classification; no answer raises what it raises.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from energymon.keepalive import Answer, no_answer_within, unreachable

# An answer's head (status line and headers) longer than this is no InfluxDB answer.
MAX_HEAD_BYTES = 65_536

_Stream = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class MalformedAnswerError(Exception):
    """Bytes that are no HTTP/1.x answer."""


class LoopKeptAlive:
    """Connections to one host and port, used from one event loop at a time; a client used
    from another loop (a test's) starts afresh there."""

    def __init__(self, host: str, port: int | None) -> None:
        self.host = host
        self.port = port or 80
        self._idle: list[_Stream] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        # An IPv6 literal is bracketed in a Host header, as in a URL.
        self._authority = f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"

    async def post_within(
        self, target: str, head: Mapping[str, str], body: bytes, timeout_s: float, *, where: str
    ) -> Answer:
        """One POST and its whole answer within `timeout_s`; none within it, or none at all,
        raises `InfluxUnavailableError` naming `where`."""
        try:
            async with asyncio.timeout(timeout_s):
                return await self.post(target, head, body)
        except TimeoutError as exc:
            raise no_answer_within(where, timeout_s) from exc
        except (OSError, asyncio.IncompleteReadError, MalformedAnswerError) as exc:
            raise unreachable(where) from exc

    async def post(self, target: str, head: Mapping[str, str], body: bytes) -> Answer:
        reader, writer = await self._take()
        try:
            lines = [f"POST {target} HTTP/1.1", f"Host: {self._authority}"]
            lines += [f"{name}: {value}" for name, value in head.items()]
            lines.append(f"Content-Length: {len(body)}")
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
            answer, keep = await read_answer(reader)
        except BaseException:
            writer.close()
            raise
        if keep:
            self._idle.append((reader, writer))
        else:
            writer.close()
        return answer

    def close(self) -> None:
        idle, self._idle = self._idle, []
        if self._loop is None or self._loop.is_closed():
            # Their loop is gone, and its sockets with it.
            return
        for _, writer in idle:
            writer.close()

    async def _take(self) -> _Stream:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:
            # Streams belong to the loop that opened them.
            self._idle, self._loop = [], loop
        while self._idle:
            reader, writer = self._idle.pop()
            # One the server closed while it sat idle is never used again.
            if not reader.at_eof() and not writer.is_closing():
                return reader, writer
            writer.close()
        return await asyncio.open_connection(self.host, self.port, limit=MAX_HEAD_BYTES)


async def read_answer(reader: asyncio.StreamReader) -> tuple[Answer, bool]:
    """One whole answer, and whether its connection may carry another request."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError as exc:
        # The reader's limit (`MAX_HEAD_BYTES` on the pool's connections) bounds the head.
        raise MalformedAnswerError("an answer's head is too long") from exc
    status_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
    version, _, rest = status_line.partition(" ")
    code, _, reason = rest.partition(" ")
    if not version.startswith("HTTP/1.") or not (code.isdigit() and len(code) == 3):
        raise MalformedAnswerError(f"not an HTTP/1.x status line: {status_line[:80]!r}")
    status = int(code)
    headers: list[tuple[str, str]] = []
    for line in header_lines:
        name, colon, value = line.partition(":")
        if not colon:
            raise MalformedAnswerError(f"not a header: {line[:80]!r}")
        headers.append((name.strip(), value.strip()))
    fields = {name.lower(): value.lower() for name, value in headers}
    keep = version == "HTTP/1.1" and fields.get("connection") != "close"
    if status in (204, 304) or 100 <= status < 200:
        body = b""
    elif "chunked" in fields.get("transfer-encoding", ""):
        body = await _chunked(reader)
    elif fields.get("content-length", "").isdigit():
        body = await reader.readexactly(int(fields["content-length"]))
    else:
        body, keep = await reader.read(), False
    return Answer(status, reason, headers, body), keep


async def _chunked(reader: asyncio.StreamReader) -> bytes:
    pieces: list[bytes] = []
    while True:
        size_line = (await reader.readuntil(b"\r\n"))[:-2].split(b";", 1)[0].strip()
        try:
            size = int(size_line, 16)
        except ValueError as exc:
            raise MalformedAnswerError(f"not a chunk size: {size_line[:20]!r}") from exc
        if size == 0:
            # Trailers, if any, end with an empty line.
            while await reader.readuntil(b"\r\n") != b"\r\n":
                pass
            return b"".join(pieces)
        pieces.append(await reader.readexactly(size))
        if await reader.readexactly(2) != b"\r\n":
            raise MalformedAnswerError("a chunk does not end with CRLF")
