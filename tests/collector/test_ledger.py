"""The ledger: runs of durable seqs with their offsets, lives, segments, and what survives a
reopen. The store's tests (test_store.py) exercise the same rules against a real influxd."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from collector.ledger import MAX_RUNS, SCHEMA, Ledger
from collector.statedb import StateDB
from collector.submission import Candidate
from energymon.schema import Measurement

T0 = 1_700_000_000_000


def candidates(seqs: list[int] | range) -> list[Candidate]:
    """Valid readings at `seq` seconds of uptime, as the store marks them seen."""
    return [
        Candidate.of_measurement(
            s, s * 1000, "pzem1", Measurement(230.0, 1.0, 230.0, s, 50.0, 1.0, False)
        )
        for s in seqs
    ]


def test_a_life_keeps_a_bounded_number_of_runs(tmp_path: Path) -> None:
    ledger = Ledger(StateDB(tmp_path))
    life = ledger.life_of("dev", 1, 7, T0, 0)
    seqs = range(2, 4 * MAX_RUNS, 2)  # every other seq: a gap after each
    for seq in seqs:
        assert ledger.place(life, seq, seq * 1000) == T0 + seq * 1000
    ledger.mark_seen({life.key: candidates(seqs)})
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
    ledger.mark_seen({life.key: candidates([1, 2, 3, 7])})
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


def test_a_held_reading_is_told_from_another_by_its_digest_after_reopening(
    tmp_path: Path,
) -> None:
    db = StateDB(tmp_path)
    ledger = Ledger(db)
    life = ledger.life_of("dev", 1, None, T0, 3000)
    readings = candidates([1, 2, 3])
    for r in readings:
        ledger.place(life, r.seq, r.offset_ms)
    with db.transaction() as conn:
        ledger.write_rows(conn, ledger.unstored())
    ledger.mark_seen({life.key: readings})
    db.close()

    reopened = Ledger(StateDB(tmp_path))
    # A re-send, at either end of the run or inside it, is the same life.
    for resent in ([readings[0]], [readings[1]], readings):
        assert reopened.life_of("dev", 1, None, T0, 3500, readings=resent).key == life.key
    # At the same uptime another reading is another life's (an erased boot counter).
    other = readings[0]._replace(raw={**readings[0].raw, "energy_wh": 99})
    assert reopened.life_of("dev", 1, None, T0, 3500, readings=[other]).key == ("dev", 1, -1)


def test_runs_kept_by_an_older_version_gain_unknown_digests(tmp_path: Path) -> None:
    db = StateDB(tmp_path)
    lives, segments, _ = SCHEMA
    with db.transaction() as conn:
        conn.execute(lives)
        conn.execute(segments)
        conn.execute(
            "CREATE TABLE runs (device TEXT NOT NULL, boot INTEGER NOT NULL, "
            "nonce INTEGER NOT NULL, lo INTEGER NOT NULL, hi INTEGER NOT NULL, lo_off INTEGER, "
            "hi_off INTEGER, PRIMARY KEY (device, boot, nonce, lo))"
        )
        conn.execute("INSERT INTO lives (device, boot, nonce, adopted) VALUES ('dev', 1, 0, 1)")
        conn.execute(
            "INSERT INTO segments VALUES ('dev', 1, 0, 1, ?, ?, ?, ?)",
            (T0, T0, T0 + 1000, T0 + 3000),
        )
        conn.execute("INSERT INTO runs VALUES ('dev', 1, 0, 1, 3, 1000, 3000)")
    ledger = Ledger(db)
    life = ledger.life(("dev", 1, 0))
    assert life.runs.rows() == [(1, 3, 1000, 3000, None, None)]
    # An unknown digest tells nothing: the reading at the run's end is taken for a re-send.
    other = candidates([1])[0]._replace(raw={**candidates([1])[0].raw, "energy_wh": 99})
    assert ledger.life_of("dev", 1, None, T0, 3500, readings=[other]).key == life.key


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.integers(1, 400), min_size=1, max_size=30, unique=True), max_size=12))
def test_the_runs_rows_are_the_runs_in_memory_after_any_marks(groups: list[list[int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = StateDB(Path(tmp))
        ledger = Ledger(db)
        life = ledger.life_of("dev", 1, 7, T0, 0)
        with db.transaction() as conn:
            ledger.write_rows(conn, ledger.unstored())
        done: set[int] = set()
        for seqs in groups:
            # Far more gaps than a life keeps: the oldest runs are given up on the way.
            fresh = [s * 2 for s in seqs if s * 2 not in done and s * 2 > life.runs.floor_seq]
            done.update(fresh)
            if fresh:
                ledger.mark_seen({life.key: candidates(fresh)})
        db.close()
        reopened = Ledger(StateDB(Path(tmp))).life(life.key).runs
        assert reopened.rows() == life.runs.rows()
        assert (reopened.floor_seq, reopened.floor_off) == (
            life.runs.floor_seq,
            life.runs.floor_off,
        )
