"""The error boundary of a background loop, stepped on a manual clock: a step that raises is
logged once per distinct failure, shown as a fault, retried after a back-off, and closed by the
first success."""

from __future__ import annotations

import logging

import pytest

from energymon.boundary import ErrorBoundary, Faults
from energymon.clock import ManualClock


class Flaky:
    def __init__(self, errors: list[Exception]) -> None:
        self.errors = errors
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "done"


def test_a_failing_step_is_logged_once_backed_off_and_closed_by_a_success(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = ManualClock()
    faults = Faults()
    boundary = ErrorBoundary("drain", faults, clock, base_s=1.0, cap_s=4.0)
    step = Flaky([OSError(28, "No space left on device")] * 4 + [ValueError("bad page")])
    caplog.set_level(logging.ERROR, logger="energymon.boundary")

    assert boundary.run(step) is None
    assert boundary.run(step) is None and step.calls == 1  # backing off: not run again yet
    assert boundary.retry_in_s == 1.0
    delays = []
    for _ in range(3):
        clock.advance(boundary.retry_in_s)
        boundary.run(step)
        delays.append(boundary.retry_in_s)
    assert delays == [2.0, 4.0, 4.0]  # doubling, up to the cap
    [fault] = faults.current()
    assert (fault.loop, fault.failures) == ("drain", 4)
    assert "No space left on device" in fault.reason
    clock.advance(boundary.retry_in_s)
    boundary.run(step)  # another failure: logged again, with its own context
    assert "bad page" in faults.current()[0].reason
    assert [r.getMessage().split(":")[-1].strip() for r in caplog.records] == [
        "[Errno 28] No space left on device",
        "bad page",
    ]
    assert all(r.exc_info for r in caplog.records)

    clock.advance(boundary.retry_in_s)
    assert boundary.run(step) == "done"
    assert faults.current() == () and boundary.retry_in_s == 0.0 and boundary.failures == 0
