"""The SQLite helper on real files: transactions, durability, errors, read-only use, closing."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from energymon.errors import StoreError
from energymon.sqlitedb import SQLiteDB

SCHEMA = ("CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v INTEGER NOT NULL)",)
# PRAGMA synchronous answers with a number.
NORMAL, FULL = 1, 2


def rows(db: SQLiteDB) -> list[tuple[str, int]]:
    return [(k, v) for k, v in db.fetch_all("SELECT k, v FROM t ORDER BY k")]


def synchronous(db: SQLiteDB) -> int:
    [(level,)] = db.fetch_all("PRAGMA synchronous")
    return int(level)


@pytest.fixture
def db(tmp_path: Path) -> SQLiteDB:
    return SQLiteDB(tmp_path / "sub" / "x.db", schema=SCHEMA)


def test_a_writer_creates_the_file_in_wal_mode_with_its_schema(db: SQLiteDB) -> None:
    assert db.path.is_file()
    assert db.fetch_all("PRAGMA journal_mode") == [("wal",)]
    assert rows(db) == []
    assert synchronous(db) == FULL


def test_a_committed_transaction_is_in_the_file(db: SQLiteDB) -> None:
    with db.transaction() as conn:
        conn.execute("INSERT INTO t VALUES ('a', 1)")
        conn.execute("INSERT INTO t VALUES ('b', 2)")
    db.close()
    with SQLiteDB(db.path, schema=SCHEMA) as again:
        assert rows(again) == [("a", 1), ("b", 2)]


def test_a_body_that_raises_rolls_everything_back_and_its_error_leaves_unchanged(
    db: SQLiteDB,
) -> None:
    with db.transaction() as conn:
        conn.execute("INSERT INTO t VALUES ('a', 1)")
    with pytest.raises(KeyError, match="not a database error"), db.transaction() as conn:
        conn.execute("UPDATE t SET v = 10")
        conn.execute("INSERT INTO t VALUES ('b', 2)")
        raise KeyError("not a database error")
    assert rows(db) == [("a", 1)]
    with db.transaction() as conn:
        conn.execute("INSERT INTO t VALUES ('c', 3)")
    assert rows(db) == [("a", 1), ("c", 3)]


def test_a_database_error_in_a_transaction_rolls_back_and_becomes_store_error(
    db: SQLiteDB,
) -> None:
    failure = pytest.raises(StoreError, match=r"write on .*x\.db failed: UNIQUE")
    with failure as caught, db.transaction() as conn:
        conn.execute("INSERT INTO t VALUES ('a', 1)")
        conn.execute("INSERT INTO t VALUES ('a', 2)")
    assert isinstance(caught.value.__cause__, sqlite3.IntegrityError)
    assert rows(db) == []


def test_every_database_error_is_store_error(db: SQLiteDB, tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="read on"):
        db.fetch_all("SELECT nothing FROM nowhere")
    with pytest.raises(StoreError, match="read on"):
        db.fetch_all("SELEKT 1")
    with pytest.raises(StoreError, match="read on"), db.reading() as conn:
        conn.execute("SELECT k FROM t WHERE")
    with pytest.raises(StoreError, match="cannot open"):
        SQLiteDB(tmp_path / "bad.db", schema=("CREATE TABLE broken (",))
    not_a_database = tmp_path / "text.db"
    not_a_database.write_bytes(b"this is not an SQLite file, just text " * 100)
    with pytest.raises(StoreError, match="cannot open"):
        SQLiteDB(not_a_database, schema=SCHEMA)
    (tmp_path / "dir.db").mkdir()
    with pytest.raises(StoreError, match="cannot open"):
        SQLiteDB(tmp_path / "dir.db")
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="cannot open"):
        SQLiteDB(tmp_path / "file" / "under-a-file.db")


def test_durable_false_commits_without_fsync_and_restores_full(db: SQLiteDB) -> None:
    with db.transaction() as conn:
        assert conn.execute("PRAGMA synchronous").fetchone() == (FULL,)
    with db.transaction(durable=False) as conn:
        assert conn.execute("PRAGMA synchronous").fetchone() == (NORMAL,)
        conn.execute("INSERT INTO t VALUES ('a', 1)")
    assert synchronous(db) == FULL
    with pytest.raises(ValueError, match="abandoned"), db.transaction(durable=False) as conn:
        conn.execute("INSERT INTO t VALUES ('b', 2)")
        raise ValueError("abandoned")
    assert synchronous(db) == FULL
    assert rows(db) == [("a", 1)]


def test_a_reader_sees_commits_and_refuses_every_write(db: SQLiteDB) -> None:
    reader = SQLiteDB(db.path, read_only=True)
    assert rows(reader) == []
    with db.transaction() as conn:
        conn.execute("INSERT INTO t VALUES ('a', 1)")
    assert rows(reader) == [("a", 1)]
    with pytest.raises(StoreError, match="read-only"), reader.transaction():
        pytest.fail("a read-only database opened a transaction")
    with pytest.raises(StoreError, match="readonly"):
        reader.fetch_all("INSERT INTO t VALUES ('b', 2)")
    with pytest.raises(StoreError, match="readonly"), reader.reading() as conn:
        conn.execute("DELETE FROM t")
    assert rows(db) == [("a", 1)]
    reader.close()


def test_a_reader_does_not_create_a_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "missing.db"
    with pytest.raises(StoreError, match="cannot open"):
        SQLiteDB(missing, read_only=True)
    assert not missing.exists()


def test_a_file_in_rollback_journal_mode_opens_with_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.execute(SCHEMA[0])
    conn.execute("INSERT INTO t VALUES ('kept', 7)")
    conn.commit()
    conn.close()
    with SQLiteDB(path, schema=SCHEMA) as db:
        assert rows(db) == [("kept", 7)]
        assert db.fetch_all("PRAGMA journal_mode") == [("wal",)]


def test_close_ends_all_use(db: SQLiteDB) -> None:
    db.close()
    db.close()
    with pytest.raises(StoreError, match="closed"):
        db.fetch_all("SELECT 1")
    with pytest.raises(StoreError, match="closed"), db.transaction():
        pytest.fail("a closed database opened a transaction")


def test_the_context_manager_closes(tmp_path: Path) -> None:
    with SQLiteDB(tmp_path / "x.db", schema=SCHEMA) as db:
        assert db.fetch_all("SELECT count(*) FROM t") == [(0,)]
    with pytest.raises(StoreError, match="closed"):
        db.fetch_all("SELECT count(*) FROM t")


def test_a_write_lock_held_elsewhere_is_waited_for(db: SQLiteDB) -> None:
    other = sqlite3.connect(db.path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO t VALUES ('other', 1)")
    release = threading.Timer(0.3, lambda: other.execute("COMMIT"))
    release.start()
    try:
        with db.transaction() as conn:
            conn.execute("INSERT INTO t VALUES ('mine', 2)")
    finally:
        release.join()
        other.close()
    assert rows(db) == [("mine", 2), ("other", 1)]
