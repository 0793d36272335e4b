"""What one step of the fake device did, and its running totals: the results of
`FakeDevice.run_once()` and `FakeDevice.stats`."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from simulator.transport import Ack
from simulator.wire import DeviceReading


class SendOutcome(enum.Enum):
    IDLE = "idle"  # nothing to send, or still waiting out a back-off
    ACKED = "acked"
    SPLIT = "split"  # 413: the batch limit was halved, retried at once
    RETRY_AFTER = "retry_after"  # 503 with Retry-After
    BACKOFF = "backoff"  # 5xx, no response, or a reply that is not the contract's
    CLIENT_ERROR = "client_error"  # any other 4xx: a bug on one side; backs off all the same


class DeviceEvent(enum.Enum):
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"
    BACKLOG_BUILDING = "backlog_building"
    BACKLOG_DRAINED = "backlog_drained"


@dataclass(frozen=True, slots=True)
class DeviceStep:
    uptime_ms: int
    polled: tuple[DeviceReading, ...]
    sent: tuple[DeviceReading, ...]
    status: int | None  # HTTP status of this step's request; None without a response
    outcome: SendOutcome
    ack: Ack | None
    retry_in_s: float  # real seconds before the next request may go; 0 when healthy
    buffered: int
    dropped: int
    events: tuple[DeviceEvent, ...]
    next_due_s: float  # real seconds until run_once has something to do


@dataclass(frozen=True, slots=True)
class DeviceStats:
    requests: int
    acked_readings: int
    client_errors: int
    transport_errors: int
    splits: int
    dropped: int
