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
    assert sum(hi - lo + 1 for lo, hi, *_ in rows) == len(seqs)
    # Each run knows the offsets of its outermost readings.
    assert all((lo_off, hi_off) == (lo * 10, hi * 10) for lo, hi, lo_off, hi_off, *_ in rows)
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
    assert runs.rows() == [(9, 11, 100, 100, None, None)]
    assert runs.neighbours(12) == (100, None)


@given(st.lists(st.integers(1, 300), max_size=120, unique=True))
def test_digests_are_those_of_the_readings_at_each_runs_ends(seqs: list[int]) -> None:
    runs = Runs()
    for seq in seqs:
        runs.add(seq, seq * 10)
        if runs.is_end(seq):
            runs.seal(seq, -seq)
    # Through every merge and extension, each end keeps its own reading's digest, never
    # another's: a stale digest would make a re-send look like another reading.
    assert all((lo_d, hi_d) == (-lo, -hi) for lo, hi, _, _, lo_d, hi_d in runs.rows())
    assert [s for s in seqs if runs.is_end(s)] == [
        s for s in seqs if any(s in (lo, hi) for lo, hi, *_ in runs.rows())
    ]


def test_a_new_end_has_no_digest_until_sealed() -> None:
    runs = Runs()
    runs.add(10, 100)
    runs.seal(10, 7)
    runs.add(11, 110)
    runs.add(9, 90)
    assert runs.rows() == [(9, 11, 90, 110, None, None)]
    runs.seal(10, 5)  # inside the run: nothing kept
    assert runs.rows() == [(9, 11, 90, 110, None, None)]


@given(
    st.lists(st.integers(1, 300), max_size=60, unique=True),
    st.integers(1, 320),
    st.integers(1, 20),
)
def test_a_stretch_is_added_as_its_seqs_one_by_one_or_not_at_all(
    held: list[int], lo: int, length: int
) -> None:
    one_by_one, at_once = Runs(), Runs()
    for seq in held:
        one_by_one.add(seq, seq * 10)
        at_once.add(seq, seq * 10)
    stretch = range(lo, lo + length)
    before = at_once.rows()
    added = at_once.add_stretch(stretch[0], stretch[-1], stretch[0] * 10, stretch[-1] * 10)
    # Taken unless it holds a held seq or reaches a run above: those are left to `add`.
    assert added == (not set(held) & {*stretch, lo + length})
    if added:
        for seq in stretch:
            one_by_one.add(seq, seq * 10)
        assert at_once.rows() == one_by_one.rows()
    else:
        assert at_once.rows() == before
