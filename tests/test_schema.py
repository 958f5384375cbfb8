"""koito_import.schema against real databases.

The reference snapshots in tests/data/koito_schema_*.json were taken from databases built
by replaying Koito's own migration files the way goose does (one transaction per
migration, goose's version table and rows). The dump functions below produce both the
snapshot and what the tests compare with it, so a created database has to match Koito's
structurally fact for fact: columns, keys, indexes, views, triggers, functions, goose rows.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import bcrypt
import psycopg
import pytest

from koito_import import schema
from koito_import.errors import SchemaError, UsageError

DATA = Path(__file__).resolve().parent / "data"
LOOKUP = schema.LEGACY_LOOKUP_TABLE


# --------------------------------------------------------------------------- dumps


def _rows(cursor: Any) -> list[list[Any]]:
    return [list(row) for row in cursor.fetchall()]


def dump_sqlite(conn: sqlite3.Connection) -> dict[str, Any]:
    """Koito's structural facts of a SQLite database (koito-import's own table left out)."""
    objects = _rows(
        conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master "
            "WHERE tbl_name <> ? ORDER BY type, name",
            (LOOKUP,),
        )
    )
    tables: dict[str, Any] = {}
    views: dict[str, Any] = {}
    for kind, name, _tbl, _sql in objects:
        if kind == "view":
            views[name] = _rows(conn.execute(f"PRAGMA table_info('{name}')"))
        if kind != "table":
            continue
        indexes = []
        for _seq, index, unique, origin, partial in conn.execute(f"PRAGMA index_list('{name}')"):
            columns = [c[2] for c in conn.execute(f"PRAGMA index_info('{index}')")]
            indexes.append([index, unique, origin, partial, columns])
        tables[name] = {
            "columns": _rows(conn.execute(f"PRAGMA table_info('{name}')")),
            "foreign_keys": _rows(conn.execute(f"PRAGMA foreign_key_list('{name}')")),
            "indexes": sorted(indexes),
        }
    return {
        "objects": objects,
        "tables": tables,
        "views": views,
        "goose": _rows(
            conn.execute("SELECT id, version_id, is_applied FROM goose_db_version ORDER BY id")
        ),
        "sqlite_sequence": _rows(conn.execute("SELECT name, seq FROM sqlite_sequence")),
    }


def dump_postgres(conn: psycopg.Connection) -> dict[str, Any]:
    """Koito's structural facts of a PostgreSQL database (koito-import's table left out)."""

    def q(sql: str) -> list[list[Any]]:
        return _rows(conn.execute(sql, (LOOKUP,)))

    return {
        "columns": q(
            """SELECT table_name, column_name, ordinal_position, data_type, udt_name,
                      is_nullable, column_default, is_identity, identity_generation
                 FROM information_schema.columns
                WHERE table_schema = current_schema() AND table_name <> %s
                ORDER BY table_name, ordinal_position"""
        ),
        "constraints": q(
            """SELECT c.conrelid::regclass::text, c.conname, c.contype,
                      pg_get_constraintdef(c.oid)
                 FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace
                WHERE n.nspname = current_schema() AND c.conrelid::regclass::text <> %s
                  AND c.contype <> 'n'  -- PostgreSQL 18+ only; is_nullable covers it
                ORDER BY 1, 2"""
        ),
        "indexes": q(
            """SELECT tablename, indexname, indexdef FROM pg_indexes
                WHERE schemaname = current_schema() AND tablename <> %s ORDER BY 1, 2"""
        ),
        "sequences": q(
            """SELECT sequencename, data_type::text, start_value, min_value, max_value,
                      increment_by, cycle, cache_size
                 FROM pg_sequences
                WHERE schemaname = current_schema() AND sequencename <> %s ORDER BY 1"""
        ),
        "views": q(
            """SELECT c.relname, pg_get_viewdef(c.oid) FROM pg_class c
                 JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = current_schema() AND c.relkind = 'v' AND c.relname <> %s
                ORDER BY 1"""
        ),
        "functions": q(
            """SELECT p.proname, pg_get_functiondef(p.oid) FROM pg_proc p
                 JOIN pg_namespace n ON n.oid = p.pronamespace
                WHERE n.nspname = current_schema() AND p.proname <> %s
                  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid
                                   AND d.classid = 'pg_proc'::regclass AND d.deptype = 'e')
                ORDER BY 1"""
        ),
        "triggers": q(
            """SELECT t.tgrelid::regclass::text, t.tgname, pg_get_triggerdef(t.oid)
                 FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
                 JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = current_schema() AND NOT t.tgisinternal AND c.relname <> %s
                ORDER BY 1, 2"""
        ),
        "extensions": q(
            """SELECT e.extname, n.nspname FROM pg_extension e
                 JOIN pg_namespace n ON n.oid = e.extnamespace
                WHERE e.extname <> %s ORDER BY 1"""
        ),
        "enums": q(
            """SELECT t.typname, array_agg(e.enumlabel::text ORDER BY e.enumsortorder)
                 FROM pg_type t JOIN pg_enum e ON e.enumtypid = t.oid
                 JOIN pg_namespace n ON n.oid = t.typnamespace
                WHERE n.nspname = current_schema() AND t.typname <> %s
                GROUP BY 1 ORDER BY 1"""
        ),
        "goose": _rows(
            conn.execute("SELECT id, version_id, is_applied FROM goose_db_version ORDER BY id")
        ),
    }


def _reference(dialect: str) -> dict[str, Any]:
    return json.loads((DATA / f"koito_schema_{dialect}.json").read_text(encoding="utf-8"))


def _normalised(dump: dict[str, Any]) -> dict[str, Any]:
    """The dump as it reads back from JSON (tuples become lists and so on)."""
    return json.loads(json.dumps(dump))


# --------------------------------------------------------------------------- SQLite


def _sqlite(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(str(path), isolation_level=None)


def _sqlite_created(path: Path) -> None:
    conn = _sqlite(path)
    try:
        assert schema.prepare_sqlite(conn) == "created"
    finally:
        conn.close()


def test_sqlite_created_schema_is_koitos(sqlite_path: Path) -> None:
    conn = _sqlite(sqlite_path)
    assert schema.prepare_sqlite(conn) == "created"
    dump = _normalised(dump_sqlite(conn))
    reference = _reference("sqlite")
    assert dump["goose"] == [[1, 0, 1], [2, 1, 1], [3, 2, 1]]
    for key in ("objects", "tables", "views", "goose", "sqlite_sequence"):
        assert dump[key] == reference[key], key
    tables = {name for kind, name, *_ in dump["objects"] if kind == "table"}
    assert set(schema.koito_tables()) == tables - {"goose_db_version", "sqlite_sequence"}
    conn.close()


def test_sqlite_default_user_and_api_key(sqlite_path: Path) -> None:
    conn = _sqlite(sqlite_path)
    schema.prepare_sqlite(conn)
    users = conn.execute("SELECT id, username, role, password FROM users").fetchall()
    assert len(users) == 1
    user_id, username, role, password = users[0]
    assert (user_id, username, role) == (1, "admin", "admin")
    assert isinstance(password, bytes) and password.startswith(b"$2a$10$")
    assert bcrypt.checkpw(b"changeme", password)
    keys = conn.execute("SELECT key, user_id, created_at, label FROM api_keys").fetchall()
    assert len(keys) == 1
    key, key_user, created_at, label = keys[0]
    assert (key_user, label) == (1, "Default")
    assert len(key) == 48 and set(key) <= set(schema._API_KEY_ALPHABET)
    assert isinstance(created_at, int) and created_at > 1_700_000_000
    conn.close()


#: The lookup table koito-import 0.1 created, as it created it.
LEGACY_SQLITE = """
CREATE TABLE track_lookup (
    lookup_key TEXT NOT NULL PRIMARY KEY,
    artist_id  INTEGER NOT NULL REFERENCES artists(id) ON DELETE CASCADE,
    album_id   INTEGER NOT NULL REFERENCES releases(id) ON DELETE CASCADE,
    track_id   INTEGER NOT NULL REFERENCES tracks(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL DEFAULT (unixepoch())
);
CREATE INDEX idx_track_lookup_track_id ON track_lookup(track_id);
"""


def test_sqlite_created_has_no_table_of_ours(sqlite_path: Path) -> None:
    conn = _sqlite(sqlite_path)
    schema.prepare_sqlite(conn)
    tables = {
        r[0]
        for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        if r[0] != "sqlite_sequence"
    }
    assert tables == set(schema._KOITO_TABLES) | {schema.GOOSE_TABLE}
    conn.close()


def test_sqlite_legacy_lookup_table_dropped(sqlite_path: Path) -> None:
    """A database koito-import 0.1 wrote loses its track_lookup (a name Koito may take)."""
    _sqlite_created(sqlite_path)
    conn = _sqlite(sqlite_path)
    conn.executescript(LEGACY_SQLITE)
    conn.execute("INSERT INTO artists (id) VALUES (7)")
    conn.execute("INSERT INTO releases (id) VALUES (1)")
    conn.execute("INSERT INTO tracks (id, release_id) VALUES (1, 1)")
    conn.execute(
        "INSERT INTO track_lookup (lookup_key, artist_id, album_id, track_id) VALUES ('k', 7, 1, 1)"
    )
    conn.commit()
    assert schema.prepare_sqlite(conn) == "existing"
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert "track_lookup" not in names and "idx_track_lookup_track_id" not in names
    assert conn.execute("SELECT id FROM artists").fetchall() == [(7,)]
    assert conn.execute("SELECT count(*) FROM tracks").fetchone()[0] == 1
    conn.close()


def test_sqlite_second_prepare_changes_nothing(sqlite_path: Path) -> None:
    _sqlite_created(sqlite_path)
    before = sqlite_path.read_bytes()
    conn = _sqlite(sqlite_path)
    assert schema.prepare_sqlite(conn) == "existing"
    assert conn.execute("SELECT count(*) FROM users").fetchone()[0] == 1
    assert conn.execute("SELECT count(*) FROM api_keys").fetchone()[0] == 1
    conn.close()
    assert sqlite_path.read_bytes() == before


def _refused(path: Path, *fragments: str) -> None:
    """prepare_sqlite refuses the file with a message naming ``fragments``, and writes nothing."""
    before = path.read_bytes()
    conn = _sqlite(path)
    with pytest.raises(SchemaError) as info:
        schema.prepare_sqlite(conn)
    assert not conn.in_transaction
    conn.close()
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message
    assert path.read_bytes() == before


def test_sqlite_foreign_table_refused(sqlite_path: Path) -> None:
    conn = _sqlite(sqlite_path)
    conn.execute("CREATE TABLE foo(x)")
    conn.execute("CREATE TABLE bar(y)")
    conn.close()
    _refused(sqlite_path, "not Koito's", "bar, foo", str(sqlite_path))


def test_sqlite_foreign_table_in_koito_db_refused(sqlite_path: Path) -> None:
    _sqlite_created(sqlite_path)
    conn = _sqlite(sqlite_path)
    conn.execute("CREATE TABLE foo(x)")
    conn.close()
    _refused(sqlite_path, "not Koito's", "(foo)")


def test_sqlite_unknown_version_refused(sqlite_path: Path) -> None:
    _sqlite_created(sqlite_path)
    conn = _sqlite(sqlite_path)
    conn.execute("INSERT INTO goose_db_version (version_id, is_applied) VALUES (9, 1)")
    conn.close()
    _refused(sqlite_path, "version 9", "newer", "(2)")


def test_sqlite_older_version_refused(sqlite_path: Path) -> None:
    _sqlite_created(sqlite_path)
    conn = _sqlite(sqlite_path)
    conn.execute("DELETE FROM goose_db_version WHERE version_id = 2")
    conn.close()
    _refused(sqlite_path, "version 1", "older", "start Koito")


def test_sqlite_rolled_back_version_counts_as_older(sqlite_path: Path) -> None:
    _sqlite_created(sqlite_path)
    conn = _sqlite(sqlite_path)
    conn.execute("INSERT INTO goose_db_version (version_id, is_applied) VALUES (2, 0)")
    conn.close()
    _refused(sqlite_path, "version 1", "older")


def test_sqlite_koito_tables_without_goose_refused(sqlite_path: Path) -> None:
    _sqlite_created(sqlite_path)
    conn = _sqlite(sqlite_path)
    conn.execute("DROP TABLE goose_db_version")
    conn.close()
    _refused(sqlite_path, "goose_db_version")


def test_sqlite_missing_koito_table_refused(sqlite_path: Path) -> None:
    _sqlite_created(sqlite_path)
    conn = _sqlite(sqlite_path)
    conn.execute("DROP TABLE sessions")
    conn.close()
    _refused(sqlite_path, "lacks", "sessions")


@pytest.mark.parametrize("text", ["artist,title\nA,B\n" * 200, "hello\n"])
def test_sqlite_not_a_database_refused(sqlite_path: Path, text: str) -> None:
    sqlite_path.write_text(text, encoding="utf-8")
    _refused(sqlite_path, "not a SQLite database", str(sqlite_path))


def test_sqlite_only_lookup_table_refused(sqlite_path: Path) -> None:
    conn = _sqlite(sqlite_path)
    conn.execute("CREATE TABLE track_lookup (lookup_key TEXT PRIMARY KEY)")
    conn.close()
    _refused(sqlite_path, "not Koito's (track_lookup)")


def test_sqlite_created_with_foreign_keys_on(sqlite_path: Path) -> None:
    """Koito's own connection has foreign keys on; the result must not depend on it."""
    conn = _sqlite(sqlite_path)
    conn.execute("PRAGMA foreign_keys = ON")
    assert schema.prepare_sqlite(conn) == "created"
    dump = _normalised(dump_sqlite(conn))
    assert dump["objects"] == _reference("sqlite")["objects"]
    assert dump["tables"] == _reference("sqlite")["tables"]
    conn.close()


def test_sqlite_default_user_from_environment(
    sqlite_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KOITO_DEFAULT_USERNAME", "Bob")
    monkeypatch.setenv("KOITO_DEFAULT_PASSWORD", "s3cret-pass")
    conn = _sqlite(sqlite_path)
    schema.prepare_sqlite(conn)
    [(username, role, password)] = conn.execute("SELECT username, role, password FROM users")
    assert (username, role) == ("bob", "admin")
    assert bcrypt.checkpw(b"s3cret-pass", password)
    conn.close()


@pytest.mark.parametrize(
    ("variable", "value"),
    [("KOITO_DEFAULT_USERNAME", "bob smith"), ("KOITO_DEFAULT_PASSWORD", "short")],
)
def test_sqlite_invalid_default_user_writes_nothing(
    sqlite_path: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    conn = _sqlite(sqlite_path)
    with pytest.raises(UsageError, match=variable):
        schema.prepare_sqlite(conn)
    assert conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] == 0
    conn.close()


def test_sqlite_legacy_transaction_mode(sqlite_path: Path) -> None:
    conn = sqlite3.connect(str(sqlite_path))  # default isolation_level=""
    assert schema.prepare_sqlite(conn) == "created"
    assert not conn.in_transaction
    conn.close()
    conn = _sqlite(sqlite_path)
    assert conn.execute("SELECT count(*) FROM users").fetchone()[0] == 1
    conn.close()


# --------------------------------------------------------------------------- PostgreSQL


def _pg_objects(conn: psycopg.Connection) -> list[tuple[str, str]]:
    return conn.execute(
        "SELECT relkind::text, relname FROM pg_class c JOIN pg_namespace n "
        "ON n.oid = c.relnamespace WHERE n.nspname = 'public' ORDER BY 2"
    ).fetchall()


def test_postgres_created_schema_is_koitos(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        assert schema.prepare_postgres(conn) == "created"
        dump = _normalised(dump_postgres(conn))
        reference = _reference("postgres")
        assert dump["goose"] == [[i + 1, i, True] for i in range(6)]
        for key in reference:
            if key.startswith("_"):
                continue
            assert dump[key] == reference[key], key
        assert ["pg_trgm", "public"] in dump["extensions"]
        assert ["role", ["admin", "user"]] in dump["enums"]
        tables = {row[0] for row in dump["columns"]}
        assert (
            set(schema.koito_tables()) | set(schema.koito_views()) | {"goose_db_version"} == tables
        )

        [(uid, username, role, password)] = conn.execute(
            "SELECT id, username, role::text, password FROM users"
        ).fetchall()
        assert (uid, username, role) == (1, "admin", "admin")
        assert bcrypt.checkpw(b"changeme", bytes(password))
        [(key, key_user, label, created_at)] = conn.execute(
            "SELECT key, user_id, label, created_at FROM api_keys"
        ).fetchall()
        assert (len(key), key_user, label) == (48, 1, "Default")
        assert created_at is not None

        tables = {
            r[0]
            for r in conn.execute(
                "SELECT table_name FROM information_schema.tables "
                "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
            )
        }
        assert tables == set(schema._KOITO_TABLES) | {schema.GOOSE_TABLE}


def test_postgres_second_prepare_and_non_autocommit(pg_url: str) -> None:
    with psycopg.connect(pg_url) as conn:  # not autocommit: prepare must still commit
        assert schema.prepare_postgres(conn) == "created"
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    with psycopg.connect(pg_url, autocommit=True) as conn:
        before = _pg_objects(conn)
        assert schema.prepare_postgres(conn) == "existing"
        assert conn.execute("SELECT count(*) FROM users").fetchone() == (1,)
        assert conn.execute("SELECT count(*) FROM goose_db_version").fetchone() == (6,)
        assert _pg_objects(conn) == before


def test_postgres_with_pg_trgm_already_installed_is_empty(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION pg_trgm")
        assert schema.prepare_postgres(conn) == "created"


def _pg_refused(conn: psycopg.Connection, *fragments: str) -> None:
    before = _pg_objects(conn)
    with pytest.raises(SchemaError) as info:
        schema.prepare_postgres(conn)
    message = str(info.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message
    assert _pg_objects(conn) == before


def test_postgres_foreign_table_refused(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE foo (x int)")
        _pg_refused(conn, "not Koito's", "foo")
        assert conn.execute(
            "SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm'"
        ).fetchone() == (0,)


def test_postgres_foreign_function_refused(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE FUNCTION answer() RETURNS int LANGUAGE sql AS 'SELECT 42'")
        _pg_refused(conn, "objects that are not Koito's", "answer (function)")


def test_postgres_unknown_version_refused(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        schema.prepare_postgres(conn)
        conn.execute("INSERT INTO goose_db_version (version_id, is_applied) VALUES (9, true)")
        _pg_refused(conn, "version 9", "newer", "(5)")


def test_postgres_legacy_lookup_table_dropped(pg_url: str) -> None:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        schema.prepare_postgres(conn)
        conn.execute(
            "CREATE TABLE track_lookup (lookup_key TEXT NOT NULL PRIMARY KEY, "
            "artist_id INT NOT NULL REFERENCES artists(id) ON DELETE CASCADE, "
            "created_at TIMESTAMPTZ NOT NULL DEFAULT now())"
        )
        conn.execute("CREATE INDEX idx_track_lookup_artist_id ON track_lookup(artist_id)")
        assert schema.prepare_postgres(conn) == "existing"
        assert conn.execute("SELECT to_regclass('track_lookup')").fetchone() == (None,)
        assert conn.execute("SELECT to_regclass('idx_track_lookup_artist_id')").fetchone() == (
            None,
        )


def test_postgres_default_user_from_environment(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KOITO_DEFAULT_USERNAME", "Bob")
    with psycopg.connect(pg_url, autocommit=True) as conn:
        schema.prepare_postgres(conn)
        assert conn.execute("SELECT username FROM users").fetchall() == [("bob",)]
