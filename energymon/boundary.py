"""The error boundary of a background loop: a step that raises does not end the loop.

A long-running service cannot let one unexpected exception (a full disk, a damaged database
page, a value a device should never have sent) end the loop that drains its spool or polls its
meters: the loop would be gone without a trace while the process still answers. `ErrorBoundary`
runs one step; when the step raises, it logs the failure once with its context (a repetition
of the same failure is counted, not logged again), records it in `Faults` for `/health`, and
refuses to run the step again until a back-off on the injected clock has passed. The first
success afterwards closes the fault and says so in the log.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TypeVar

from energymon.backoff import BackoffPolicy
from energymon.clock import Clock

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Fault:
    """A loop whose step has been failing since `since_ms`, and why it last failed."""

    loop: str
    reason: str
    since_ms: int
    failures: int


class Faults:
    """The faults of a service's loops that are not over yet; shared between threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: dict[str, Fault] = {}

    def record(self, loop: str, reason: str, now_ms: int) -> Fault:
        with self._lock:
            known = self._open.get(loop)
            if known is None:
                fault = Fault(loop, reason, now_ms, 1)
            else:
                fault = replace(known, reason=reason, failures=known.failures + 1)
            self._open[loop] = fault
            return fault

    def clear(self, loop: str) -> Fault | None:
        with self._lock:
            return self._open.pop(loop, None)

    def current(self) -> tuple[Fault, ...]:
        with self._lock:
            return tuple(self._open[name] for name in sorted(self._open))


class ErrorBoundary:
    """Runs the steps of the loop `loop`; see the module's docstring."""

    def __init__(
        self,
        loop: str,
        faults: Faults,
        clock: Clock,
        *,
        base_s: float = 1.0,
        cap_s: float = 60.0,
    ) -> None:
        self.loop = loop
        self.faults = faults
        self.clock = clock
        # No jitter: one local loop has no crowd of peers to spread out from.
        self.policy = BackoffPolicy(base_s, cap_s, jitter=0.0)
        self.failures = 0
        self._retry_at = clock.monotonic()
        self._last_reason: str | None = None

    @property
    def retry_in_s(self) -> float:
        """How long until the step may run again: zero unless it is backing off."""
        return max(0.0, self._retry_at - self.clock.monotonic())

    def run(self, step: Callable[[], T]) -> T | None:
        """The step's result; None when it raised or is still backing off from a failure."""
        if self.retry_in_s > 0:
            return None
        try:
            result = step()
        # The boundary exists to catch what nobody foresaw; the failure is logged, shown in
        # health and retried, not carried on from silently.
        except Exception as exc:  # noqa: BLE001
            self._failed(exc)
            return None
        if self.failures:
            fault = self.faults.clear(self.loop)
            log.warning(
                "%s works again after %d failed attempts (since %s ms)",
                self.loop,
                self.failures,
                None if fault is None else fault.since_ms,
            )
            self.failures = 0
            self._last_reason = None
        return result

    def _failed(self, exc: Exception) -> None:
        self.failures += 1
        reason = f"{type(exc).__name__}: {exc}"
        delay_s = self.policy.nominal_s(self.failures)
        self._retry_at = self.clock.monotonic() + delay_s
        self.faults.record(self.loop, reason, self.clock.now_ms())
        if reason != self._last_reason:
            # Once per distinct failure, with its traceback; a repetition only counts.
            log.error(
                "%s failed (attempt %d), retrying with back-off (next in %.1f s): %s",
                self.loop,
                self.failures,
                delay_s,
                reason,
                exc_info=exc,
            )
            self._last_reason = reason
