"""Dialect-specific set queries and bulk writes for the bulk path.

The bulk path reads a slice of the catalog with a handful of set queries and writes
everything it resolved with a few bulk statements instead of one statement per row.
The two backends differ in how a list becomes a query parameter and in the fastest way
to load rows, so those few operations live here, behind one small interface:

* SQLite: a list travels as one JSON array (``json_each(?)``), so a set query has one
  parameter however long the list is (no 999-variable limit, no chunking); rows go in
  with ``executemany`` in the transaction the store already holds (``BEGIN IMMEDIATE``),
  which is as fast as SQLite loads rows.
* PostgreSQL: a list is one array parameter (``= ANY(%s::type[])``); new entity rows go
  in with binary ``COPY`` (explicit ids, reserved from the identity sequences first, so
  nothing has to call setval and a Koito running beside the import never collides);
  listens are staged with ``COPY`` into a temporary table and moved with one
  ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``, because COPY itself cannot skip the
  listens the database already holds.

Column types use PostgreSQL's names (``int4``, ``int8``, ``text``, ``uuid``, ``bool``);
SQLite ignores them.
"""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Collection, Sequence
from typing import Any

import orjson

from koito_import.stores.base import Store

#: PostgreSQL array types for set-query parameters, by value kind.
_PG_ARRAY = {"int": "int[]", "text": "text[]", "uuid": "uuid[]"}
#: unnest() element types for staged inserts and updates.
_PG_SCALAR = {"int4": "int", "int8": "bigint", "text": "text", "uuid": "uuid", "bool": "bool"}

#: The SQLite page cache the import connection gets while a bulk run writes (PERF-NOTES:
#: the default cache halves SQLite's insert rate for large imports). Negative = KiB.
SQLITE_IMPORT_CACHE_KIB = 256 * 1024


class BulkWriter(ABC):
    """Set queries and bulk writes for one store; ``begin``/``end`` bracket a run."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.conn: Any = getattr(store, "conn")  # noqa: B009 - both stores expose it

    @abstractmethod
    def in_values(self, column: str, values: Collection[Any], kind: str) -> tuple[str, Any]:
        """SQL testing ``column`` against a list (kind ``int``/``text``/``uuid``), and its parameter."""

    def begin(self) -> None:
        """Per-run setup, called inside the run's transaction before anything else."""

    def end(self) -> None:
        """Undo per-run connection settings (called whether the run failed or not)."""

    @abstractmethod
    def allocate_ids(self, table: str, count: int) -> list[int]:
        """``count`` fresh ids for ``table``, ascending, as Koito's own inserts would get them."""

    @abstractmethod
    def insert_new(
        self, table: str, columns: Sequence[str], types: Sequence[str], rows: list[tuple[Any, ...]]
    ) -> None:
        """Insert rows that cannot conflict (new entities with fresh ids and their rows)."""

    @abstractmethod
    def insert_ignore(
        self, table: str, columns: Sequence[str], types: Sequence[str], rows: list[tuple[Any, ...]]
    ) -> None:
        """Insert rows, skipping those whose key exists (links between existing entities)."""

    @abstractmethod
    def set_column(self, table: str, column: str, kind: str, rows: list[tuple[int, Any]]) -> None:
        """``UPDATE table SET column = value WHERE id = id`` for each (id, value); value may be None."""

    @abstractmethod
    def upsert_lookups(self, rows: list[tuple[str, int, int, int]]) -> None:
        """Write (lookup_key, artist_id, album_id, track_id) rows, replacing existing keys."""

    @abstractmethod
    def insert_listens(self, rows: list[tuple[int, int, str]], user_id: int) -> int:
        """Insert (track_id, unix seconds, client) listens not yet present; returns how many."""


class SqliteBulkWriter(BulkWriter):
    """SQLite: JSON-array set parameters, executemany inside the held write transaction."""

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self._saved_cache: int | None = None

    def in_values(self, column: str, values: Collection[Any], kind: str) -> tuple[str, Any]:
        # One parameter for any number of values; json_each yields TEXT for JSON strings
        # and INTEGER for JSON integers, so comparisons stay exact and case-sensitive.
        return f"{column} IN (SELECT value FROM json_each(?))", orjson.dumps(list(values)).decode()

    def begin(self) -> None:
        (current,) = self.conn.execute("PRAGMA cache_size").fetchone()
        wanted = -SQLITE_IMPORT_CACHE_KIB
        # Negative values are KiB, positive are pages; only ever make the cache larger.
        if current < 0 and current > wanted:
            self._saved_cache = current
            self.conn.execute(f"PRAGMA cache_size = {wanted}")

    def end(self) -> None:
        if self._saved_cache is not None:
            self.conn.execute(f"PRAGMA cache_size = {self._saved_cache}")
            self._saved_cache = None

    def allocate_ids(self, table: str, count: int) -> list[int]:
        # The store holds BEGIN IMMEDIATE, so nobody else can insert until we commit;
        # Koito's tables use plain INTEGER PRIMARY KEY (no AUTOINCREMENT), whose next
        # rowid is max(rowid) + 1: exactly the ids the per-listen path would get.
        if count == 0:
            return []
        (top,) = self.conn.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()
        return list(range(top + 1, top + 1 + count))

    def insert_new(
        self, table: str, columns: Sequence[str], types: Sequence[str], rows: list[tuple[Any, ...]]
    ) -> None:
        if rows:
            marks = ", ".join("?" * len(columns))
            self.conn.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows
            )

    def insert_ignore(
        self, table: str, columns: Sequence[str], types: Sequence[str], rows: list[tuple[Any, ...]]
    ) -> None:
        if rows:
            marks = ", ".join("?" * len(columns))
            self.conn.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) "
                "ON CONFLICT DO NOTHING",
                rows,
            )

    def set_column(self, table: str, column: str, kind: str, rows: list[tuple[int, Any]]) -> None:
        if rows:
            self.conn.executemany(
                f"UPDATE {table} SET {column} = ? WHERE id = ?", [(v, i) for i, v in rows]
            )

    def upsert_lookups(self, rows: list[tuple[str, int, int, int]]) -> None:
        if rows:
            self.conn.executemany(
                "INSERT INTO track_lookup (lookup_key, artist_id, album_id, track_id) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (lookup_key) DO UPDATE SET "
                "artist_id = excluded.artist_id, album_id = excluded.album_id, "
                "track_id = excluded.track_id",
                rows,
            )

    def insert_listens(self, rows: list[tuple[int, int, str]], user_id: int) -> int:
        if not rows:
            return 0
        before = self.conn.total_changes
        self.conn.executemany(
            "INSERT INTO listens (track_id, listened_at, user_id, client) "
            f"VALUES (?, ?, {int(user_id)}, ?) ON CONFLICT DO NOTHING",
            rows,
        )
        return self.conn.total_changes - before


class PostgresBulkWriter(BulkWriter):
    """PostgreSQL: array parameters, binary COPY, a staged upsert for listens."""

    _STAGE = "koito_import_listens"

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self._staged = False

    def in_values(self, column: str, values: Collection[Any], kind: str) -> tuple[str, Any]:
        return f"{column} = ANY(?::{_PG_ARRAY[kind]})", list(values)

    def begin(self) -> None:
        # Dropped at commit (or with a rolled-back transaction): nothing lingers.
        self.conn.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {self._STAGE} "
            "(track_id int4, t int8, client text) ON COMMIT DROP"
        )
        self._staged = True

    def allocate_ids(self, table: str, count: int) -> list[int]:
        # nextval() is what Koito's own inserts use, so reserving ids through it is safe
        # with a Koito writing at the same time, and leaves the sequence where it belongs
        # (COPY with explicit ids alone would not advance it).
        if count == 0:
            return []
        rows = self.conn.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
            (table, count),
        ).fetchall()
        return sorted(r[0] for r in rows)

    @staticmethod
    def _binary_rows(types: Sequence[str], rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """Binary COPY wants uuid.UUID objects for uuid columns; the catalog keeps str."""
        positions = [i for i, t in enumerate(types) if t == "uuid"]
        if not positions:
            return rows
        out = []
        for row in rows:
            values = list(row)
            for i in positions:
                if values[i] is not None:
                    values[i] = uuid.UUID(values[i])
            out.append(tuple(values))
        return out

    def _copy(self, table: str, columns: Sequence[str], types: Sequence[str], rows: list) -> None:
        with self.conn.cursor() as cur, cur.copy(
            f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(list(types))
            for row in self._binary_rows(types, rows):
                copy.write_row(row)

    def insert_new(
        self, table: str, columns: Sequence[str], types: Sequence[str], rows: list[tuple[Any, ...]]
    ) -> None:
        # COPY writes the given ids even into GENERATED ALWAYS identity columns.
        if rows:
            self._copy(table, columns, types, rows)

    def insert_ignore(
        self, table: str, columns: Sequence[str], types: Sequence[str], rows: list[tuple[Any, ...]]
    ) -> None:
        if not rows:
            return
        arrays = ", ".join(f"%s::{_PG_SCALAR[t]}[]" for t in types)
        self.conn.execute(
            f"INSERT INTO {table} ({', '.join(columns)}) SELECT * FROM unnest({arrays}) "
            "ON CONFLICT DO NOTHING",
            [list(col) for col in zip(*rows)],
        )

    def set_column(self, table: str, column: str, kind: str, rows: list[tuple[int, Any]]) -> None:
        if not rows:
            return
        ids = [i for i, _ in rows]
        values = [v for _, v in rows]
        self.conn.execute(
            f"UPDATE {table} SET {column} = v.value FROM unnest(%s::int[], "
            f"%s::{_PG_SCALAR[kind]}[]) AS v(id, value) WHERE {table}.id = v.id",
            (ids, values),
        )

    def upsert_lookups(self, rows: list[tuple[str, int, int, int]]) -> None:
        if not rows:
            return
        keys, artists, albums, tracks = (list(c) for c in zip(*rows))
        self.conn.execute(
            "INSERT INTO track_lookup (lookup_key, artist_id, album_id, track_id) "
            "SELECT * FROM unnest(%s::text[], %s::int[], %s::int[], %s::int[]) "
            "ON CONFLICT (lookup_key) DO UPDATE SET artist_id = excluded.artist_id, "
            "album_id = excluded.album_id, track_id = excluded.track_id",
            (keys, artists, albums, tracks),
        )

    def insert_listens(self, rows: list[tuple[int, int, str]], user_id: int) -> int:
        if not rows:
            return 0
        if not self._staged:
            self.begin()
        self.conn.execute(f"TRUNCATE {self._STAGE}")
        self._copy(self._STAGE, ("track_id", "t", "client"), ("int4", "int8", "text"), rows)
        # Epoch integers converted in SQL: faster than sending datetimes (PERF-NOTES).
        cur = self.conn.execute(
            "INSERT INTO listens (track_id, listened_at, user_id, client) "
            f"SELECT track_id, to_timestamp(t), %s, client FROM {self._STAGE} "
            "ON CONFLICT DO NOTHING",
            (user_id,),
        )
        return cur.rowcount


def bulk_writer(store: Store) -> BulkWriter:
    """The writer for this store's dialect."""
    if store.dialect == "postgresql":
        return PostgresBulkWriter(store)
    if store.dialect == "sqlite":
        return SqliteBulkWriter(store)
    raise ValueError(f"no bulk writer for dialect {store.dialect!r}")
