"""The exception family every user-facing failure belongs to.

The CLI maps each class to one line on stderr and a documented exit code, so a user
mistake never shows a traceback. Library callers catch ``KoitoImportError``.
"""

from __future__ import annotations


class KoitoImportError(Exception):
    """Base class: a failure the user can act on, reported as one line."""

    exit_code = 1


class UsageError(KoitoImportError):
    """The command line or an option value is wrong."""

    exit_code = 2


class DatabaseError(KoitoImportError):
    """The database cannot be opened, or a statement against it failed."""

    exit_code = 3


class SchemaError(DatabaseError):
    """The target database is not an empty database nor a Koito database we know.

    Raised before anything is written, so the database is left untouched.
    """

    exit_code = 4


class InputError(KoitoImportError):
    """An input file is missing, unreadable or not what it claims to be.

    The message names the file and where it broke; nothing from that file is written.
    """

    exit_code = 1

    def __init__(self, path: str, where: str, reason: str) -> None:
        self.path = path
        self.where = where
        self.reason = reason
        place = f" ({where})" if where else ""
        super().__init__(f"{path}{place}: {reason}")


class InvalidListen(KoitoImportError):
    """One listen cannot be imported; importers count it as a skip with ``reason``."""

    exit_code = 1

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)
