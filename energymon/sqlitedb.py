"""One SQLite file behind one connection: transactions, durability and one error type.

Every SQLite database of the project (the collector's state, the replicator's dead letters, the
replicator's read-only view of the collector's journal) goes through `SQLiteDB`, so they share
one behaviour:

- The connection is opened once, in autocommit mode, and closed by `close()`; a thread lock
  serialises its users, since a health endpoint may read while a worker writes.
- Writers put the file in WAL mode: readers in another process never block the writer, and a
  commit appends to the log instead of rewriting pages.
- `transaction()` is `BEGIN IMMEDIATE` ... `COMMIT`, or `ROLLBACK` when the body raises: the
  write lock is taken up front, so a transaction never fails half-way for a lock it could not
  upgrade.
- Commits are fsynced (`synchronous=FULL`) unless the caller says `durable=False`.
- Every `sqlite3.Error` (and an `OSError` while opening) leaves as `StoreError`, naming the file.
- `read_only=True` opens the file without write access; `transaction()` then refuses at once.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from energymon.errors import StoreError

# How long a statement waits for another connection's write lock before it fails.
BUSY_TIMEOUT_S = 30.0

Params = Sequence[Any]


class SQLiteDB:
    def __init__(self, path: Path, *, schema: Sequence[str] = (), read_only: bool = False) -> None:
        self.path = path
        self.read_only = read_only
        self._lock = threading.RLock()
        try:
            if read_only:
                # A reader must not create the file it came to read.
                uri = f"{path.resolve().as_uri()}?mode=ro"
                conn = sqlite3.connect(
                    uri,
                    uri=True,
                    isolation_level=None,
                    check_same_thread=False,
                    timeout=BUSY_TIMEOUT_S,
                )
            else:
                path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(
                    path, isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_S
                )
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open {path}: {exc}") from exc
        self._conn = conn
        try:
            if not read_only:
                self._setup_writer(schema)
        except (OSError, sqlite3.Error) as exc:
            conn.close()
            raise StoreError(f"cannot open {path}: {exc}") from exc

    def _setup_writer(self, schema: Sequence[str]) -> None:
        (mode,) = self._conn.execute("PRAGMA journal_mode=WAL").fetchone()
        if mode != "wal":
            # Without WAL a commit without an fsync could corrupt the file on a power cut, and
            # the replicator's reads would block the collector's writes.
            raise sqlite3.OperationalError(f"the file cannot be put in WAL mode (it is {mode})")
        self._conn.execute("PRAGMA synchronous=FULL")
        # On failure the connection is closed, which abandons the transaction.
        self._conn.execute("BEGIN IMMEDIATE")
        for statement in schema:
            self._conn.execute(statement)
        self._conn.execute("COMMIT")

    @contextmanager
    def transaction(self, *, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """A write transaction: committed when the body returns, rolled back when it raises.

        `durable=False` commits without an fsync (`synchronous=NORMAL`). In WAL mode such a
        commit survives a crash of the process, and a power cut can lose it but never corrupt
        the file; the next durable commit fsyncs it along. Use it only for state whose loss
        costs an idempotent redo (dropping drained rows, pruning, a cache of what was seen),
        never for anything an acknowledgement depends on.
        """
        if self.read_only:
            raise StoreError(f"{self.path} is open read-only: it cannot be written")
        with self._lock, self._mapped("write"):
            conn = self._conn
            if not durable:
                conn.execute("PRAGMA synchronous=NORMAL")
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    # SQLite may already have rolled back on its own (a full disk, an I/O error).
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            finally:
                if not durable:
                    conn.execute("PRAGMA synchronous=FULL")

    @contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        """The connection for reads that stream rows; each statement sees one committed state.
        Close a cursor left unfinished: it holds its snapshot and would stall checkpoints."""
        with self._lock, self._mapped("read"):
            yield self._conn

    def fetch_all(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        with self.reading() as conn:
            return conn.execute(sql, params).fetchall()

    def close(self) -> None:
        """Close the connection; any later use raises `StoreError`. Closing twice is harmless."""
        with self._lock, self._mapped("close"):
            self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @contextmanager
    def _mapped(self, action: str) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise StoreError(f"{action} on {self.path} failed: {exc}") from exc
