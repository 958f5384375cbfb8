"""Shared benchmark fixtures: generated histories (built once per session) and the twins."""

from __future__ import annotations

import compileall
import os
import uuid
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from types import ModuleType

import pytest

from benchmarks.generate import DEFAULT_LISTENS, generate_listens, shape_counts, write_export
from koito_import import _normalize_py
from koito_import.listen import Listen
from koito_import.testing import fresh_database, postgres_server

#: The 1,000,000-listen runs take minutes; opt in.
BENCH_1M = bool(os.environ.get("KOITO_IMPORT_BENCH_1M"))

#: The plan's workload, unless KOITO_IMPORT_BENCH_LISTENS says otherwise.
BENCH_LISTENS = int(os.environ.get("KOITO_IMPORT_BENCH_LISTENS", DEFAULT_LISTENS))
BENCH_SEED = 1


@cache
def _history(flavor: str, n: int, seed: int) -> list[Listen]:
    return generate_listens(n, seed, flavor=flavor)


@pytest.fixture(scope="session")
def history() -> Callable[[str], list[Listen]]:
    """``history(flavor)``: the generated raw listens (maloja, listenbrainz, koito), cached."""
    return lambda flavor="maloja": _history(flavor, BENCH_LISTENS, BENCH_SEED)


@pytest.fixture(scope="session")
def salt() -> str:
    """The salt of a default run (Koito's default artist separator)."""
    return ";;".join(_normalize_py.DEFAULT_SEPARATORS)


@pytest.fixture(scope="session")
def py_impl() -> ModuleType:
    return _normalize_py


@pytest.fixture(scope="session")
def c_impl() -> ModuleType:
    """The compiled twin; skipped when not built (fails under KOITO_IMPORT_REQUIRE_EXTENSIONS)."""
    try:
        from koito_import import _normalize_c
    except ImportError as exc:
        message = f"the C extension koito_import._normalize_c is not built ({exc})"
        if os.environ.get("KOITO_IMPORT_REQUIRE_EXTENSIONS"):
            pytest.fail(message)
        pytest.skip(message)
    return _normalize_c


@pytest.fixture(scope="session")
def medians() -> dict[str, float]:
    """Median seconds of the benchmarks run so far, by name (to report ratios)."""
    return {}


# --- end-to-end imports ---------------------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def _bytecode() -> None:
    """Compile the project's modules once, as a user's Python has them after its first run.

    An installed copy has bytecode from the install, an editable one writes it on first
    import, unless ``PYTHONDONTWRITEBYTECODE`` is set (as on this project's machines).
    Without it every timed process compiles ~40 modules from source again (~0.15 s), a
    cost no user pays twice; the parse-only bound gets the same bytecode.
    """
    root = Path(__file__).resolve().parents[1]
    for folder in ("koito_import", "plugins"):
        compileall.compile_dir(str(root / folder), quiet=1)


@pytest.fixture(scope="session")
def exports(tmp_path_factory: pytest.TempPathFactory) -> dict[int | str, Path]:
    folder = tmp_path_factory.mktemp("exports")
    sizes = [10_000, 49_050, 100_000]
    if BENCH_1M:
        sizes.append(1_000_000)
    out: dict[int | str, Path] = {
        n: write_export(folder / f"maloja-{n}.json", "maloja", n) for n in sizes
    }
    if BENCH_1M:
        artists, albums, tracks = shape_counts(1_000_000, "grown") or (None, None, None)
        out["1m-grown"] = write_export(
            folder / "maloja-1m-grown.json", "maloja", 1_000_000, 1, artists, albums, tracks
        )
    return out


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    with postgres_server() as url:
        yield url


class Targets:
    """Fresh databases per round: SQLite files in a temp folder, PostgreSQL databases."""

    def __init__(self, backend: str, folder: Path, pg_server: str | None) -> None:
        self.backend, self.folder, self.pg_server = backend, folder, pg_server
        self._dbs: list = []

    def fresh(self) -> str:
        if self.backend == "sqlite":
            return str(self.folder / f"{uuid.uuid4().hex}.db")
        cm = fresh_database(self.pg_server)
        self._dbs.append(cm)
        return cm.__enter__()

    def close(self) -> None:
        for cm in self._dbs:
            cm.__exit__(None, None, None)


@pytest.fixture(params=["sqlite", "postgresql"])
def targets(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Targets]:
    server = request.getfixturevalue("pg_server") if request.param == "postgresql" else None
    t = Targets(request.param, tmp_path, server)
    yield t
    t.close()
