"""From what the user typed to the files the plugins read.

People give what they downloaded: standard input (``-``), a FIFO or ``<(…)``, a folder
of export files, Spotify's ``my_spotify_data.zip`` with folders inside, a
``history.json.gz``. Plugins read plain files by path (detection reads a head, the
parse-worker decision looks at the size, the parser reads it whole), so each of these
is first turned into plain files, at I/O speed, in a private temporary folder that
stands in for it; messages and the summary still name what the user gave
(``my_spotify_data.zip:Spotify Account Data/StreamingHistory_music_0.json``).

- Standard input, FIFOs and character devices are copied once.
- gzip (by its magic bytes, whatever the name) is decompressed.
- A zip that a plugin reads as a whole (ListenBrainz's export) is left as it is; any
  other zip is read like a folder of its members.
- A folder is read recursively, hidden files and ``__MACOSX/`` left out, in *natural*
  order of the path inside it: digit runs compare as numbers, so
  ``StreamingHistory_music_2.json`` comes before ``…_10.json`` and every export's
  files stay chronological. (Koito's own import folder is read in byte order and not
  recursively; for Spotify's names the two orders agree up to ten files.)
- Inside a folder or archive, a file no plugin reads (Spotify's ``Userdata.json``, a
  PDF) is listed in the summary as not read; it does not fail the run. A file the user
  names itself must be read.

Everything here happens before the database is opened: a corrupt archive or a
mistyped name costs nothing.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import stat
import sys
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from koito_import.errors import InputError, UsageError

STDIN = "-"
#: How standard input is named in messages and the summary.
STDIN_NAME = "<stdin>"
_GZIP_MAGIC = b"\x1f\x8b"
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip, an empty zip
_COPY_BUFFER = 1 << 20
#: Folders and archives inside folders and archives: deeper than this is not an export.
_MAX_DEPTH = 4
#: What zipfile and gzip raise for a damaged, truncated or unsupported archive.
_ARCHIVE_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, gzip.BadGzipFile, NotImplementedError)

#: Why no plugin (the run's --plugin, or any) would read this plain file; None: one would.
Claims = Callable[[Path], "str | None"]


@dataclass
class Inputs:
    """The plain files to import, in order, and what the user sees of them."""

    paths: list[Path] = field(default_factory=list)
    #: stand-in path -> the name the user knows it by
    names: dict[str, str] = field(default_factory=dict)
    #: (name, why) of files inside folders and archives that no plugin reads
    unread: list[tuple[str, str]] = field(default_factory=list)

    def shown(self, path: Path | str) -> str:
        return self.names.get(str(path), str(path))


def _once_only(path: Path) -> bool:
    if str(path) == STDIN:
        return True
    try:
        mode = path.stat().st_mode
    except OSError:
        return False  # missing or unreadable: check_inputs says so, naming the path
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISSOCK(mode)


def check_inputs(paths: list[Path]) -> None:
    """InputError for the first input that is missing or unreadable.

    Run before anything is opened or written, so that a mistyped name costs nothing.
    """
    if sum(str(p) == STDIN for p in paths) > 1:
        raise UsageError("standard input ('-') can be given only once")
    for path in paths:
        if str(path) == STDIN:
            continue
        if not path.exists():
            raise InputError(str(path), "", "no such file")
        if path.is_dir():
            if not os.access(path, os.R_OK | os.X_OK):
                raise InputError(str(path), "", "cannot be read: permission denied")
            continue
        if _once_only(path):
            continue  # opening a FIFO to try it would take its only reading
        try:
            with path.open("rb"):
                pass
        except OSError as exc:
            raise InputError(str(path), "", f"cannot be read: {exc.strerror or exc}") from None


_DIGITS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple[tuple[object, ...], str]:
    """Sort key comparing digit runs as numbers: ``_2`` before ``_10``."""
    parts = _DIGITS.split(name)  # text, digits, text, ...: like compares with like
    return tuple(int(p) if i % 2 else p.casefold() for i, p in enumerate(parts)), name


def _hidden(parts: tuple[str, ...]) -> bool:
    return any(p.startswith(".") or p == "__MACOSX" for p in parts)


def _magic(path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            return f.read(4)
    except OSError:
        return b""


class _Expander:
    def __init__(self, tmp: Path, claims: Claims) -> None:
        self.tmp = tmp
        self.claims = claims
        self.out = Inputs()
        self._n = 0

    def scratch(self, name: str) -> Path:
        self._n += 1
        safe = re.sub(r"[^\w.-]", "_", PurePosixPath(name).name)[-80:] or "input"
        return self.tmp / f"{self._n}-{safe}"

    def copy(self, src, dst: Path, shown: str) -> None:
        try:
            with dst.open("wb") as out:
                shutil.copyfileobj(src, out, _COPY_BUFFER)
        except _ARCHIVE_ERRORS as exc:
            raise InputError(shown, "", f"corrupt or truncated archive: {exc}") from None
        except OSError as exc:
            raise InputError(shown, "", f"cannot be read: {exc.strerror or exc}") from None

    def _stand_in(self, path: Path, shown: str) -> Path:
        if str(path) != shown:
            self.out.names[str(path)] = shown
        return path

    def add(self, path: Path, shown: str, inside: bool, depth: int = 0) -> None:
        """Add one input: a plain file, a gzip, a zip, a folder (``inside``: of another)."""
        if depth > _MAX_DEPTH:
            self.out.unread.append((shown, "nested too deep"))
            return
        if path.is_dir():
            self._folder(path, shown, depth)
            return
        magic = _magic(path)
        if magic[:2] == _GZIP_MAGIC:
            plain = self.scratch(shown.removesuffix(".gz").removesuffix(".gzip"))
            with gzip.open(path, "rb") as src:
                self.copy(src, plain, shown)
            self.add(plain, shown, inside, depth + 1)
            return
        if magic in _ZIP_MAGIC and self.claims(path) is not None:
            self._zip(path, shown, depth)
            return
        if inside:
            why = self.claims(path)
            if why is not None:
                self.out.unread.append((shown, why))
                return
        self.out.paths.append(self._stand_in(path, shown))

    def _folder(self, folder: Path, shown: str, depth: int) -> None:
        found: list[tuple[str, Path]] = []
        for root, dirs, files in os.walk(folder):
            dirs[:] = [d for d in dirs if not _hidden((d,))]
            for name in files:
                if not _hidden((name,)):
                    full = Path(root) / name
                    found.append((full.relative_to(folder).as_posix(), full))
        for rel, full in sorted(found, key=lambda f: natural_key(f[0])):
            self.add(full, f"{shown.rstrip('/')}/{rel}", True, depth + 1)

    def _zip(self, path: Path, shown: str, depth: int) -> None:
        try:
            with zipfile.ZipFile(path) as archive:
                members = [
                    m
                    for m in archive.infolist()
                    if not m.is_dir() and not _hidden(PurePosixPath(m.filename).parts)
                ]
                members.sort(key=lambda m: natural_key(m.filename))
                for member in members:
                    inner = f"{shown}:{member.filename}"
                    plain = self.scratch(member.filename)
                    try:
                        src = archive.open(member)
                    except (*_ARCHIVE_ERRORS, RuntimeError) as exc:  # encrypted: RuntimeError
                        raise InputError(inner, "", f"cannot be extracted: {exc}") from None
                    with src:
                        self.copy(src, plain, inner)
                    self.add(plain, inner, True, depth + 1)
        except _ARCHIVE_ERRORS as exc:
            raise InputError(shown, "", f"corrupt zip file: {exc}") from None


@contextmanager
def prepared(paths: list[Path], claims: Claims) -> Iterator[Inputs]:
    """The plain files behind these inputs, in order, while the context lasts.

    Raises InputError (naming what the user gave) for a missing or unreadable input or
    a corrupt archive, before anything is imported.
    """
    check_inputs(paths)
    with tempfile.TemporaryDirectory(prefix="koito-import-input-") as tmp:
        expander = _Expander(Path(tmp), claims)
        for path in paths:
            shown = STDIN_NAME if str(path) == STDIN else str(path)
            if _once_only(path):
                copy = expander.scratch("stdin" if str(path) == STDIN else path.name)
                if str(path) == STDIN:
                    expander.copy(sys.stdin.buffer, copy, shown)
                else:
                    try:
                        with path.open("rb") as src:
                            expander.copy(src, copy, shown)
                    except OSError as exc:
                        raise InputError(
                            shown, "", f"cannot be read: {exc.strerror or exc}"
                        ) from None
                path = copy
            before = len(expander.out.paths), len(expander.out.unread)
            expander.add(path, shown, inside=False)
            if len(expander.out.paths) == before[0]:
                seen = len(expander.out.unread) - before[1]
                raise InputError(
                    shown, "", f"holds no file a plugin reads ({seen} files looked at)"
                )
        yield expander.out
