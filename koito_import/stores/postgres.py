"""A Koito PostgreSQL database (Koito's backend until 2026-04), through psycopg 3.

Plain SQL only — no server-side functions of our own, no assumption of a local server —
so the same code runs against a distributed PostgreSQL. The connection is in autocommit
mode; ``transaction()`` opens a real transaction when the work needs one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from koito_import import schema
from koito_import.errors import DatabaseError
from koito_import.stores.base import Store


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
        self._sql: dict[str, str] = {}

    def _pg(self, sql: str) -> str:
        converted = self._sql.get(sql)
        if converted is None:
            converted = self._sql[sql] = sql.replace("?", "%s")
        return converted

    def execute(self, sql: str, params: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        return self.conn.execute(self._pg(sql), params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        with self.conn.cursor() as cur:
            cur.executemany(self._pg(sql), rows)

    @property
    def in_transaction(self) -> bool:
        return self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE

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

    def close(self) -> None:
        if self._read_only and not self.conn.closed:
            self.conn.execute("ROLLBACK")
        self.conn.close()
