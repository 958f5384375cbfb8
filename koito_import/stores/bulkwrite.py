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

import struct
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
#: the default cache halves SQLite's insert rate for large imports). 96 MB: at 1M listens
#: (a 171 MB database) 256 MB was no faster than 128 MB and cost 20 MB more peak RSS;
#: since the writes run beside matching, 128 MB brought the peak to ~390 MB and 96 MB to
#: ~345 MB in the same time within noise (64 MB: ~1 s slower). Negative = KiB.
SQLITE_IMPORT_CACHE_KIB = 96 * 1024


class BulkWriter(ABC):
    """Set queries and bulk writes for one store; ``begin``/``end`` bracket a run."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.conn: Any = getattr(store, "conn")  # noqa: B009 - both stores expose it

    @abstractmethod
    def in_values(self, column: str, values: Collection[Any], kind: str) -> tuple[str, Any]:
        """SQL testing ``column`` against a list of ``kind`` (int/text/uuid) and its parameter."""

    #: Join keyword that keeps the written join order (SQLite: CROSS JOIN; PostgreSQL's
    #: planner needs no help and rejects CROSS JOIN ... ON).
    ordered_join = "JOIN"

    @abstractmethod
    def list_source(self, alias: str, values: Collection[Any], kind: str) -> tuple[str, Any]:
        """A FROM item ``alias`` whose one column ``value`` holds the list, and its parameter."""

    def begin(self) -> None:  # noqa: B027 - optional hook, most dialects need nothing
        """Per-run setup, called inside the run's transaction before anything else."""

    def end(self) -> None:  # noqa: B027 - optional hook
        """Undo per-run connection settings (called whether the run failed or not)."""

    def refresh(self) -> None:  # noqa: B027 - optional hook
        """Forget what was read of the database: a new transaction of the run begins."""

    def idle(self) -> None:  # noqa: B027 - optional hook
        """Housekeeping between two transactions of a run, while no lock is held."""

    def catalog_rows(self, limit: int) -> int | None:
        """The catalog's tracks, counted up to ``limit``, where slice queries scan tables.

        None where they go through indexes only (their cost does not grow with the
        catalog): the bulk path then resolves chunk by chunk whatever the catalog's size.
        """
        return None

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
        """``UPDATE table SET column = value WHERE id = ...`` per (id, value); value may be None."""

    @abstractmethod
    def listens_at(self, times: Collection[int], user_id: int) -> list[tuple[int, int]]:
        """(unix second, track id) of the user's listens at these seconds."""

    @abstractmethod
    def insert_listens(
        self, rows: list[tuple[int, int, str | None]], user_id: int, *, new_tracks: bool = False
    ) -> int:
        """Insert (track_id, unix seconds, client) listens not yet present; returns how many.

        ``new_tracks``: every row is of a track this run created (and no two rows share a
        track and second), so none can conflict and the fastest plain load is safe.
        """


class SqliteBulkWriter(BulkWriter):
    """SQLite: JSON-array set parameters, executemany inside the held write transaction."""

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self._saved_cache: int | None = None
        self._saved_checkpoint: int | None = None
        self._next_id: dict[str, int] = {}

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
        # Negative values are KiB, positive are pages; only ever make the cache larger.
        if current < 0 and current > wanted:
            self._saved_cache = current
            self.conn.execute(f"PRAGMA cache_size = {wanted}")

    def refresh(self) -> None:
        # Another writer may have added rows since the previous transaction.
        self._next_id = {}

    def idle(self) -> None:
        # PASSIVE: copies what it can without waiting for, or blocking, any writer.
        self.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()

    def end(self) -> None:
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
        return self.conn.execute(
            # ``+l.user_id``: without it SQLite walks the user's index, i.e. every listen
            # of the user for every second asked (minutes for a re-import of 49k).
            "SELECT l.listened_at, l.track_id FROM json_each(?) AS tl "
            "CROSS JOIN listens l ON l.listened_at = tl.value WHERE +l.user_id = ?",
            (orjson.dumps(sorted(times)).decode(), user_id),
        ).fetchall()

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


class PostgresBulkWriter(BulkWriter):
    """PostgreSQL: array parameters, binary COPY, a staged upsert for listens."""

    _STAGE = "koito_import_listens"

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        self._staged = False
        self._sequences: dict[str, str] = {}
        #: The connection's prepare_threshold while a run holds it (see ``begin``).
        self._saved_threshold: tuple[int | None] | None = None

    def in_values(self, column: str, values: Collection[Any], kind: str) -> tuple[str, Any]:
        return f"{column} = ANY(?::{_PG_ARRAY[kind]})", list(values)

    def list_source(self, alias: str, values: Collection[Any], kind: str) -> tuple[str, Any]:
        return f"unnest(?::{_PG_ARRAY[kind]}) AS {alias}(value)", list(values)

    def catalog_rows(self, limit: int) -> int | None:
        # Koito's PostgreSQL schema indexes aliases only with trigram GIN indexes, so
        # the slice queries by name and title scan the alias tables: their cost grows
        # with the catalog, not with the batch.
        (n,) = self.conn.execute(
            "SELECT count(*) FROM (SELECT 1 FROM tracks LIMIT %s) t", (limit,)
        ).fetchone()
        return int(n)

    def begin(self) -> None:
        # No server-side prepared statements during a run. psycopg prepares a statement
        # after 5 executions, and PostgreSQL may then settle on a generic plan; the slice
        # queries take arrays of a few hundred to tens of thousands of values against
        # tables that grow during the run, and a generic plan made at one size was ~4x
        # slower at another (1M listens into PostgreSQL: 22 s of slice queries instead
        # of 6). Planning each of them afresh costs well under a millisecond.
        self._saved_threshold = (self.conn.prepare_threshold,)
        self.conn.prepare_threshold = None
        # Dropped at commit (or with a rolled-back transaction): nothing lingers.
        self.conn.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {self._STAGE} "
            "(track_id int4, t int8, client text) ON COMMIT DROP"
        )
        self._staged = True

    def refresh(self) -> None:
        # The staging table went with the previous transaction's commit.
        self._staged = False

    def end(self) -> None:
        if self._saved_threshold is not None:
            (self.conn.prepare_threshold,) = self._saved_threshold
            self._saved_threshold = None

    def allocate_ids(self, table: str, count: int) -> list[int]:
        # nextval() is what Koito's own inserts use, so reserving ids through it is safe
        # with a Koito writing at the same time, and leaves the sequence where it belongs
        # (COPY with explicit ids alone would not advance it).
        if count == 0:
            return []
        seq = self._sequences.get(table)
        if seq is None:
            (seq,) = self.conn.execute(
                "SELECT pg_get_serial_sequence(%s, 'id')", (table,)
            ).fetchone()
            self._sequences[table] = seq
        # One array instead of one row per id: ~7x faster for 15k ids.
        (ids,) = self.conn.execute(
            "SELECT array_agg(nextval(%s::regclass)) FROM generate_series(1, %s)", (seq, count)
        ).fetchone()
        return sorted(ids)

    @staticmethod
    def _binary_rows(types: Sequence[str], rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """Binary COPY wants uuid.UUID objects for uuid columns; the catalog keeps str."""
        positions = [i for i, t in enumerate(types) if t == "uuid"]
        if not positions:
            return rows
        out = []
        for row in rows:
            if all(row[i] is None for i in positions):
                out.append(row)
                continue
            values = list(row)
            for i in positions:
                if values[i] is not None:
                    values[i] = uuid.UUID(values[i])
            out.append(tuple(values))
        return out

    def _copy(self, table: str, columns: Sequence[str], types: Sequence[str], rows: list) -> None:
        with (
            self.conn.cursor() as cur,
            cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)") as copy,
        ):
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
            [list(col) for col in zip(*rows, strict=True)],
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

    def listens_at(self, times: Collection[int], user_id: int) -> list[tuple[int, int]]:
        return self.conn.execute(
            "SELECT CAST(extract(epoch FROM listened_at) AS bigint), track_id FROM listens "
            "WHERE user_id = %s AND listened_at = ANY("
            "SELECT to_timestamp(v) FROM unnest(%s::bigint[]) AS v)",
            (user_id, sorted(times)),
        ).fetchall()

    def insert_listens(
        self, rows: list[tuple[int, int, str | None]], user_id: int, *, new_tracks: bool = False
    ) -> int:
        if not rows:
            return 0
        if new_tracks:
            self._copy_listens(rows, user_id)
            return len(rows)
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

    def _copy_listens(self, rows: list[tuple[int, int, str | None]], user_id: int) -> None:
        """COPY listens straight into the table, in PostgreSQL's binary format built here.

        timestamptz travels as int64 microseconds since 2000-01-01 UTC, computed from the
        epoch seconds: no datetime objects (PERF-NOTES: they cost more than the load)
        and no staging table (PERF-NOTES: direct COPY is ~20% faster than staged).
        """
        head = struct.Struct("!hiiiqii").pack  # 4 fields: int4 track, int8 time, int4 user
        null = struct.pack("!i", -1)
        clients: dict[str | None, bytes] = {}
        out = [_PGCOPY_HEADER]
        for track_id, t, client in rows:
            tail = clients.get(client)
            if tail is None:
                if client is None:
                    tail = null
                else:
                    data = client.encode()
                    tail = struct.pack("!i", len(data)) + data
                clients[client] = tail
            out.append(head(4, 4, track_id, 8, (t - _PG_EPOCH) * 1_000_000, 4, user_id))
            out.append(tail)
        out.append(_PGCOPY_TRAILER)
        with (
            self.conn.cursor() as cur,
            cur.copy(
                "COPY listens (track_id, listened_at, user_id, client) FROM STDIN (FORMAT BINARY)"
            ) as copy,
        ):
            copy.write(b"".join(out))


#: Binary COPY framing (PostgreSQL docs, "COPY ... Binary Format").
_PGCOPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
_PGCOPY_TRAILER = struct.pack("!h", -1)
#: 2000-01-01T00:00:00Z, PostgreSQL's timestamp origin, in Unix seconds.
_PG_EPOCH = 946_684_800


def bulk_writer(store: Store) -> BulkWriter:
    """The writer for this store's dialect."""
    if store.dialect == "postgresql":
        return PostgresBulkWriter(store)
    if store.dialect == "sqlite":
        return SqliteBulkWriter(store)
    raise ValueError(f"no bulk writer for dialect {store.dialect!r}")
