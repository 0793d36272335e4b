"""Exponential back-off with jitter, capped, honouring a server's Retry-After.

One policy for everything that retries over a network: the fake device (as the firmware does),
the replicator. The firmware's C++ core implements the same rule (`firmware/.../retry`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

# A server's Retry-After is obeyed up to this; an absurd value must not stall a loop for days.
RETRY_AFTER_LIMIT_S = 3600.0


@dataclass(frozen=True, slots=True)
class BackoffPolicy:
    """After the n-th consecutive failure, wait a time drawn from [1 - jitter, 1] times
    min(cap, base x 2^(n-1)). Jitter spreads the retries of many clients after a shared outage;
    keeping the lower bound at a fraction of the nominal delay makes a run of failures still
    slow down."""

    base_s: float = 1.0
    cap_s: float = 60.0
    jitter: float = 0.5

    def nominal_s(self, failures: int) -> float:
        return min(self.cap_s, self.base_s * 2.0 ** min(max(failures - 1, 0), 64))

    def delay_s(
        self, failures: int, rng: random.Random, retry_after_s: float | None = None
    ) -> float:
        delay = self.nominal_s(failures) * (1 - self.jitter * rng.random())
        if retry_after_s is not None:
            # The server knows best when it can take more: never earlier than it asked.
            delay = max(delay, min(retry_after_s, RETRY_AFTER_LIMIT_S))
        return delay


class Backoff:
    """The policy plus a count of consecutive failures."""

    def __init__(
        self, base_s: float, cap_s: float, jitter: float = 0.5, rng: random.Random | None = None
    ) -> None:
        self.policy = BackoffPolicy(base_s, cap_s, jitter)
        self.rng = rng or random.Random()
        self.failures = 0

    def reset(self) -> None:
        self.failures = 0

    def next_delay_s(self, retry_after_s: float | None = None) -> float:
        """Delay before the next attempt, counting one more failure."""
        self.failures += 1
        return self.policy.delay_s(self.failures, self.rng, retry_after_s)
