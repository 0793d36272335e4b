"""An overall deadline for an HTTP exchange made with `requests` (or `energymon.keepalive`).

A socket timeout bounds each wait for a byte, not the exchange: a reply trickled a byte at a
time holds a request for as long as the sender likes. Here a single watchdog thread shuts the
socket of an exchange down when its deadline passes, which wakes the thread blocked on it; the
client then reports a timeout. Shutting down (rather than closing) is what interrupts a blocked
`recv` on Linux, and it is done on the plain socket beneath TLS so that the TLS object is left
for its owner to dispose of.

The socket is found through the connection classes installed by `DeadlineAdapter` (and
`energymon.keepalive`'s, through `follow_current_deadline`): each connection notes, when it
starts a request, the deadline its calling thread is working under. A connection given back
to the pool and taken by another request belongs to that request's deadline from then on, so
an expiring deadline never touches someone else's exchange.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any, Protocol

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_current = threading.local()


class Interruptible(Protocol):
    """A connection a deadline can interrupt: its socket, once connected, is `sock`."""

    deadline: Deadline | None


class Deadline:
    """The time by which one exchange must be over. A streamed answer read while the caller
    does other work between pieces is timed only while it waits for the server: `pause()`
    after each piece, `extend()` (a full period from now) before reading the next one."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._at: float | None = time.monotonic() + seconds
        # The earliest time the watchdog will look at this deadline, None when it will not.
        self._watched_at: float | None = None
        self._connection: Interruptible | None = None
        self._finished = False
        self._lock = threading.Lock()
        self._watch()

    def _watch(self) -> None:
        with self._lock:
            at = self._at
            if at is None or (self._watched_at is not None and self._watched_at <= at):
                return
            self._watched_at = at
        _WATCHDOG.watch(self, at)

    def extend(self) -> None:
        with self._lock:
            self._at = time.monotonic() + self.seconds
        self._watch()

    def pause(self) -> None:
        with self._lock:
            self._at = None

    def attach(self, connection: Interruptible) -> None:
        with self._lock:
            self._connection = connection
            connection.deadline = self
            late = self.expired
        if late:
            _shut(connection)

    def finish(self) -> None:
        with self._lock:
            self._finished = True

    def check(self) -> None:
        """Called by the watchdog at a time it was told; the deadline may have moved since."""
        connection: Interruptible | None = None
        with self._lock:
            self._watched_at = None
            if self._finished or self.expired or self._at is None:
                return
            if time.monotonic() < self._at:
                later = True
            else:
                later = False
                self.expired = True
                connection = self._connection
        if later:
            self._watch()
        elif connection is not None and connection.deadline is self:
            _shut(connection)


def _shut(connection: Interruptible) -> None:
    sock = getattr(connection, "sock", None)
    if sock is not None:
        # The plain socket's method even for a TLS socket: see the module's docstring.
        with contextlib.suppress(OSError):
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _Watchdog:
    """One daemon thread for every deadline of the process, started on first use."""

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Deadline]] = []
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def watch(self, deadline: Deadline, at: float) -> None:
        with self._cond:
            # A deadline after the earliest one watched needs no wake-up: the thread looks
            # at the heap again when that one is due. Most exchanges finish long before.
            sooner = not self._heap or at < self._heap[0][0]
            heapq.heappush(self._heap, (at, next(self._order), deadline))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="http-deadlines", daemon=True
                )
                self._thread.start()
            if sooner:
                self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._heap or self._heap[0][0] > time.monotonic():
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._cond.wait(timeout)
                _, _, deadline = heapq.heappop(self._heap)
            deadline.check()


_WATCHDOG = _Watchdog()


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[Deadline]:
    """Every request this thread starts inside the block is bound by one deadline."""
    current = Deadline(seconds)
    previous = getattr(_current, "deadline", None)
    _current.deadline = current
    try:
        yield current
    finally:
        _current.deadline = previous


def follow_current_deadline(connection: Interruptible) -> None:
    """Put a connection starting a request under the calling thread's deadline (or none)."""
    current = getattr(_current, "deadline", None)
    connection.deadline = current
    if current is not None:
        current.attach(connection)


class _Tracked(HTTPConnection):
    """A connection that puts itself under the calling thread's deadline at each request."""

    deadline: Deadline | None = None

    def request(self, *args: Any, **kwargs: Any) -> None:
        follow_current_deadline(self)
        super().request(*args, **kwargs)


class _HTTPConnection(_Tracked):
    pass


class _HTTPSConnection(_Tracked, HTTPSConnection):
    pass


class _HTTPPool(HTTPConnectionPool):
    ConnectionCls = _HTTPConnection


class _HTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _HTTPSConnection


_POOLS = {"http": _HTTPPool, "https": _HTTPSPool}


class DeadlineAdapter(HTTPAdapter):
    """The standard adapter, with connections a `deadline` can interrupt."""

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _POOLS

    def proxy_manager_for(self, proxy: str, **proxy_kwargs: Any) -> Any:
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        manager.pool_classes_by_scheme = _POOLS
        return manager
