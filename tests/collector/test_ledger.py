from __future__ import annotations

from itertools import pairwise
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from collector.ledger import Ledger, SeqSet
from collector.statedb import StateDB


@given(
    st.lists(st.tuples(st.integers(1, 200), st.integers(0, 20)), max_size=40), st.integers(1, 230)
)
def test_seqset_matches_a_plain_set(ranges: list[tuple[int, int]], probe: int) -> None:
    model: set[int] = set()
    seqs = SeqSet()
    for lo, width in ranges:
        seqs.add_range(lo, lo + width)
        model.update(range(lo, lo + width + 1))
    assert (probe in seqs) == (probe in model)
    assert all(s in seqs for s in model)
    intervals = seqs.intervals()
    # Disjoint, sorted and never adjacent: the representation stays minimal.
    assert all(a_hi + 1 < b_lo for (_, a_hi), (b_lo, _) in pairwise(intervals))
    assert sum(hi - lo + 1 for lo, hi in intervals) == len(model)


@given(st.lists(st.integers(1, 500), max_size=100))
def test_add_all_equals_adding_one_by_one(values: list[int]) -> None:
    bulk = SeqSet()
    bulk.add_all(values)
    single = SeqSet()
    for v in values:
        single.add_range(v, v)
    assert bulk.intervals() == single.intervals()


def test_ledger_survives_reopening(tmp_path: Path) -> None:
    db = StateDB(tmp_path)
    ledger = Ledger(db)
    add_anchors(db, ledger, {("dev", 3): 1_000_000})
    ledger.mark_seen({("dev", 3): [1, 2, 3, 7]})
    db.close()

    reopened = Ledger(StateDB(tmp_path))
    assert reopened.anchor(("dev", 3)) == 1_000_000
    assert [s for s in range(1, 9) if reopened.is_seen(("dev", 3), s)] == [1, 2, 3, 7]
    assert reopened.highest_seen(("dev", 3)) == 7
    assert reopened.anchor(("dev", 4)) is None


def test_first_anchor_wins(tmp_path: Path) -> None:
    db = StateDB(tmp_path)
    ledger = Ledger(db)
    add_anchors(db, ledger, {("dev", 1): 5000})
    add_anchors(db, ledger, {("dev", 1): 9000})
    assert ledger.anchor(("dev", 1)) == 5000
    assert Ledger(db).anchor(("dev", 1)) == 5000


def add_anchors(db: StateDB, ledger: Ledger, anchors: dict[tuple[str, int], int]) -> None:
    """As the store does: adopted, then stored in a durable transaction."""
    for key, anchor_ms in anchors.items():
        ledger.adopt(key, anchor_ms)
    unstored = ledger.unstored(anchors)
    with db.transaction() as conn:
        ledger.write_anchors(conn, unstored)
    ledger.anchors_stored(unstored)
