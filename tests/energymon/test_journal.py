"""The write journal on real files: what the collector records, the replicator reads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from energymon import journal
from energymon.errors import StoreError
from energymon.sqlitedb import SQLiteDB


def open_fds(path: Path) -> int:
    """File descriptors of this process open on `path` or its WAL files."""
    names = {str(path), f"{path}-wal", f"{path}-shm"}
    fds = Path("/proc/self/fd")
    return sum(1 for fd in fds.iterdir() if os.path.realpath(fd) in names)


def test_the_reader_follows_a_journal_that_appears_later(tmp_path: Path) -> None:
    reader = journal.JournalReader(tmp_path)
    assert not reader.exists()
    with SQLiteDB(tmp_path / journal.STATE_DB_NAME, schema=(journal.SCHEMA,)) as writer:
        assert reader.exists()
        assert (reader.first_id(), reader.last_id(), reader.entries_after(0)) == (None, None, [])
        for recorded_ms in (1000, 2000, 3000):
            with writer.transaction() as conn:
                journal.record(
                    conn, recorded_ms=recorded_ms, min_time_ms=10, max_time_ms=20, points=5
                )
        assert [e.recorded_ms for e in reader.entries_after(1)] == [2000, 3000]
        assert reader.entries_after(0, limit=1) == [journal.JournalEntry(1, 1000, 10, 20, 5)]
        with writer.transaction(durable=False) as conn:
            assert journal.prune(conn, recorded_before_ms=2500) == 2
        assert (reader.first_id(), reader.last_id()) == (3, 3)
    reader.close()


def test_the_reader_keeps_one_connection_until_closed(tmp_path: Path) -> None:
    path = tmp_path / journal.STATE_DB_NAME
    writer = SQLiteDB(path, schema=(journal.SCHEMA,))
    reader = journal.JournalReader(tmp_path)
    before = open_fds(path)
    for _ in range(20):
        reader.last_id()
        reader.entries_after(0)
    # One connection: its file and the two WAL files at most.
    assert 0 < open_fds(path) - before <= 3
    writer.close()
    assert reader.last_id() is None
    reader.close()
    assert open_fds(path) == 0


def test_a_journal_that_is_no_database_is_a_store_error(tmp_path: Path) -> None:
    reader = journal.JournalReader(tmp_path)
    (tmp_path / journal.STATE_DB_NAME).write_bytes(b"not a database at all, only text " * 200)
    with pytest.raises(StoreError):
        reader.last_id()


def test_a_recreated_journal_has_another_identity(tmp_path: Path) -> None:
    schema = (journal.SCHEMA, *journal.IDENTITY_SCHEMA)
    path = tmp_path / journal.STATE_DB_NAME
    reader = journal.JournalReader(tmp_path)
    with SQLiteDB(path, schema=schema):
        first = reader.identity()
    # Opening the same journal again keeps its identity.
    with SQLiteDB(path, schema=schema):
        assert reader.identity() == first
    reader.close()
    for name in os.listdir(tmp_path):
        os.unlink(tmp_path / name)
    with SQLiteDB(path, schema=schema):
        second = reader.identity()
    reader.close()
    assert first is not None and second is not None and len(first) == 32
    assert first != second


def test_a_journal_from_before_identities_has_none(tmp_path: Path) -> None:
    with SQLiteDB(tmp_path / journal.STATE_DB_NAME, schema=(journal.SCHEMA,)):
        reader = journal.JournalReader(tmp_path)
        assert reader.identity() is None
        reader.close()


OLD_SCHEMA = """CREATE TABLE write_journal (
    id INTEGER PRIMARY KEY AUTOINCREMENT, recorded_ms INTEGER NOT NULL,
    min_time_ms INTEGER NOT NULL, max_time_ms INTEGER NOT NULL, points INTEGER NOT NULL)"""


def test_a_journal_without_kinds_is_migrated_once(tmp_path: Path) -> None:
    path = tmp_path / journal.STATE_DB_NAME
    with SQLiteDB(path, schema=(OLD_SCHEMA,)) as old, old.transaction() as conn:
        conn.execute(
            "INSERT INTO write_journal (recorded_ms, min_time_ms, max_time_ms, points) "
            "VALUES (1, 2, 3, 4)"
        )
    for _ in range(2):
        with SQLiteDB(path, schema=(journal.SCHEMA,)) as db:
            with db.transaction() as conn:
                journal.migrate(conn)
                journal.record(
                    conn, recorded_ms=5, min_time_ms=6, max_time_ms=7, points=8, kind="rollup"
                )
            entries, cursor = journal.entries_of_other_kinds(
                db, 0, journal.ROLLUP, settled=lambda e: True, limit=100
            )
            # The old entry is of the readings' kind; the rollup entries are passed over.
            assert [(e.id, e.kind) for e in entries] == [(1, journal.POINTS)]
            assert cursor == db.fetch_all("SELECT max(id) FROM write_journal")[0][0]
    # The replicator follows every kind.
    reader = journal.JournalReader(tmp_path)
    assert [e.id for e in reader.entries_after(0)] == [1, 2, 3]
    reader.close()
