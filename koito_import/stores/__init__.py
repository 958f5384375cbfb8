"""Choosing and opening a storage backend from a ``--db`` target.

``BACKENDS`` is the registry: each backend's URL prefixes and its Store class, and
``parse_target`` the one place a target string is understood (the CLI asks it too).
``postgres://`` / ``postgresql://`` URLs open PostgreSQL; ``sqlite:///PATH`` or a plain
path open (or create) a Koito SQLite file. Without a target, ``KOITO_DATABASE_URL`` (the
variable Koito itself reads) is used, then Koito's ``$KOITO_CONFIG_DIR/koito.db``, then
``./koito.db``.
"""

from __future__ import annotations

import importlib
import os
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path

from koito_import.errors import DatabaseError
from koito_import.stores.base import CatalogCounts, SqlCatalog, Store

DEFAULT_SQLITE_PATH = "koito.db"

__all__ = [
    "BACKENDS",
    "DEFAULT_SQLITE_PATH",
    "Backend",
    "CatalogCounts",
    "SqlCatalog",
    "Store",
    "Target",
    "display_target",
    "open_store",
    "parse_target",
    "remove_database",
    "resolve_target",
    "snapshot_copy",
    "sqlite_path",
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


@dataclass(frozen=True, slots=True)
class Backend:
    """A storage backend: the target strings it takes and the Store class that opens them.

    The class is imported only when a target of this backend is opened, so PostgreSQL's
    driver is never loaded for a SQLite import.
    """

    name: str
    #: URL prefixes of its targets ("" for the default: a plain path).
    schemes: tuple[str, ...]
    #: "module:Class" of its Store.
    store: str
    #: True when the prefix is part of the location the Store is given (a URL).
    keeps_scheme: bool = False

    def store_class(self) -> type[Store]:
        module, name = self.store.split(":")
        return getattr(importlib.import_module(module), name)


#: Every backend, the default last. A new backend is a Store module under stores/ (with
#: its bulk writer) and a line here.
BACKENDS: tuple[Backend, ...] = (
    Backend(
        "postgresql",
        ("postgres://", "postgresql://"),
        "koito_import.stores.postgres:PostgresStore",
        keeps_scheme=True,
    ),
    Backend("sqlite", ("sqlite:///", "sqlite://", ""), "koito_import.stores.sqlite:SqliteStore"),
)


@dataclass(frozen=True, slots=True)
class Target:
    """A ``--db`` target understood: which backend, and what its Store is given."""

    backend: Backend
    location: str

    def open(self, *, read_only: bool = False) -> Store:
        return self.backend.store_class().open(self.location, read_only=read_only)

    @property
    def display(self) -> str:
        """How to name the target in any output: never with its password."""
        return self.backend.store_class().redact(self.location)


def parse_target(target: str | None) -> Target:
    """The one place a target string is understood (after ``resolve_target``)."""
    target = resolve_target(target)
    for backend in BACKENDS:
        for scheme in backend.schemes:
            if target.startswith(scheme):
                if backend.keeps_scheme:
                    return Target(backend, target)
                return Target(backend, target[len(scheme) :] or DEFAULT_SQLITE_PATH)
    raise AssertionError("the default backend takes every target")  # pragma: no cover


def display_target(target: str | None) -> str:
    """How to name a target in any output: never with its password."""
    return parse_target(target).display


def open_store(target: str | None = None, *, read_only: bool = False) -> Store:
    """Open the database, creating Koito's schema if it is empty (see ``schema``).

    ``read_only`` (PostgreSQL; a dry run): nothing done through the store is committed.
    A SQLite dry run works on a scratch copy instead (``cli``).
    """
    return parse_target(target).open(read_only=read_only)


def sqlite_path(target: str | None) -> str | None:
    """The file a SQLite target names (``PATH``, ``sqlite:///PATH``); None for others."""
    parsed = parse_target(target)
    return parsed.location if parsed.backend.name == "sqlite" else None


def snapshot_copy(path: str | Path, dest: str | Path) -> None:
    """A consistent copy of a SQLite database (a dry run works on one)."""
    from koito_import.stores.sqlite import snapshot_copy as copy

    copy(path, dest)


def remove_database(path: str | Path) -> None:
    """Remove a SQLite database this run created, and the files kept beside it."""
    from koito_import.stores.sqlite import remove_database as remove

    remove(path)


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
