"""Runs of durable seqs: the set they stand for, minimal, with the offsets at their ends."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from collector.runs import Runs


@given(st.lists(st.integers(1, 300), max_size=120, unique=True), st.integers(1, 320))
def test_runs_match_a_plain_set(seqs: list[int], probe: int) -> None:
    runs = Runs()
    for seq in seqs:
        runs.add(seq, seq * 10)
    assert (probe in runs) == (probe in set(seqs))
    rows = runs.rows()
    # Disjoint, sorted and never adjacent: the representation stays minimal.
    assert all(a[1] + 1 < b[0] for a, b in pairwise(rows))
    assert sum(hi - lo + 1 for lo, hi, _, _ in rows) == len(seqs)
    # Each run knows the offsets of its outermost readings.
    assert all((lo_off, hi_off) == (lo * 10, hi * 10) for lo, hi, lo_off, hi_off in rows)
    if probe not in runs:
        below, above = runs.neighbours(probe)
        lower = [s for s in seqs if s < probe]
        upper = [s for s in seqs if s > probe]
        assert below == (max(lower) * 10 if lower else None)
        assert above == (min(upper) * 10 if upper else None)


def test_a_quarantined_reading_extends_a_run_without_moving_its_offsets() -> None:
    runs = Runs()
    runs.add(10, 100)
    runs.add(11, None)
    runs.add(9, None)
    assert runs.rows() == [(9, 11, 100, 100)]
    assert runs.neighbours(12) == (100, None)
