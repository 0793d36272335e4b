"""The ledger: runs of durable seqs with their offsets, lives, segments, and what survives a
reopen. The store's tests (test_store.py) exercise the same rules against a real influxd."""

from __future__ import annotations

from pathlib import Path

from collector.ledger import MAX_RUNS, Ledger
from collector.statedb import StateDB

T0 = 1_700_000_000_000


def test_a_life_keeps_a_bounded_number_of_runs(tmp_path: Path) -> None:
    ledger = Ledger(StateDB(tmp_path))
    life = ledger.life_of("dev", 1, 7, T0, 0)
    seqs = range(2, 4 * MAX_RUNS, 2)  # every other seq: a gap after each
    for seq in seqs:
        assert ledger.place(life, seq, seq * 1000) == T0 + seq * 1000
    ledger.mark_seen({life.key: list(seqs)})
    assert len(life.runs) == MAX_RUNS
    given_up = life.runs.floor_seq
    assert given_up == seqs[len(seqs) - MAX_RUNS - 1]
    # A seq below the floor can no longer be told from a re-send: it is not placed.
    assert isinstance(ledger.place(life, given_up - 1, (given_up - 1) * 1000), str)
    # A gap above it still can be filled.
    assert ledger.place(life, given_up + 1, (given_up + 1) * 1000) == T0 + (given_up + 1) * 1000


def test_lives_segments_and_runs_survive_reopening(tmp_path: Path) -> None:
    db = StateDB(tmp_path)
    ledger = Ledger(db)
    life = ledger.life_of("dev", 3, 99, T0, 0)
    for seq in (1, 2, 3, 7):
        ledger.place(life, seq, seq * 1000)
    with db.transaction() as conn:
        ledger.write_rows(conn, ledger.unstored())
    ledger.mark_seen({life.key: [1, 2, 3, 7]})
    db.close()

    reopened = Ledger(StateDB(tmp_path))
    again = reopened.life_of("dev", 3, 99, T0 + 5, 8000)
    assert again.key == life.key
    assert [s for s in range(1, 9) if s in again.runs] == [1, 2, 3, 7]
    [segment] = again.segments
    assert (segment.anchor_ms, segment.t_min, segment.t_max) == (T0, T0 + 1000, T0 + 7000)
    # The runs' offsets survive too: a seq between 3 and 7 must lie between their uptimes.
    assert isinstance(reopened.place(again, 5, 9000), str)
    assert reopened.place(again, 5, 5000) == T0 + 5000


def test_old_anchors_and_seen_sets_become_lives(tmp_path: Path) -> None:
    db = StateDB(tmp_path)
    with db.transaction() as conn:
        conn.execute("INSERT INTO anchors (device, boot, anchor_ms) VALUES ('dev', 4, ?)", (T0,))
        conn.execute("INSERT INTO seen (device, boot, lo, hi) VALUES ('dev', 4, 1, 50)")
    ledger = Ledger(db)
    life = ledger.life_of("dev", 4, None, T0 + 999, 60_000)
    assert life.key == ("dev", 4, 0)
    assert 50 in life.runs and life.segments[0].anchor_ms == T0
