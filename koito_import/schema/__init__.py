"""Make sure the target database is Koito's, creating Koito's schema when it is empty.

koito-import writes straight into Koito's tables, so before the first row it has to know
that the database really is a Koito database of a schema version it understands; writing
into anything else would corrupt someone's data. An empty database is the other case we
accept: there we lay down Koito's schema ourselves, statement for statement as Koito's own
goose migrations would, record the same goose rows and create the same default user, so
that Koito later starts on it as if it had created it and runs no migration again.

Both entry points work in one transaction and check before they write: every refusal
(``SchemaError``) leaves the database exactly as it was.

The DDL lives next to this module in ``sqlite.sql`` and ``postgres.sql``; see the header
of those files for their small section syntax.
"""

from __future__ import annotations

import os
import re
import secrets
import sqlite3
import time
from collections.abc import Iterable
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Literal

import bcrypt

from koito_import.errors import DatabaseError, SchemaError, UsageError

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "GOOSE_TABLE",
    "LEGACY_LOOKUP_TABLE",
    "POSTGRES_SCHEMA_VERSION",
    "SQLITE_SCHEMA_VERSION",
    "koito_tables",
    "koito_views",
    "prepare_postgres",
    "prepare_sqlite",
]

#: The goose version Koito's SQLite migrations end at (db/migrations_sqlite/002).
SQLITE_SCHEMA_VERSION = 2
#: The goose version Koito's PostgreSQL migrations end at (db/migrations/000005).
POSTGRES_SCHEMA_VERSION = 5

#: goose's bookkeeping table; its rows say which migrations Koito has applied.
GOOSE_TABLE = "goose_db_version"
#: koito-import's own cache table, the one table we add next to Koito's.
#: The lookup-cache table koito-import 0.1 added (dropped on open; see the "legacy" section).
LEGACY_LOOKUP_TABLE = "track_lookup"

_KOITO_TABLES = (
    "artists",
    "artist_aliases",
    "releases",
    "artist_releases",
    "release_aliases",
    "tracks",
    "artist_tracks",
    "track_aliases",
    "users",
    "api_keys",
    "sessions",
    "listens",
)
_KOITO_VIEWS = ("artists_with_name", "releases_with_title", "tracks_with_title")

# What Koito's engine uses when the environment leaves them unset (or empty).
_DEFAULT_USERNAME = "admin"
_DEFAULT_PASSWORD = "changeme"
# Go's bcrypt.DefaultCost; Go writes the "2a" variant of the hash.
_BCRYPT_COST = 10
# Koito validates the default user the same way as any user it saves.
_USERNAME_RE = re.compile(r"[a-zA-Z0-9_.-]{1,32}")
_PASSWORD_MIN, _PASSWORD_MAX = 8, 128
# The alphabet and length of Koito's generated API keys, and the label it gives the first.
_API_KEY_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-"
_API_KEY_LENGTH = 48
_API_KEY_LABEL = "Default"

# Serialises two koito-import runs that find the same empty PostgreSQL database, so that
# only one creates the schema; the other then sees "existing". Any fixed number will do.
_PG_LOCK_KEY = 0x4B6F69746F  # "Koito"

# SQLite result codes (sqlite3 only names them from Python 3.11 on).
_SQLITE_CORRUPT, _SQLITE_NOTADB = 11, 26

_SECTION_RE = re.compile(r"^-- @(section|migration) (\S+)[ \t]*$")

Prepared = Literal["created", "existing"]


def koito_tables() -> tuple[str, ...]:
    """Koito's table names (both backends have the same ones), for callers that verify a DB."""
    return _KOITO_TABLES


def koito_views() -> tuple[str, ...]:
    """Koito's view names: each entity joined with its primary alias."""
    return _KOITO_VIEWS


# --------------------------------------------------------------------------- SQL files


@cache
def _sections(dialect: str) -> dict[str, str]:
    """The named sections of ``<dialect>.sql``: "goose", "1", "2", ..., "legacy".

    Migrations are keyed by their number as text; they are applied in numeric order.
    """
    text = resources.files(__name__).joinpath(f"{dialect}.sql").read_text(encoding="utf-8")
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in text.splitlines():
        match = _SECTION_RE.match(line)
        if match:
            current = sections.setdefault(match.group(2), [])
        elif current is not None:
            current.append(line)
    return {name: "\n".join(lines) for name, lines in sections.items()}


def _migration_numbers(dialect: str) -> list[int]:
    return sorted(int(name) for name in _sections(dialect) if name.isdigit())


def _sqlite_statements(sql: str) -> list[str]:
    """Split a section into single statements (``sqlite3`` runs one per ``execute``).

    Leading comment lines are dropped so each statement starts at its keyword, like the
    statements goose hands to SQLite; ``complete_statement`` keeps a trigger body whole.
    """
    statements: list[str] = []
    buf: list[str] = []
    for line in sql.splitlines():
        if not buf and (not line.strip() or line.lstrip().startswith("--")):
            continue
        buf.append(line)
        joined = "\n".join(buf)
        if sqlite3.complete_statement(joined):
            statements.append(joined.strip())
            buf = []
    if any(line.strip() and not line.lstrip().startswith("--") for line in buf):
        raise RuntimeError(f"unterminated statement in the SQLite schema: {buf[0]!r}")
    return statements


# --------------------------------------------------------------------------- shared logic


def _goose_version(rows: Iterable[tuple[int, bool | int]]) -> int | None:
    """The current version from goose rows listed newest first, as goose computes it.

    The newest row of each version says whether it is applied or was rolled back; the
    first applied version found is the current one. None when nothing is applied.
    """
    rolled_back: set[int] = set()
    for version_id, is_applied in rows:
        if version_id in rolled_back:
            continue
        if is_applied:
            return int(version_id)
        rolled_back.add(version_id)
    return None


def _judge(
    where: str,
    *,
    tables: set[str],
    views: set[str],
    others: list[str],
    version: int | None,
    has_goose: bool,
    expected: int,
) -> Prepared | None:
    """Decide from what the database holds: None = empty, "existing", or SchemaError.

    ``others`` are non-table objects that no Koito schema has (used only to tell an
    empty database from a foreign one).
    """
    if not tables and not views and not others:
        return None
    if tables & (set(_KOITO_TABLES) | {GOOSE_TABLE}):
        known_tables = set(_KOITO_TABLES) | {GOOSE_TABLE, LEGACY_LOOKUP_TABLE}
        foreign = sorted(tables - known_tables)
        foreign += sorted(f"{name} (view)" for name in views - set(_KOITO_VIEWS))
    else:
        # Nothing of Koito's at all: whatever is there belongs to someone else (our own
        # lookup table alone cannot be told from a stranger's table of that name).
        foreign = sorted(tables) + sorted(f"{name} (view)" for name in views) + others
    if foreign:
        noun = "tables" if all(" (" not in item for item in foreign) else "objects"
        raise SchemaError(
            f"{where} has {noun} that are not Koito's ({', '.join(foreign)}); refusing to touch it"
        )
    if not has_goose:
        raise SchemaError(
            f"{where} has Koito's tables but no {GOOSE_TABLE} table, so its schema version "
            "is unknown; refusing to touch it"
        )
    if version is None:
        raise SchemaError(
            f"{where}: {GOOSE_TABLE} records no applied migration (expected version "
            f"{expected}); start Koito once on it, then import"
        )
    if version > expected:
        raise SchemaError(
            f"{where}: Koito schema version {version} is newer than this koito-import "
            f"knows ({expected}); upgrade koito-import"
        )
    if version < expected:
        raise SchemaError(
            f"{where}: Koito schema version {version} is older than this koito-import "
            f"expects ({expected}); start Koito once so that it upgrades the database, "
            "then import"
        )
    missing = [t for t in _KOITO_TABLES if t not in tables]
    missing += [f"{v} (view)" for v in _KOITO_VIEWS if v not in views]
    if missing:
        raise SchemaError(
            f"{where} is at Koito schema version {version} but lacks Koito's "
            f"{', '.join(missing)}; refusing to touch it"
        )
    return "existing"


def _default_user() -> tuple[str, bytes]:
    """Koito's first-start user from the environment: (lower-case username, bcrypt hash).

    Values Koito would reject make it exit on first start, so they are refused here
    too, before anything is written.
    """
    username = os.environ.get("KOITO_DEFAULT_USERNAME") or _DEFAULT_USERNAME
    password = os.environ.get("KOITO_DEFAULT_PASSWORD") or _DEFAULT_PASSWORD
    if not _USERNAME_RE.fullmatch(username):
        raise UsageError(
            f"KOITO_DEFAULT_USERNAME {username!r} is not a username Koito accepts "
            "(1 to 32 of the characters a-z A-Z 0-9 _ . -)"
        )
    if len(password) < _PASSWORD_MIN:
        raise UsageError(
            f"KOITO_DEFAULT_PASSWORD must be at least {_PASSWORD_MIN} characters long, "
            "as Koito requires"
        )
    secret = password[:_PASSWORD_MAX].encode("utf-8")  # Koito cuts at 128 characters
    if len(secret) > 72:
        raise UsageError(
            "KOITO_DEFAULT_PASSWORD is longer than 72 bytes, which bcrypt (and so Koito) refuses"
        )
    hashed = bcrypt.hashpw(secret, bcrypt.gensalt(rounds=_BCRYPT_COST, prefix=b"2a"))
    return username.lower(), hashed


def _api_key() -> str:
    """A fresh key drawn like Koito's GenerateRandomString: 48 characters, CSPRNG."""
    return "".join(secrets.choice(_API_KEY_ALPHABET) for _ in range(_API_KEY_LENGTH))


# --------------------------------------------------------------------------- SQLite


def _sqlite_where(conn: sqlite3.Connection) -> str:
    """The database file's path for messages (the connection does not keep it)."""
    try:
        for _seq, name, file in conn.execute("PRAGMA database_list"):
            if name == "main":
                return file or "the in-memory SQLite database"
    except sqlite3.Error:
        pass
    return "the SQLite database"


def _sqlite_failure(where: str, exc: sqlite3.Error) -> DatabaseError:
    """Turn an sqlite3 error into ours; a file that is not a database is a SchemaError."""
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
    text = str(exc)
    if code in (_SQLITE_NOTADB, _SQLITE_CORRUPT) or "not a database" in text:
        return SchemaError(f"{where} is not a SQLite database ({text}); refusing to touch it")
    return DatabaseError(f"{where}: {text}")


def _inspect_sqlite(conn: sqlite3.Connection, where: str) -> Prepared | None:
    objects = conn.execute(
        "SELECT type, name FROM sqlite_master WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
    ).fetchall()
    tables = {name for kind, name in objects if kind == "table"}
    views = {name for kind, name in objects if kind == "view"}
    others = sorted(f"{name} ({kind})" for kind, name in objects if kind == "trigger")
    version = None
    if GOOSE_TABLE in tables:
        try:
            rows = conn.execute(
                f"SELECT version_id, is_applied FROM {GOOSE_TABLE} ORDER BY id DESC"
            ).fetchall()
        except sqlite3.OperationalError as exc:
            raise SchemaError(
                f"{where}: {GOOSE_TABLE} is not goose's version table ({exc}); refusing to touch it"
            ) from exc
        version = _goose_version(rows)
    return _judge(
        where,
        tables=tables,
        views=views,
        others=others,
        version=version,
        has_goose=GOOSE_TABLE in tables,
        expected=SQLITE_SCHEMA_VERSION,
    )


def _create_sqlite(conn: sqlite3.Connection) -> None:
    """Replay goose's first run of Koito's SQLite migrations, then Koito's first start."""
    sections = _sections("sqlite")
    insert_version = f"INSERT INTO {GOOSE_TABLE} (version_id, is_applied) VALUES (?, ?)"
    for statement in _sqlite_statements(sections["goose"]):
        conn.execute(statement)
    conn.execute(insert_version, (0, 1))
    for number in _migration_numbers("sqlite"):
        for statement in _sqlite_statements(sections[str(number)]):
            conn.execute(statement)
        conn.execute(insert_version, (number, 1))
    username, hashed = _default_user()
    user_id = conn.execute(
        "INSERT INTO users (username, role, password) VALUES (?, 'admin', ?)",
        (username, hashed),
    ).lastrowid
    # SQLite keeps api_keys.created_at as unix seconds (Koito writes time.Now().Unix()).
    conn.execute(
        "INSERT INTO api_keys (key, user_id, created_at, label) VALUES (?, ?, ?, ?)",
        (_api_key(), user_id, int(time.time()), _API_KEY_LABEL),
    )


def prepare_sqlite(conn: sqlite3.Connection) -> Prepared:
    """Check (and, when empty, create) a Koito SQLite database; return what was found.

    "created": the database was empty and now holds Koito's schema at version
    ``SQLITE_SCHEMA_VERSION``, goose's rows and Koito's default user with one API key.
    "existing": it already was a Koito database at that version; the lookup table of
    koito-import 0.1 is dropped if there. Anything else raises ``SchemaError`` and
    writes nothing.

    ``conn`` must have no transaction open; it is used with explicit ``BEGIN IMMEDIATE``
    (taking the write lock before looking, so two runs cannot both create) and works
    both in autocommit mode (``isolation_level=None``) and in sqlite3's legacy mode.
    """
    where = _sqlite_where(conn)
    if conn.in_transaction:
        raise DatabaseError(f"{where}: cannot check the schema inside an open transaction")
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as exc:
        raise _sqlite_failure(where, exc) from exc
    try:
        state = _inspect_sqlite(conn, where)
        if state is None:
            _create_sqlite(conn)
        for statement in _sqlite_statements(_sections("sqlite")["legacy"]):
            conn.execute(statement)
        conn.execute("COMMIT")
    except BaseException as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        if isinstance(exc, sqlite3.Error):
            raise _sqlite_failure(where, exc) from exc
        raise
    return state or "created"


# --------------------------------------------------------------------------- PostgreSQL

# Objects of the current schema that are not part of an installed extension (pg_trgm
# brings functions, operators and types of its own; those do not make a database
# "non-empty"), and not implicit companions of another object (a table's row type, an
# array type, an identity sequence).
_PG_INVENTORY = """
WITH ns AS (SELECT oid FROM pg_namespace WHERE nspname = current_schema()),
ext AS (SELECT classid, objid FROM pg_depend WHERE deptype = 'e')
SELECT CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'view' WHEN 'S' THEN 'sequence'
                      WHEN 'c' THEN 'type' ELSE 'table' END, c.relname
  FROM pg_class c
 WHERE c.relnamespace IN (SELECT oid FROM ns)
   AND c.relkind IN ('r', 'p', 'f', 'v', 'm', 'S', 'c')
   AND (c.oid NOT IN (SELECT objid FROM ext WHERE classid = 'pg_class'::regclass))
   AND NOT (c.relkind = 'S' AND EXISTS (
        SELECT 1 FROM pg_depend d
         WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid
           AND d.deptype IN ('a', 'i')))
UNION ALL
SELECT 'function', p.proname
  FROM pg_proc p
 WHERE p.pronamespace IN (SELECT oid FROM ns)
   AND p.oid NOT IN (SELECT objid FROM ext WHERE classid = 'pg_proc'::regclass)
UNION ALL
SELECT 'type', t.typname
  FROM pg_type t
 WHERE t.typnamespace IN (SELECT oid FROM ns)
   AND t.typtype IN ('b', 'd', 'e', 'r', 'm')
   AND t.typcategory <> 'A'
   AND t.oid NOT IN (SELECT objid FROM ext WHERE classid = 'pg_type'::regclass)
"""


def _pg_where(conn: psycopg.Connection) -> str:
    info = conn.info
    return f"PostgreSQL database {info.dbname!r} on {info.host}"


def _inspect_postgres(conn: psycopg.Connection, where: str) -> Prepared | None:
    import psycopg

    schema = conn.execute("SELECT current_schema()").fetchone()
    if schema is None or schema[0] is None:
        raise SchemaError(f"{where}: no schema of search_path exists; refusing to touch it")
    objects = conn.execute(_PG_INVENTORY).fetchall()
    tables = {name for kind, name in objects if kind == "table"}
    views = {name for kind, name in objects if kind == "view"}
    others = sorted(f"{name} ({kind})" for kind, name in objects if kind not in ("table", "view"))
    version = None
    if GOOSE_TABLE in tables:
        try:
            with conn.transaction():  # a savepoint, so a failure here stays reportable
                rows = conn.execute(
                    f"SELECT version_id, is_applied FROM {GOOSE_TABLE} ORDER BY id DESC"
                ).fetchall()
        except psycopg.Error as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise SchemaError(
                f"{where}: {GOOSE_TABLE} is not goose's version table ({first}); "
                "refusing to touch it"
            ) from exc
        version = _goose_version(rows)
    return _judge(
        where,
        tables=tables,
        views=views,
        others=others,
        version=version,
        has_goose=GOOSE_TABLE in tables,
        expected=POSTGRES_SCHEMA_VERSION,
    )


def _create_postgres(conn: psycopg.Connection) -> None:
    """Replay goose's first run of Koito's PostgreSQL migrations, then Koito's first start."""
    sections = _sections("postgres")
    insert_version = f"INSERT INTO {GOOSE_TABLE} (version_id, is_applied) VALUES (%s, %s)"
    conn.execute(sections["goose"])
    conn.execute(insert_version, (0, True))
    for number in _migration_numbers("postgres"):
        # One multi-statement query per migration: no parameters, so psycopg uses the
        # simple-query protocol, which accepts several statements and $$ bodies as is.
        conn.execute(sections[str(number)])
        conn.execute(insert_version, (number, True))
    username, hashed = _default_user()
    row = conn.execute(
        "INSERT INTO users (username, password, role) VALUES (%s, %s, 'admin') RETURNING id",
        (username, hashed),
    ).fetchone()
    assert row is not None
    # created_at is left to its DEFAULT now() (timestamp without time zone, i.e. the
    # server's local time), as Koito's own INSERT on PostgreSQL does.
    conn.execute(
        "INSERT INTO api_keys (user_id, key, label) VALUES (%s, %s, %s)",
        (row[0], _api_key(), _API_KEY_LABEL),
    )


def prepare_postgres(conn: psycopg.Connection) -> Prepared:
    """Check (and, when empty, create) a Koito PostgreSQL database; return what was found.

    Same contract as ``prepare_sqlite`` for PostgreSQL at ``POSTGRES_SCHEMA_VERSION``.
    "Empty" means the current schema (normally ``public``) holds no table, view,
    sequence, function or type except what an installed extension such as pg_trgm
    brings. Runs in ``conn.transaction()``: its own transaction on an autocommit or idle
    connection, a savepoint inside one the caller has open.
    """
    import psycopg

    where = _pg_where(conn)
    try:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_PG_LOCK_KEY,))
            state = _inspect_postgres(conn, where)
            if state is None:
                _create_postgres(conn)
            conn.execute(_sections("postgres")["legacy"])
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatabaseError(f"{where}: {first}") from exc
    return state or "created"
