"""Shared benchmark fixtures: generated histories (built once per session) and the twins."""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import cache
from types import ModuleType

import pytest

from benchmarks.generate import DEFAULT_LISTENS, generate_listens
from koito_import import _normalize_py
from koito_import.listen import Listen

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
