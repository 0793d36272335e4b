"""The error boundary and the schedule of each duty of the replicator service.

A `Task` runs one duty (a replication step, a verification, the health record, the replay of
dead letters) when it is due. Any error of the project's family (a server that fails, answers
nonsense or cannot be reached; a local store that fails) stops at the boundary: it is logged
once with its context (again only when it changes, and when the task recovers), shown as a
problem by `/health`, and the task is tried again after a back-off. The process never exits
for a server's error. Schedules run on the monotonic clock, so a wall clock that jumps neither
stalls nor hurries any of them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from energymon.backoff import Backoff
from energymon.clock import Clock
from energymon.errors import EnergymonError, InfluxAuthError, InfluxConfigError

log = logging.getLogger(__name__)

T = TypeVar("T")


class Task:
    def __init__(self, name: str, clock: Clock, *, interval_s: float, backoff: Backoff) -> None:
        self.name = name
        self.clock = clock
        self.interval_s = interval_s
        self.backoff = backoff
        self.last_error: str | None = None
        self.failing_since_ms: int | None = None
        self._next = clock.monotonic()

    @property
    def failures(self) -> int:
        return self.backoff.failures

    def due(self) -> bool:
        return self.clock.monotonic() >= self._next

    def wait_s(self) -> float:
        """Seconds until the task is due."""
        return max(0.0, self._next - self.clock.monotonic())

    def run_in(self, seconds: float) -> None:
        self._next = self.clock.monotonic() + seconds

    @property
    def problem(self) -> str | None:
        """Why the task is failing, for `/health`; None while it works."""
        if self.last_error is None:
            return None
        return f"{self.name} failing ({self.failures} in a row): {self.last_error}"

    def run(self, work: Callable[[], T]) -> T | None:
        """`work()`, or None when it failed (the failure is handled here)."""
        try:
            result = work()
        except EnergymonError as exc:
            self._failed(exc)
            return None
        if self.failures:
            began = self.failing_since_ms or self.clock.now_ms()
            log.info(
                "%s recovered after %d failures in %.0f s",
                self.name, self.failures, max(0, self.clock.now_ms() - began) / 1000,
            )  # fmt: skip
        self.backoff.reset()
        self.last_error = None
        self.failing_since_ms = None
        self.run_in(self.interval_s)
        return result

    def _failed(self, exc: EnergymonError) -> None:
        delay = self.backoff.next_delay_s(getattr(exc, "retry_after_s", None))
        self.run_in(delay)
        message = str(exc)
        if self.failing_since_ms is None:
            self.failing_since_ms = self.clock.now_ms()
        if message == self.last_error:
            log.debug("%s failed again (%d in a row): %s", self.name, self.failures, message)
            return
        self.last_error = message
        # An operator must act on these; the others usually pass on their own.
        operator = isinstance(exc, InfluxAuthError | InfluxConfigError)
        log.log(
            logging.ERROR if operator else logging.WARNING,
            "%s failed (%s), retrying in %.1f s with back-off; logged again when the error "
            "changes or clears: %s",
            self.name, type(exc).__name__, delay, message,
        )  # fmt: skip
