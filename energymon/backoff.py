"""Exponential back-off with jitter, capped, honouring a server's Retry-After.

One policy for everything that retries over a network: the fake device (as the firmware does),
the replicator. The firmware's C++ core implements the same rule (`firmware/.../retry`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime

# A server's Retry-After is obeyed up to this; an absurd value must not stall a loop for days.
RETRY_AFTER_LIMIT_S = 3600.0
# A delay too long to represent counts as this many seconds, as RFC 9111 has caches do.
DELAY_SECONDS_MAX = 2**31


def parse_retry_after(value: str | None, now_ms: int) -> float | None:
    """Seconds to wait from a Retry-After field (RFC 9110): delay-seconds, or an HTTP-date
    compared with `now_ms`; a date in the past gives 0. None when the field is absent or is
    neither form (a negative or fractional number included)."""
    if value is None:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        digits = text.lstrip("0")
        if len(digits) > len(str(DELAY_SECONDS_MAX)):
            return float(DELAY_SECONDS_MAX)
        return float(min(int(digits or "0"), DELAY_SECONDS_MAX))
    try:
        # email.utils reads all three HTTP-date forms (IMF-fixdate, RFC 850, asctime).
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        # asctime carries no zone; every HTTP-date is in UTC.
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, moment.timestamp() - now_ms / 1000)


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
