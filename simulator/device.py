"""A fake Arduino: polls its meters, buffers readings and posts them to the collector exactly as
the firmware does (docs/api.md), so tests, benchmarks and the demo need no hardware.

Time: the device's own timers (poll interval, back-off) run on its uptime, which advances `speed`
times faster than the injected clock; the collector's `Retry-After` is honoured in real seconds,
because the collector's clock is not accelerated.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import secrets
import threading
import zlib
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from energymon.backoff import BackoffPolicy
from energymon.clock import Clock, SystemClock
from energymon.errors import ConfigError, ModbusError
from energymon.schema import RawMeasurement
from simulator.device_step import DeviceEvent, DeviceStats, DeviceStep, SendOutcome
from simulator.loadprofile import HouseholdLoad
from simulator.sdcard import DeviceStateError, SdCardLog, entry_reading, reading_entry
from simulator.transport import (
    Ack,
    RequestsTransport,
    Transport,
    TransportError,
    parse_ack,
    retry_after_s,
)
from simulator.wire import DeviceReading, encode_batch

log = logging.getLogger(__name__)

READINGS_PATH = "/api/v1/readings"
DEFAULT_SENSORS = ("pzem1", "pzem2", "pzem3")
# As the firmware: one second, doubling up to a minute.
DEVICE_BACKOFF = BackoffPolicy(1.0, 60.0, 0.5)
# Steps that find more polls due than this skip the rest, so a suspended process does not spend
# minutes catching up when it wakes.
_MAX_POLLS_PER_STEP = 1000
_NONCE_LIMIT = 2**32
# A PZEM-004T's reply to a ten-register read at its fixed bit rate, as the firmware waits for it.
_METER_REPLY_MS = 40


class MeterSource(Protocol):
    def sample(self, elapsed_s: float) -> RawMeasurement:
        """The meter's registers; raise `ModbusError` when the meter does not answer."""
        ...


@dataclass(frozen=True, slots=True)
class _Attempt:
    sent: tuple[DeviceReading, ...]
    status: int | None
    outcome: SendOutcome
    ack: Ack | None = None


def sensor_seed(device: str, sensor: str, seed: int = 0) -> int:
    """A stable per-meter seed, so every sensor of every device draws a different household."""
    return zlib.crc32(f"{seed}/{device}/{sensor}".encode())


class FakeDevice:
    """An Arduino with PZEM-004T meters, posting to the collector per docs/api.md."""

    def __init__(
        self,
        url: str,
        device: str,
        key: str,
        *,
        sensors: Sequence[str] = DEFAULT_SENSORS,
        meters: Mapping[str, MeterSource] | None = None,
        seed: int = 0,
        poll_interval_s: float = 1.0,
        batch_max: int = 20,
        capacity: int = 2000,
        backoff: BackoffPolicy = DEVICE_BACKOFF,
        speed: float = 1.0,
        state_file: Path | None = None,
        persist_buffer: bool = False,
        meter_start_s: float = 0.0,
        poll_limit: int | None = None,
        heartbeat_s: float = 60.0,
        clock: Clock | None = None,
        transport: Transport | None = None,
    ) -> None:
        if min(poll_interval_s, speed, batch_max, capacity, heartbeat_s) <= 0:
            raise ConfigError("poll interval, speed, batch size, capacity, heartbeat: not positive")
        if persist_buffer and state_file is None:
            raise ConfigError("a persisted buffer needs a state file")
        self.url = url.rstrip("/") + READINGS_PATH
        self.device = device
        self._key = key
        if meters is None:
            meters = {
                s: HouseholdLoad(sensor_seed(device, s, seed), sensor_seed(device, s) % 500_000)
                for s in sensors
            }
        self._meters = dict(meters)
        self._poll_interval_s = poll_interval_s
        self._batch_limit = batch_max
        self._capacity = capacity
        self._backoff = backoff
        self._rng = random.Random(seed)
        self._speed = speed
        self._meter_start_s = meter_start_s
        self._poll_limit = poll_limit
        self._heartbeat_s = heartbeat_s
        self._clock = clock or SystemClock()
        self._transport: Transport = transport or RequestsTransport()

        self.boot = self._next_boot(state_file)
        # As the firmware draws one at each boot: tells this boot from an earlier life's.
        self.boot_nonce = secrets.randbelow(_NONCE_LIMIT - 1) + 1
        self._start = self._clock.monotonic()
        self._polls = 0
        self._seq = 0
        self._meter_errors = dict.fromkeys(self._meters, 0)
        self._dropped = 0
        # Oldest boot first; each boot's readings in seq order.
        self._buffer: dict[int, deque[DeviceReading]] = {self.boot: deque()}
        self._buffered = 0
        self._old_boot_uptime_ms: dict[int, int] = {}
        self._anchored: set[int] = set()
        self._failures = 0
        self._send_not_before = self._start
        self._last_request_uptime_s = -math.inf
        self._connected = False
        self._backlogged = False
        self._stats: dict[str, int] = dict.fromkeys(DeviceStats.__dataclass_fields__, 0)
        self._journal: SdCardLog | None = None
        if state_file is not None:
            journal = SdCardLog(state_file.with_name(state_file.name + ".buffer"))
            if persist_buffer:
                self._journal = journal
                self._restore()
            else:
                # No SD card: whatever the previous boot had not sent died with its RAM.
                journal.path.unlink(missing_ok=True)
        self.restored = self._buffered

    # --- boot ----------------------------------------------------------------------------------

    @staticmethod
    def _next_boot(state_file: Path | None) -> int:
        if state_file is None:
            return 1
        try:
            previous = json.loads(state_file.read_text(encoding="utf-8"))["boot"]
        except FileNotFoundError:
            previous = 0
        except (ValueError, KeyError, TypeError) as exc:
            raise DeviceStateError(f"{state_file} is not a device state file") from exc
        if not isinstance(previous, int) or previous < 0:
            raise DeviceStateError(f"{state_file}: boot must be a non-negative integer")
        state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = state_file.with_name(state_file.name + ".tmp")
        tmp.write_text(json.dumps({"boot": previous + 1}), encoding="utf-8")
        os.replace(tmp, state_file)
        return int(previous + 1)

    def _restore(self) -> None:
        assert self._journal is not None
        old: dict[int, deque[DeviceReading]] = {}
        for entry in self._journal.replay():
            if "r" in entry:
                boot, reading = entry_reading(entry["r"])
                old.setdefault(boot, deque()).append(reading)
            elif "forget" in entry:
                boot, seq = entry["forget"]
                readings = old.get(boot, deque())
                while readings and readings[0].seq <= seq:
                    readings.popleft()
            elif "anchored" in entry:
                self._anchored.add(entry["anchored"])
        # The collector can place old readings in time only if it anchored their boot.
        lost = sum(len(r) for b, r in old.items() if b not in self._anchored)
        kept = {b: r for b, r in sorted(old.items()) if b in self._anchored and r}
        self._buffer = {**kept, self.boot: deque()}
        self._buffered = sum(len(r) for r in kept.values())
        self._old_boot_uptime_ms = {b: max(x.uptime_ms for x in r) for b, r in kept.items()}
        self._anchored &= set(kept)
        self._dropped = lost
        self._stats["dropped"] = lost
        for boot in sorted(self._buffer, reverse=True):
            readings = self._buffer[boot]
            while self._buffered > self._capacity and readings:
                readings.pop()
                self._buffered -= 1
                self._count_dropped(1)
        self._compact()

    def _compact(self) -> None:
        assert self._journal is not None
        entries = [{"anchored": b} for b in sorted(self._anchored)]
        entries += [reading_entry(b, r) for b, rs in self._buffer.items() for r in rs]
        self._journal.rewrite(entries)

    # --- time ----------------------------------------------------------------------------------

    def _uptime_s(self) -> float:
        return (self._clock.monotonic() - self._start) * self._speed

    def _real_at(self, uptime_s: float) -> float:
        return self._start + uptime_s / self._speed

    # --- polling -------------------------------------------------------------------------------

    def _poll_due(self, uptime_s: float) -> list[DeviceReading]:
        polled: list[DeviceReading] = []
        # The epsilon keeps a tick that falls due exactly now from rounding down to the last one.
        due = math.floor(uptime_s / self._poll_interval_s + 1e-9) + 1 - self._polls
        if self._poll_limit is not None:
            due = min(due, self._poll_limit - self._polls)
        for _ in range(min(due, _MAX_POLLS_PER_STEP)):
            tick_s = self._polls * self._poll_interval_s
            polled += self._poll(tick_s)
            self._polls += 1
        if due > _MAX_POLLS_PER_STEP:
            self._polls += due - _MAX_POLLS_PER_STEP
        return polled

    def _poll(self, tick_s: float) -> list[DeviceReading]:
        polled: list[DeviceReading] = []
        for sensor, meter in self._meters.items():
            try:
                raw = meter.sample(self._meter_start_s + tick_s)
            except ModbusError:
                self._meter_errors[sensor] += 1
                continue
            self._seq += 1
            # The firmware reads its meters one after another and dates each by its reply.
            uptime_ms = round(tick_s * 1000) + len(polled) * _METER_REPLY_MS
            reading = DeviceReading(self._seq, uptime_ms, sensor, raw)
            if self._buffered >= self._capacity:
                # As the firmware: what is held stays, the new reading is counted and dropped
                # (its seq is spent, so the gap at the collector matches `dropped`).
                self._count_dropped(1)
                continue
            self._buffer[self.boot].append(reading)
            self._buffered += 1
            if self._journal is not None:
                self._journal.append(reading_entry(self.boot, reading))
            polled.append(reading)
        return polled

    def _count_dropped(self, readings: int) -> None:
        self._dropped += readings
        self._stats["dropped"] += readings

    def _forget_boot(self, boot: int) -> None:
        del self._buffer[boot]
        self._old_boot_uptime_ms.pop(boot, None)

    # --- sending -------------------------------------------------------------------------------

    def _next_batch(self) -> tuple[int, tuple[DeviceReading, ...]]:
        boot = next((b for b, r in self._buffer.items() if r), self.boot)
        readings = self._buffer[boot]
        return boot, tuple(readings[i] for i in range(min(self._batch_limit, len(readings))))

    def _send(self, now: float) -> _Attempt:
        boot, batch = self._next_batch()
        # With nothing to send, an empty batch now and then still reports health (meter errors).
        heartbeat_due = self._uptime_s() >= self._last_request_uptime_s + self._heartbeat_s
        if (not batch and not heartbeat_due) or now < self._send_not_before:
            return _Attempt((), None, SendOutcome.IDLE)
        self._last_request_uptime_s = self._uptime_s()
        nonce: int | None = None
        if boot == self.boot:
            # Never before its readings' replies, which the simulated clock may not have reached.
            latest = max((r.uptime_ms for r in batch), default=0)
            uptime_ms = max(round(self._uptime_s() * 1000), latest)
            dropped, meter_errors, nonce = self._dropped, self._meter_errors, self.boot_nonce
        else:
            # A re-sent old boot: its last uptime, no nonce (as the firmware keeps none with its
            # readings), and none of this boot's health figures.
            uptime_ms, dropped, meter_errors = self._old_boot_uptime_ms[boot], 0, {}
        body = encode_batch(
            self.device,
            boot,
            uptime_ms,
            batch,
            dropped=dropped,
            meter_errors=meter_errors,
            boot_nonce=nonce,
        )
        headers = {
            "Authorization": f"Bearer {self._key}",
            "Content-Type": "application/json",
            "Connection": "close",
        }
        self._stats["requests"] += 1
        try:
            status, reply_headers, reply = self._transport.post(self.url, body, headers)
        except TransportError:
            self._stats["transport_errors"] += 1
            return self._back_off(now, _Attempt(batch, None, SendOutcome.BACKOFF))
        attempt = _Attempt(batch, status, SendOutcome.BACKOFF)
        if status == 200:
            ack = parse_ack(reply)
            if ack is not None and self._acknowledge(boot, batch, ack):
                return _Attempt(batch, status, SendOutcome.ACKED, ack)
            # A 200 that is not the contract's reply.
            return self._back_off(now, attempt)
        if status == 413 and len(batch) > 1:
            self._batch_limit = max(1, len(batch) // 2)
            self._stats["splits"] += 1
            return _Attempt(batch, status, SendOutcome.SPLIT)
        if 400 <= status < 500:
            self._stats["client_errors"] += 1
            log.warning(
                "%s: the collector refused a batch of boot %d with %d (a bug on one side): %s",
                self.device, boot, status, reply[:300].decode("utf-8", "replace"),
            )  # fmt: skip
            return self._back_off(now, _Attempt(batch, status, SendOutcome.CLIENT_ERROR))
        wait_s = retry_after_s(reply_headers, self._clock.now_ms()) if status == 503 else None
        if wait_s is None:
            return self._back_off(now, attempt)
        self._send_not_before = now + wait_s
        return _Attempt(batch, status, SendOutcome.RETRY_AFTER)

    def _back_off(self, now: float, attempt: _Attempt) -> _Attempt:
        self._failures += 1
        wait_s = self._backoff.delay_s(self._failures, self._rng)
        self._send_not_before = now + wait_s / self._speed
        return attempt

    def _acknowledge(self, boot: int, batch: Sequence[DeviceReading], ack: Ack) -> bool:
        """Forget what `ack` covers of this request; False if the reply covers none of it."""
        if (ack.seq is None) != (not batch):
            return False
        readings = self._buffer[boot]
        forgotten = 0
        # Only readings of this request: an ack beyond it must not lose unsent readings.
        while forgotten < len(batch) and ack.seq is not None and readings[0].seq <= ack.seq:
            readings.popleft()
            forgotten += 1
        if batch and not forgotten:
            return False
        self._buffered -= forgotten
        if boot != self.boot and not readings:
            self._forget_boot(boot)
        if self._journal is not None:
            if boot not in self._anchored:
                self._journal.append({"anchored": boot})
            if forgotten:
                self._journal.append({"forget": [boot, batch[forgotten - 1].seq]})
        self._anchored.add(boot)
        self._failures = 0
        self._stats["acked_readings"] += forgotten
        return True

    # --- the loop ------------------------------------------------------------------------------

    def run_once(self) -> DeviceStep:
        """Poll the meters that are due, then send at most one request."""
        now = self._clock.monotonic()
        polled = self._poll_due(self._uptime_s())
        attempt = self._send(now)
        if self._journal is not None:
            if self._journal.lines > 2 * self._capacity + 1000:
                self._compact()
            self._journal.flush()
        events = self._events(attempt.outcome)
        after = self._clock.monotonic()
        retry_in_s = max(0.0, self._send_not_before - after)
        return DeviceStep(
            uptime_ms=round(self._uptime_s() * 1000),
            polled=tuple(polled),
            sent=attempt.sent,
            status=attempt.status,
            outcome=attempt.outcome,
            ack=attempt.ack,
            retry_in_s=retry_in_s,
            buffered=self._buffered,
            dropped=self._dropped,
            events=events,
            next_due_s=self._next_due_s(after, attempt.outcome),
        )

    def _events(self, outcome: SendOutcome) -> tuple[DeviceEvent, ...]:
        events = []
        if outcome is SendOutcome.ACKED and not self._connected:
            self._connected = True
            events.append(DeviceEvent.CONNECTED)
        elif outcome in (SendOutcome.BACKOFF, SendOutcome.CLIENT_ERROR) and self._connected:
            self._connected = False
            events.append(DeviceEvent.DISCONNECTED)
        if self._buffered > self._batch_limit and not self._backlogged:
            self._backlogged = True
            events.append(DeviceEvent.BACKLOG_BUILDING)
        elif self._buffered == 0 and self._backlogged:
            self._backlogged = False
            events.append(DeviceEvent.BACKLOG_DRAINED)
        return tuple(events)

    def _next_due_s(self, now: float, outcome: SendOutcome) -> float:
        if outcome in (SendOutcome.ACKED, SendOutcome.SPLIT) and self._buffered:
            return 0.0
        send_at = self._send_not_before
        if not self._buffered:
            heartbeat_at = self._real_at(self._last_request_uptime_s + self._heartbeat_s)
            send_at = max(send_at, heartbeat_at)
        due = [send_at]
        if self._poll_limit is None or self._polls < self._poll_limit:
            due.append(self._real_at(self._polls * self._poll_interval_s))
        return max(0.0, min(due) - now)

    @property
    def done(self) -> bool:
        """The poll limit was reached and every reading was acknowledged."""
        limit = self._poll_limit
        return limit is not None and self._polls >= limit and not self._buffered

    @property
    def stats(self) -> DeviceStats:
        return DeviceStats(**self._stats)

    @property
    def meter_errors(self) -> dict[str, int]:
        return dict(self._meter_errors)

    @property
    def buffered(self) -> int:
        return self._buffered

    @property
    def dropped(self) -> int:
        """Readings discarded since this boot, as the next request reports them."""
        return self._dropped

    def run(
        self, stop: threading.Event, on_step: Callable[[DeviceStep], None] | None = None
    ) -> None:
        """Step until `stop` is set or `done`, sleeping (interruptibly) between steps."""
        while not stop.is_set() and not self.done:
            step = self.run_once()
            if on_step is not None:
                on_step(step)
            if step.next_due_s > 0:
                stop.wait(step.next_due_s)

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()
        if isinstance(self._transport, RequestsTransport):
            self._transport.close()
