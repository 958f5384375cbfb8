"""The embedded default: a Koito SQLite database file.

Opened the way Koito opens it (WAL, foreign keys on, busy timeout 5 s) so that Koito can
keep running beside an import; the connection runs in autocommit mode and transactions
are explicit (``BEGIN IMMEDIATE`` takes the write lock up front instead of failing midway).

Koito keeps its database open and writes to it (live scrobbles, enrichment, edits) with a
busy timeout of 5 s. So a bulk run never holds the write lock for long: it commits
before a transaction would pass ``commit_every`` seconds and then leaves the lock free
for ``commit_gap`` seconds. The gap is sized for SQLite's busy handler, which a waiting
writer runs: it sleeps and retries, every 100 ms after its first few tries, so a gap of
60 ms after ~0.4 s of lock is met by some retry well within the waiter's 5 s
(tests/test_live_koito.py runs such a writer through a large import).

Between koito-import processes, ``exclusive`` adds an advisory ``flock`` on a file beside
the database (``<db>-import-lock``, empty, left in place: removing it would let two
processes lock two different files). Every transaction of ours takes it, and a bulk run
holds it across all of a file's commits, so koito-import writers still run one file after
another, as if each file were one transaction; Koito never takes it.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from koito_import import schema
from koito_import.errors import DatabaseError
from koito_import.stores.base import Store

#: Beside ``koito.db``: the file koito-import writers lock (see the module docstring).
LOCK_SUFFIX = "-import-lock"


class SqliteStore(Store):
    dialect = "sqlite"
    commit_every = 0.4
    commit_gap = 0.06

    def __init__(self, path: str | Path, *, cache_mb: int = 64) -> None:
        self.path = Path(path)
        self.display_name = str(self.path)
        if self.path.is_dir():
            raise DatabaseError(f"{self.path} is a directory, not a Koito database file")
        if not self.path.parent.is_dir():
            raise DatabaseError(
                f"cannot create {self.path}: folder {self.path.parent} does not exist"
            )
        try:
            self.conn = sqlite3.connect(
                str(self.path), isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise DatabaseError(f"cannot open {self.path}: {exc}") from exc
        try:
            self.created = schema.prepare_sqlite(self.conn) == "created"
            self.conn.execute("PRAGMA foreign_keys = ON")
            self.conn.execute("PRAGMA busy_timeout = 5000")
            self.conn.execute("PRAGMA journal_mode = WAL")
            self.conn.execute("PRAGMA synchronous = NORMAL")
            self.conn.execute(f"PRAGMA cache_size = -{cache_mb * 1024}")
        except BaseException:
            self.conn.close()
            raise
        self._depth = 0
        self._lock_fd: int | None = None
        self._lock_depth = 0

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.conn.executemany(sql, rows)

    @property
    def in_transaction(self) -> bool:
        return self._depth > 0

    def data_version(self) -> int | None:
        return int(self.conn.execute("PRAGMA data_version").fetchone()[0])

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        if self._lock_depth == 0:
            lock = f"{self.path}{LOCK_SUFFIX}"
            try:
                fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
            except OSError as exc:
                raise DatabaseError(
                    f"{self.path}: cannot write: cannot create {lock}: {exc.strerror}"
                ) from exc
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except BaseException:
                os.close(fd)
                raise
            self._lock_fd = fd
        self._lock_depth += 1
        try:
            yield
        finally:
            self._lock_depth -= 1
            if self._lock_depth == 0 and self._lock_fd is not None:
                os.close(self._lock_fd)  # releases the flock
                self._lock_fd = None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Outermost: BEGIN IMMEDIATE; nested: a SAVEPOINT that rolls back on its own."""
        if self._depth:
            name = f"sp{self._depth}"
            self.conn.execute(f"SAVEPOINT {name}")
            self._depth += 1
            try:
                yield
            except BaseException:
                self.conn.execute(f"ROLLBACK TO {name}")
                self.conn.execute(f"RELEASE {name}")
                raise
            else:
                self.conn.execute(f"RELEASE {name}")
            finally:
                self._depth -= 1
            return
        with self.exclusive():
            self.conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            else:
                self.conn.execute("COMMIT")
            finally:
                self._depth = 0

    def close(self) -> None:
        self.conn.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
