from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from energymon.backoff import RETRY_AFTER_LIMIT_S, Backoff, BackoffPolicy


@given(st.integers(1, 200), st.floats(0, 1), st.integers(0, 2**32))
def test_delay_stays_within_the_jittered_nominal(failures: int, jitter: float, seed: int) -> None:
    policy = BackoffPolicy(1.0, 60.0, jitter)
    nominal = min(60.0, 2.0 ** (failures - 1))
    assert nominal * (1 - jitter) <= policy.delay_s(failures, random.Random(seed)) <= nominal


def test_doubles_then_caps_and_resets() -> None:
    backoff = Backoff(1.0, 30.0, jitter=0.0)
    assert [backoff.next_delay_s() for _ in range(7)] == [1, 2, 4, 8, 16, 30, 30]
    backoff.reset()
    assert backoff.next_delay_s() == 1.0


def test_retry_after_is_honoured_within_a_limit() -> None:
    backoff = Backoff(1.0, 30.0, jitter=0.0)
    assert backoff.next_delay_s(retry_after_s=120.0) == 120.0
    assert backoff.next_delay_s(retry_after_s=10**9) == RETRY_AFTER_LIMIT_S
    assert backoff.next_delay_s(retry_after_s=0.0) == 4.0
