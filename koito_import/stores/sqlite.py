"""The embedded default: a Koito SQLite database file.

Opened the way Koito opens it (WAL, foreign keys on, busy timeout 5 s) so that Koito can
keep running beside an import; the connection runs in autocommit mode and transactions
are explicit (``BEGIN IMMEDIATE`` takes the write lock up front instead of failing midway).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from koito_import import schema
from koito_import.errors import DatabaseError
from koito_import.stores.base import Store


class SqliteStore(Store):
    dialect = "sqlite"

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

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self.conn.executemany(sql, rows)

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
