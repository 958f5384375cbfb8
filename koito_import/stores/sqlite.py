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
import shutil
import sqlite3
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson

from koito_import import schema
from koito_import.errors import DatabaseError
from koito_import.stores.base import Store
from koito_import.stores.bulkwrite import BulkWriter

#: Beside ``koito.db``: the file koito-import writers lock (see the module docstring).
LOCK_SUFFIX = "-import-lock"


def snapshot_copy(path: str | Path, dest: str | Path) -> None:
    """Copy a database file consistently, a running Koito's WAL included (a dry run's
    scratch copy): SQLite's backup API through a read-only connection, which never
    creates a missing file. A file that is not a database is copied as it is, so that the
    schema check names what is wrong with it."""
    try:
        src = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
        try:
            with sqlite3.connect(dest) as dst:
                src.backup(dst)
        finally:
            src.close()
    except sqlite3.DatabaseError:
        shutil.copyfile(path, dest)


def remove_database(path: str | Path) -> None:
    """Remove a database file and everything SQLite and koito-import keep beside it."""
    for suffix in ("", "-wal", "-shm", "-journal", LOCK_SUFFIX):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


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

    @classmethod
    def open(cls, location: str, *, read_only: bool = False) -> SqliteStore:
        # A SQLite dry run works on a scratch copy (``cli``): nothing to do here.
        return cls(location)

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

    def bulk_writer(self) -> SqliteBulkWriter:
        return SqliteBulkWriter(self, self.conn)

    def close(self) -> None:
        self.conn.close()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


#: The SQLite page cache the import connection gets while a bulk run works (docs/write-floors.md:
#: the default 2 MB cache halves SQLite's insert rate for large imports). 32 MB: at 1M
#: listens of a grown catalog (a 145 MB database) 96 MB took the same time within noise
#: for 38 MB more peak RSS; those runs in fact compared 96 MB with the store's own 64 MB
#: (the import only ever raised the cache then). Set to 32 MB in both directions, the
#: same file in one run: 52.6 s and 358 MB peak against 49.0 s and 388 MB with 64 MB
#: (single runs, within the noise of time). Negative = KiB.
SQLITE_IMPORT_CACHE_KIB = 32 * 1024


class SqliteBulkWriter(BulkWriter):
    """SQLite: JSON-array set parameters, executemany inside the held write transaction."""

    def __init__(self, store: Store, conn: sqlite3.Connection) -> None:
        super().__init__(store, conn)
        self._saved_cache: int | None = None
        self._saved_checkpoint: int | None = None
        self._next_id: dict[str, int] = {}
        self._reader: _SnapshotReader | None = None

    ordered_join = "CROSS JOIN"

    def in_values(self, column: str, values: Collection[Any], kind: str) -> tuple[str, Any]:
        # One parameter for any number of values; json_each yields TEXT for JSON strings
        # and INTEGER for JSON integers, so comparisons stay exact and case-sensitive.
        return f"{column} IN (SELECT value FROM json_each(?))", orjson.dumps(list(values)).decode()

    def list_source(self, alias: str, values: Collection[Any], kind: str) -> tuple[str, Any]:
        return f"json_each(?) AS {alias}", orjson.dumps(list(values)).decode()

    def begin(self) -> None:
        self._next_id = {}
        # Checkpoints run between the run's transactions (``idle``), not inside COMMIT:
        # a run in pieces commits a few times a second and each commit would copy the
        # WAL back (measured: 0.3 s of 7.8 s at 300k listens), while the pause between
        # transactions would go unused.
        (self._saved_checkpoint,) = self.conn.execute("PRAGMA wal_autocheckpoint").fetchone()
        self.conn.execute("PRAGMA wal_autocheckpoint = 0")
        (current,) = self.conn.execute("PRAGMA cache_size").fetchone()
        wanted = -SQLITE_IMPORT_CACHE_KIB
        # Negative values are KiB, positive are pages. Set in both directions: the
        # store's own default (64 MB) is larger than the import's, and the import's
        # size is what the memory target was measured with.
        if current != wanted:
            self._saved_cache = current
            self.conn.execute(f"PRAGMA cache_size = {wanted}")

    def refresh(self) -> None:
        # Another writer may have added rows since the previous transaction.
        self._next_id = {}

    def idle(self) -> None:
        # PASSIVE: copies what it can without waiting for, or blocking, any writer.
        self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()

    def end(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._saved_checkpoint is not None:
            self.conn.execute(f"PRAGMA wal_autocheckpoint = {int(self._saved_checkpoint)}")
            self._saved_checkpoint = None
            if not self.store.in_transaction:
                self.idle()
        if self._saved_cache is not None:
            self.conn.execute(f"PRAGMA cache_size = {self._saved_cache}")
            self._saved_cache = None

    def allocate_ids(self, table: str, count: int) -> list[int]:
        # The store holds BEGIN IMMEDIATE, so nobody else can insert until we commit;
        # Koito's tables use plain INTEGER PRIMARY KEY (no AUTOINCREMENT), whose next
        # rowid is max(rowid) + 1: exactly the ids the per-listen path would get. The
        # maximum is read once per transaction: rows of ids handed out may not be
        # written yet.
        if count == 0:
            return []
        top = self._next_id.get(table)
        if top is None:
            (top,) = self.conn.execute(f"SELECT coalesce(max(id), 0) + 1 FROM {table}").fetchone()
        self._next_id[table] = top + count
        return list(range(top, top + count))

    #: Rows per JSON parameter (bounds the size of one statement's parameter).
    JSON_ROWS = 100_000

    def _load(
        self,
        table: str,
        columns: Sequence[str],
        rows: Sequence[tuple[Any, ...]],
        tail: str = "",
        extra: Sequence[tuple[str, str]] = (),
    ) -> None:
        """INSERT ... SELECT from one JSON array parameter per chunk of rows.

        Measured ~20-30% faster than executemany (no per-row parameter binding from
        Python); JSON true/false/null arrive as 1/0/NULL, as sqlite3 stores bools/None.
        ``extra`` adds constant (column, SQL) pairs; ``WHERE true`` lets an upsert
        clause follow the SELECT unambiguously.
        """
        names = [*columns, *(c for c, _ in extra)]
        values = [f"json_extract(value, '$[{i}]')" for i in range(len(columns))]
        values += [v for _, v in extra]
        sql = (
            f"INSERT INTO {table} ({', '.join(names)}) SELECT {', '.join(values)} "
            f"FROM json_each(?) WHERE true {tail}"
        )
        for start in range(0, len(rows), self.JSON_ROWS):
            chunk = rows[start : start + self.JSON_ROWS]
            self.conn.execute(sql, (orjson.dumps(chunk).decode(),))

    def insert_new(
        self, table: str, columns: Sequence[str], types: Sequence[str], rows: list[tuple[Any, ...]]
    ) -> None:
        if rows:
            self._load(table, columns, rows)

    def insert_ignore(
        self, table: str, columns: Sequence[str], types: Sequence[str], rows: list[tuple[Any, ...]]
    ) -> None:
        if rows:
            self._load(table, columns, rows, "ON CONFLICT DO NOTHING")

    def set_column(self, table: str, column: str, kind: str, rows: list[tuple[int, Any]]) -> None:
        if rows:
            self.conn.executemany(
                f"UPDATE {table} SET {column} = ? WHERE id = ?", [(v, i) for i, v in rows]
            )

    def listens_at(self, times: Collection[int], user_id: int) -> list[tuple[int, int]]:
        return _listens_at(self.conn, times, user_id)

    def snapshot_reader(self) -> _SnapshotReader | None:
        if self._reader is None:
            path = str(getattr(self.store, "path", ""))
            if not path or path == ":memory:" or path.startswith("file:"):
                return None
            self._reader = _SnapshotReader(path)
        return self._reader

    def insert_listens(
        self, rows: list[tuple[int, int, str | None]], user_id: int, *, new_tracks: bool = False
    ) -> int:
        if not rows:
            return 0
        before = self.conn.total_changes
        self._load(
            "listens",
            ("track_id", "listened_at", "client"),
            rows,
            "ON CONFLICT DO NOTHING",
            extra=(("user_id", str(int(user_id))),),
        )
        return self.conn.total_changes - before


def _listens_at(
    conn: sqlite3.Connection, times: Collection[int], user_id: int
) -> list[tuple[int, int]]:
    return conn.execute(
        # ``+l.user_id``: without it SQLite walks the user's index, i.e. every listen
        # of the user for every second asked (minutes for a re-import of 49k).
        "SELECT l.listened_at, l.track_id FROM json_each(?) AS tl "
        "CROSS JOIN listens l ON l.listened_at = tl.value WHERE +l.user_id = ?",
        (orjson.dumps(sorted(times)).decode(), user_id),
    ).fetchall()


class _SnapshotReader:
    """A read-only second connection: it reads while the import's own connection writes.

    In WAL mode a reader never waits for the writer; each statement sees the last
    commit. The bulk path uses it only for the catalog's slice queries, whose answers
    need not include the open transaction's rows (the catalog holds those).
    """

    def __init__(self, path: str) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA query_only = 1")
        self.conn.execute("PRAGMA busy_timeout = 5000")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        return self.conn.execute(sql, params)

    def listens_at(self, times: Collection[int], user_id: int) -> list[tuple[int, int]]:
        return _listens_at(self.conn, times, user_id)

    def allocate_ids(self, table: str, count: int) -> list[int] | None:
        """None: SQLite's ids come from the write transaction (``SqliteBulkWriter``)."""
        return None

    def close(self) -> None:
        self.conn.close()
