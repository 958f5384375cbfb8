"""Inputs that can be read only once: standard input (``-``), FIFOs, ``/dev/fd/N``.

Detection reads a file's head, the parse-worker decision looks at its size and the
parser reads it whole: a pipe allows none of that twice. Such an input is first copied,
at I/O speed, into a private temporary file, which then stands in for it; messages and
the summary still name what the user typed.
"""

from __future__ import annotations

import shutil
import stat
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from koito_import.errors import InputError, UsageError

STDIN = "-"
#: How standard input is named in messages and the summary.
STDIN_NAME = "<stdin>"


def _once_only(path: Path) -> bool:
    if str(path) == STDIN:
        return True
    try:
        mode = path.stat().st_mode
    except OSError:
        return False  # missing or unreadable: the reader says so, naming the path
    return stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISSOCK(mode)


@contextmanager
def spooled(paths: list[Path]) -> Iterator[tuple[list[Path], dict[str, str]]]:
    """(paths to read, {stand-in path: the name the user gave}) for these inputs."""
    if sum(str(p) == STDIN for p in paths) > 1:
        raise UsageError("standard input ('-') can be given only once")
    if not any(_once_only(p) for p in paths):
        yield paths, {}
        return
    with tempfile.TemporaryDirectory(prefix="koito-import-input-") as tmp:
        out: list[Path] = []
        names: dict[str, str] = {}
        for i, path in enumerate(paths):
            if not _once_only(path):
                out.append(path)
                continue
            stdin = str(path) == STDIN
            copy = Path(tmp) / f"{i}-{'stdin' if stdin else path.name}"
            shown = STDIN_NAME if stdin else str(path)
            try:
                with copy.open("wb") as dst:
                    if stdin:
                        shutil.copyfileobj(sys.stdin.buffer, dst, 1 << 20)
                    else:
                        with path.open("rb") as src:
                            shutil.copyfileobj(src, dst, 1 << 20)
            except OSError as exc:
                raise InputError(shown, "", f"cannot be read: {exc.strerror or exc}") from None
            out.append(copy)
            names[str(copy)] = shown
        yield out, names


def check_inputs(paths: list[Path], names: dict[str, str]) -> None:
    """InputError for the first input that is missing, a folder or unreadable.

    Run before anything is opened or written, so that a mistyped name costs nothing.
    """
    for path in paths:
        shown = names.get(str(path), str(path))
        if not path.exists():
            raise InputError(shown, "", "no such file")
        if path.is_dir():
            raise InputError(shown, "", "is a folder; give the export files in it")
        try:
            with path.open("rb"):
                pass
        except OSError as exc:
            raise InputError(shown, "", f"cannot be read: {exc.strerror or exc}") from None
