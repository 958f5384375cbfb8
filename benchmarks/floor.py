"""The write floor: the rows an import produced, written by the plainest fast means.

An import cannot be faster than writing its own result. This module takes the rows an
import left in a database (every catalog table and the listens, ids included) and
writes exactly those rows into a fresh copy of Koito's schema, in one transaction:

* SQLite: ``executemany`` per table, WAL, foreign keys on (as Koito opens the file);
* PostgreSQL: binary ``COPY`` per table, Koito's indexes and foreign keys in place.

The rows are in memory before the clock starts; no interpreter start, no parsing, no
matching. Only the writing is timed (schema creation is setup), so the floor is a
lower bound of what any importer of the same rows could do on this machine, and an
import's time divided by it says how much the rest of the work costs.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from koito_import import schema

#: Koito's catalog tables in an order their foreign keys accept, with the columns an
#: import fills (the other columns keep their defaults in both).
TABLES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("artists", ("id", "musicbrainz_id", "image", "image_source")),
    ("artist_aliases", ("artist_id", "alias", "source", "is_primary")),
    ("releases", ("id", "musicbrainz_id", "image", "image_source", "various_artists")),
    ("release_aliases", ("release_id", "alias", "source", "is_primary")),
    ("artist_releases", ("artist_id", "release_id", "is_primary")),
    ("tracks", ("id", "musicbrainz_id", "release_id", "duration")),
    ("track_aliases", ("track_id", "alias", "source", "is_primary")),
    ("artist_tracks", ("artist_id", "track_id", "is_primary")),
    ("listens", ("track_id", "listened_at", "user_id", "client")),
)

Rows = dict[str, list[tuple[Any, ...]]]


def read_rows(conn: Any) -> Rows:
    """Every row an import wrote, by table, from a sqlite3 or psycopg connection."""
    out: Rows = {}
    for table, columns in TABLES:
        out[table] = [
            tuple(r) for r in conn.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall()
        ]
    return out


def row_count(rows: Rows) -> int:
    return sum(len(v) for v in rows.values())


def sqlite_schema(path: str) -> None:
    """A fresh Koito SQLite database at ``path`` (setup, not timed)."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        schema.prepare_sqlite(conn)
    finally:
        conn.close()


def write_sqlite(path: str, rows: Rows) -> None:
    """The SQLite floor: one transaction of executemany, as Koito opens the file."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("BEGIN IMMEDIATE")
        for table, columns in TABLES:
            marks = ", ".join("?" * len(columns))
            conn.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})", rows[table]
            )
        conn.execute("COMMIT")
    finally:
        conn.close()


def postgres_schema(url: str) -> None:
    """Koito's schema in a fresh PostgreSQL database (setup, not timed)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        schema.prepare_postgres(conn)


#: PostgreSQL's types of the columns in ``TABLES``, for binary COPY.
_PG_TYPES = {
    "id": "int4",
    "artist_id": "int4",
    "release_id": "int4",
    "track_id": "int4",
    "user_id": "int4",
    "duration": "int4",
    "musicbrainz_id": "uuid",
    "image": "uuid",
    "image_source": "text",
    "alias": "text",
    "source": "text",
    "client": "text",
    "is_primary": "bool",
    "various_artists": "bool",
    "listened_at": "timestamptz",
}


def write_postgres(url: str, rows: Rows) -> None:
    """The PostgreSQL floor: one transaction of binary COPY, Koito's indexes and keys on."""
    import psycopg

    with psycopg.connect(url) as conn, conn.cursor() as cur:
        for table, columns in TABLES:
            with cur.copy(
                f"COPY {table} ({', '.join(columns)}) FROM STDIN (FORMAT BINARY)"
            ) as copy:
                copy.set_types([_PG_TYPES[c] for c in columns])
                for row in rows[table]:
                    copy.write_row(row)
        conn.commit()
