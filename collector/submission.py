"""The durable store's input: candidate readings of one (device, boot), from any source.

The HTTP payload parser and the serial poller both build a `Submission`; the store never sees a
request body or a poller. A candidate carries its time as an offset from the boot's anchor: the
device's uptime for a posted reading, the Pi's clock for a serial one (whose anchor is zero).
Whether a candidate is new, a duplicate or a collision is decided by the store, against what is
already durable, not here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import NamedTuple

from energymon.schema import MeasuredValues, Measurement


class Candidate(NamedTuple):
    """One reading offered for storage; `values` is None when it must be quarantined.

    A named tuple, not a frozen dataclass: one is made for every reading on the hot path, and
    a tuple is made several times faster."""

    seq: int
    offset_ms: int
    sensor: str
    # The measurement's values in the order of `FIELDS`.
    values: MeasuredValues | None
    problem: str | None
    # What the source sent, kept verbatim in the quarantine when the reading is not valid.
    raw: Mapping[str, object]

    @property
    def measurement(self) -> Measurement | None:
        return None if self.values is None else Measurement.from_values(self.values)

    @classmethod
    def of_measurement(
        cls, seq: int, offset_ms: int, sensor: str, measurement: Measurement
    ) -> Candidate:
        """A candidate from a decoded measurement: quarantined when the meter's ranges say so."""
        problem = measurement.problem()
        return cls(
            seq,
            offset_ms,
            sensor,
            measurement.values() if problem is None else None,
            problem,
            asdict(measurement),
        )


@dataclass(frozen=True, slots=True)
class ResetReport:
    """Why the device's current boot began, as its firmware recorded it across the reset."""

    cause: str
    # Where the firmware's loop was when the watchdog fired; None for other causes.
    stage: str | None
    watchdog_resets: int


@dataclass(frozen=True, slots=True)
class Submission:
    """Candidates of one (device, boot), with what the source reports about itself."""

    device: str
    boot: int
    # The anchor this source proposes; the store keeps the first one it made durable.
    anchor_ms: int
    readings: tuple[Candidate, ...]
    dropped: int | None = None
    meter_errors: Mapping[str, int] = field(default_factory=dict)
    reset: ResetReport | None = None
    # The random number the firmware drew at this boot; None from devices that send none.
    boot_nonce: int | None = None
    # The source's uptime when it sent this: what `anchor_ms` was computed from.
    uptime_ms: int = 0

    @property
    def highest_seq(self) -> int | None:
        return max((c.seq for c in self.readings), default=None)
