"""Exponential back-off with full jitter, capped, honouring a server's Retry-After."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

RETRY_AFTER_LIMIT_S = 3600.0


@dataclass
class Backoff:
    base_s: float
    cap_s: float
    failures: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def reset(self) -> None:
        self.failures = 0

    def next_delay_s(self, retry_after_s: float | None = None) -> float:
        """Delay before the next attempt after one more failure."""
        self.failures += 1
        ceiling = min(self.cap_s, self.base_s * 2 ** min(self.failures - 1, 32))
        # Jitter spreads many homes' retries after a cloud outage; half the ceiling at least,
        # so a run of failures still slows down.
        delay = self.rng.uniform(ceiling / 2, ceiling)
        if retry_after_s is not None:
            # The server knows best when it can take more: never retry earlier than it asked,
            # but an absurd value must not stall replication for days.
            delay = max(delay, min(retry_after_s, RETRY_AFTER_LIMIT_S))
        return delay
