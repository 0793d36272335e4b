"""What the collector's loops and HTTP app observe that the store does not keep, for health.

One `Watch` per collector: the faults of its background loops (`energymon.boundary`), the
requests refused because their readings could not be made durable (a full spool or a failing
disk alike), when draining the spool last made progress, so `/health` can tell that draining
stopped, and how far the rollups are behind.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from energymon.boundary import Faults


@dataclass(slots=True)
class RollupWatch:
    """What the rollup worker (`collector.rollup`) last said about itself."""

    interval_s: float
    # When its last step ended, whether it did work or failed.
    last_step_ms: int
    # When the oldest change not yet rolled up was journalled; None: nothing waits.
    oldest_pending_ms: int | None = None
    # The pause its loop takes after that step: longer than the interval while a backlog is
    # worked off at a share of the time; None: the interval.
    pause_s: float | None = None

    @property
    def next_step_ms(self) -> int:
        """When its next step is due."""
        pause_s = self.interval_s if self.pause_s is None else self.pause_s
        return self.last_step_ms + int(pause_s * 1000)


@dataclass(slots=True)
class Watch:
    faults: Faults = field(default_factory=Faults)
    # Requests answered 503 `not_durable`, whatever made the store refuse them.
    refused_not_durable: int = 0
    # The last time a drain step moved points into InfluxDB or found the spool empty.
    last_drain_ms: int | None = None
    # Why the last drain attempt failed; None once one succeeds.
    drain_error: str | None = None
    # None where no rollup worker runs (a store on its own, tests of other parts).
    rollup: RollupWatch | None = None
