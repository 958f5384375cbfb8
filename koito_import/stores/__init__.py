"""Choosing and opening a storage backend from a ``--db`` target.

``postgres://`` / ``postgresql://`` URLs open PostgreSQL; ``sqlite:///PATH`` or a plain
path open (or create) a Koito SQLite file. Without a target, ``KOITO_DATABASE_URL`` (the
variable Koito itself reads) is used, then Koito's ``$KOITO_CONFIG_DIR/koito.db``, then
``./koito.db``.
"""

from __future__ import annotations

import os
import sqlite3
import sys

from koito_import.errors import DatabaseError
from koito_import.stores.base import CatalogCounts, SqlCatalog, Store

DEFAULT_SQLITE_PATH = "koito.db"

__all__ = [
    "DEFAULT_SQLITE_PATH",
    "CatalogCounts",
    "SqlCatalog",
    "Store",
    "display_target",
    "open_store",
    "resolve_target",
    "write_failure",
]


def resolve_target(target: str | None) -> str:
    """The effective target: the argument, else KOITO_DATABASE_URL, else Koito's own file
    ``$KOITO_CONFIG_DIR/koito.db`` when that variable is set, else ./koito.db."""
    if target:
        return target
    if os.environ.get("KOITO_DATABASE_URL"):
        return os.environ["KOITO_DATABASE_URL"]
    config = os.environ.get("KOITO_CONFIG_DIR")
    return os.path.join(config, DEFAULT_SQLITE_PATH) if config else DEFAULT_SQLITE_PATH


def display_target(target: str | None) -> str:
    """How to name a target in any output: never with its password."""
    target = resolve_target(target)
    if target.startswith(("postgres://", "postgresql://")):
        from koito_import.stores.postgres import redact

        return redact(target)
    return target


def open_store(target: str | None = None, *, read_only: bool = False) -> Store:
    """Open the database, creating Koito's schema if it is empty (see ``schema``).

    ``read_only`` (PostgreSQL; a dry run): nothing done through the store is committed.
    A SQLite dry run works on a scratch copy instead (``cli``).
    """
    target = resolve_target(target)
    if target.startswith(("postgres://", "postgresql://")):
        from koito_import.stores.postgres import PostgresStore

        return PostgresStore(target, read_only=read_only)
    from koito_import.stores.sqlite import SqliteStore

    path = sqlite_path(target)
    assert path is not None
    return SqliteStore(path)


def sqlite_path(target: str | None) -> str | None:
    """The file a SQLite target names (``PATH``, ``sqlite:///PATH``); None for PostgreSQL."""
    target = resolve_target(target)
    if target.startswith(("postgres://", "postgresql://")):
        return None
    if target.startswith("sqlite:///"):
        return target[len("sqlite:///") :] or DEFAULT_SQLITE_PATH
    if target.startswith("sqlite://"):
        return target[len("sqlite://") :] or DEFAULT_SQLITE_PATH
    return target


def write_failure(store: Store, exc: BaseException) -> DatabaseError | None:
    """The one-line database error for a failed write (disk full, read-only file, server
    gone, a lock not granted), or None when ``exc`` is not one (then it is a bug)."""
    psycopg = sys.modules.get("psycopg")
    failures: tuple[type[BaseException], ...] = (sqlite3.OperationalError,)
    if psycopg is not None:
        failures += (psycopg.OperationalError,)
    if not isinstance(exc, failures):
        return None
    # Only the first line: PostgreSQL adds DETAIL / HINT / CONTEXT lines.
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return DatabaseError(f"{store.display_name}: cannot write: {first}")
