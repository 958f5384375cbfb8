"""A Koito PostgreSQL database (Koito's backend until 2026-04), through psycopg 3.

Plain SQL only — no server-side functions of our own, no assumption of a local server —
so the same code runs against a distributed PostgreSQL. The connection is in autocommit
mode; ``transaction()`` opens a real transaction when the work needs one.
"""

from __future__ import annotations

import re
import struct
import uuid
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from functools import lru_cache
from typing import Any

import psycopg

from koito_import import schema
from koito_import.errors import DatabaseError
from koito_import.stores.base import Store
from koito_import.stores.bulkwrite import BulkWriter


def redact(url: str) -> str:
    """The URL without its password, for messages (also when it does not parse)."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.Error:
        # Keep what is certainly not secret: the scheme and the user name.
        m = re.match(r"(postgres(?:ql)?://)([^:@/?#\[]*)", url)
        user = m.group(2) if m and "@" in url else ""
        return f"postgresql://{user}@…" if user else "the PostgreSQL database"
    info.pop("password", None)
    host = info.get("host", "localhost")
    return f"postgresql://{info.get('user', '')}@{host}/{info.get('dbname', '')}"


#: The advisory lock every koito-import writer holds for its transaction ("KoitoW").
WRITER_LOCK_KEY = 0x4B6F69746F57


class PostgresStore(Store):
    dialect = "postgresql"
    listen_time_sql = "to_timestamp(?)"
    listen_epoch_sql = "CAST(extract(epoch FROM listened_at) AS bigint)"
    epoch_sql = "CAST(extract(epoch FROM {}) AS bigint)"

    @staticmethod
    def client_value(client: str) -> str | None:
        return client or None

    def __init__(self, url: str, *, read_only: bool = False) -> None:
        """``read_only``: everything, Koito's schema for an empty database included, happens
        inside one transaction that ``close`` rolls back (a dry run writes nothing)."""
        self.display_name = redact(url)
        self._read_only = read_only
        self._url = url
        try:
            psycopg.conninfo.conninfo_to_dict(url)
        except psycopg.Error:
            # psycopg's message may quote the URL, password included: say it ourselves.
            raise DatabaseError(
                f"{self.display_name}: not a valid PostgreSQL URL (a password with '%', '@' "
                "or '/' must be percent-encoded)"
            ) from None
        try:
            self.conn = psycopg.connect(url, autocommit=True)
        except psycopg.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise DatabaseError(f"cannot connect to {self.display_name}: {first}") from exc
        try:
            if read_only:
                # psycopg's own transactions then nest as savepoints inside this one.
                self.conn.execute("BEGIN")
            self.created = schema.prepare_postgres(self.conn) == "created"
        except BaseException:
            self.conn.close()
            raise

    @classmethod
    def open(cls, location: str, *, read_only: bool = False) -> PostgresStore:
        return cls(location, read_only=read_only)

    @staticmethod
    def redact(location: str) -> str:
        return redact(location)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        return self.conn.execute(_placeholders(sql), params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self.conn.cursor() as cur:
            cur.executemany(_placeholders(sql), rows)

    @property
    def in_transaction(self) -> bool:
        return self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE

    def wrote_in_transaction(self) -> bool:
        if not self.in_transaction:
            return False
        # A transaction gets its id with its first write (an advisory lock or a read
        # does not give it one); txid_current_if_assigned is in every PostgreSQL >= 10.
        (xid,) = self.conn.execute("SELECT txid_current_if_assigned()").fetchone()
        return xid is not None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A transaction that is the only koito-import writer of this database's catalog.

        The outermost one takes a transaction-level advisory lock before anything is
        read, so koito-import processes (runs and submits, any mix) write one after the
        other, each seeing the catalog the previous one committed: never a duplicate
        entity or listen, never a deadlock. SQLite gets the same from BEGIN IMMEDIATE.
        (Koito's own PostgreSQL server does not take this lock; docs/decisions.md.)
        """
        outermost = self.conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        with self.conn.transaction():
            if outermost:
                self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (WRITER_LOCK_KEY,))
            yield

    def bulk_writer(self) -> PostgresBulkWriter:
        return PostgresBulkWriter(self, self.conn)

    def second_connection(self) -> psycopg.Connection[Any] | None:
        """Another connection to the database, in autocommit mode, or None in a dry run
        (whose schema may exist only inside its own never-committed transaction) or when
        the server refuses one (``max_connections``: the run then reads on its own)."""
        if self._read_only:
            return None
        try:
            conn = psycopg.connect(self._url, autocommit=True)
        except psycopg.OperationalError:
            return None
        # No server-side prepared statements: see ``PostgresBulkWriter.begin``.
        conn.prepare_threshold = None
        return conn

    def close(self) -> None:
        if self._read_only and not self.conn.closed:
            self.conn.execute("ROLLBACK")
        self.conn.close()


#: PostgreSQL array types for set-query parameters, by value kind.
_PG_ARRAY = {"int": "int[]", "text": "text[]", "uuid": "uuid[]"}
#: unnest() element types for staged inserts and updates.
_PG_SCALAR = {"int4": "int", "int8": "bigint", "text": "text", "uuid": "uuid", "bool": "bool"}


class PostgresBulkWriter(BulkWriter):
    """PostgreSQL: array parameters, binary COPY, a staged upsert for listens that collide."""

    _STAGE = "koito_import_listens"

    def __init__(self, store: Store, conn: psycopg.Connection[Any]) -> None:
        super().__init__(store, conn)
        self._staged = False
        self._sequences: dict[str, str] = {}
        self._reader: _SnapshotReader | None = None
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
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        if self._saved_threshold is not None:
            (self.conn.prepare_threshold,) = self._saved_threshold
            self._saved_threshold = None

    def snapshot_reader(self) -> _SnapshotReader | None:
        if self._reader is None:
            conn = self.store.second_connection()
            if conn is None:
                return None
            self._reader = _SnapshotReader(conn, self._sequences)
        return self._reader

    def allocate_ids(self, table: str, count: int) -> list[int]:
        return _allocate_ids(self.conn, self._sequences, table, count)

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
        return _listens_at(self.conn, times, user_id)

    def insert_listens(
        self, rows: list[tuple[int, int, str | None]], user_id: int, *, new_tracks: bool = False
    ) -> int:
        if not rows:
            return 0
        if new_tracks:
            self._copy_listens(rows, user_id)
            return len(rows)
        # The run offers only listens the database did not hold when it matched them, so
        # a straight COPY nearly always fits, at about 60% of the staged upsert's cost
        # (1M grown: ~16 s of COPY against 26 s of staging and INSERT ... ON CONFLICT).
        # What can still collide is a row written since by a writer that takes no lock
        # of ours (Koito's server), or another user's listen of the same track and
        # second (the key leaves the user out): then the savepoint takes the COPY back
        # and the upsert below decides, row by row, exactly as before.
        try:
            with self.conn.transaction():
                self._copy_listens(rows, user_id)
            return len(rows)
        except psycopg.errors.UniqueViolation:
            pass
        if not self._staged:
            self.begin()
        self.conn.execute(f"TRUNCATE {self._STAGE}")
        self._copy(self._STAGE, ("track_id", "t", "client"), ("int4", "int8", "text"), rows)
        # Epoch integers converted in SQL: faster than sending datetimes (docs/write-floors.md).
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
        epoch seconds: no datetime objects (they cost more than the load) and no staging
        table (direct COPY is ~20% faster than staged; docs/write-floors.md).
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


def _allocate_ids(
    conn: psycopg.Connection[Any], sequences: dict[str, str], table: str, count: int
) -> list[int]:
    # nextval() is what Koito's own inserts use, so reserving ids through it is safe
    # with a Koito writing at the same time, and leaves the sequence where it belongs
    # (COPY with explicit ids alone would not advance it). Sequences are outside
    # transactions: any connection to the database reserves the same way.
    if count == 0:
        return []
    seq = sequences.get(table)
    if seq is None:
        (seq,) = conn.execute("SELECT pg_get_serial_sequence(%s, 'id')", (table,)).fetchone()
        sequences[table] = seq
    # One array instead of one row per id: ~7x faster for 15k ids.
    (ids,) = conn.execute(
        "SELECT array_agg(nextval(%s::regclass)) FROM generate_series(1, %s)", (seq, count)
    ).fetchone()
    return sorted(ids)


def _listens_at(
    conn: psycopg.Connection[Any], times: Collection[int], user_id: int
) -> list[tuple[int, int]]:
    return conn.execute(
        "SELECT CAST(extract(epoch FROM listened_at) AS bigint), track_id FROM listens "
        "WHERE user_id = %s AND listened_at = ANY("
        "SELECT to_timestamp(v) FROM unnest(%s::bigint[]) AS v)",
        (user_id, sorted(times)),
    ).fetchall()


@lru_cache(maxsize=1024)
def _placeholders(sql: str) -> str:
    """The project's ``?`` placeholders as psycopg's ``%s`` (statements repeat: cached)."""
    return sql.replace("?", "%s")


class _SnapshotReader:
    """A second connection that reads what is committed while the run's own one writes.

    Under MVCC a reader never waits for a writer, and in autocommit each statement sees
    the last commit: what the database held before the run's transaction, and what other
    writers committed since (as the run's own READ COMMITTED connection sees them). The
    run's uncommitted rows stay invisible; the catalog holds those in memory. It also
    reserves ids, which needs no transaction, so that matching never waits for the
    writer thread to hand the run's connection back.
    """

    def __init__(self, conn: psycopg.Connection[Any], sequences: dict[str, str]) -> None:
        self.conn = conn
        self._sequences = sequences

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        return self.conn.execute(_placeholders(sql), params)

    def listens_at(self, times: Collection[int], user_id: int) -> list[tuple[int, int]]:
        return _listens_at(self.conn, times, user_id)

    def allocate_ids(self, table: str, count: int) -> list[int] | None:
        return _allocate_ids(self.conn, self._sequences, table, count)

    def close(self) -> None:
        self.conn.close()
