"""End-to-end import benchmarks: process start to exit, as a user runs it.

Each round runs ``koito-import run`` in a fresh process against a fresh database (the
setup creates it and is not timed). Peak RSS is the child's own VmHWM. Targets (issue 4,
this 2-core machine): 49k listens ≤ 1 s SQLite / ≤ 2 s PostgreSQL; re-import ≤ 0.5 s /
≤ 1 s; 1M listens ≤ 20 s / ≤ 30 s with peak RSS ≤ 400 MB; bulk ≥ 100× per-listen.

    pytest benchmarks --benchmark-only                 # all but the 1M runs
    KOITO_IMPORT_BENCH_1M=1 pytest benchmarks --benchmark-only -k 1m
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.conftest import BENCH_1M
from benchmarks.rss_run import MARKER

RUN = [sys.executable, "-m", "benchmarks.rss_run", "run", "--quiet"]
ROOT = Path(__file__).resolve().parents[1]


def import_file(path: Path, db: str, *extra: str) -> int:
    """Run one import in a new process; return its peak RSS in KiB."""
    done = subprocess.run(
        [*RUN, str(path), "--db", db, *extra], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    return int(done.stderr.rsplit(MARKER, 1)[1].split()[0])


def _bench(benchmark, exports, targets, n: int, rounds: int, reimport: bool = False) -> None:
    path = exports[n]
    peaks: list[int] = []

    def setup():
        db = targets.fresh()
        if reimport:
            import_file(path, db)
        return (path, db), {}

    def target(p, db):
        peaks.append(import_file(p, db))

    benchmark.group = f"import {n} listens" + (" (re-import)" if reimport else "")
    benchmark.extra_info["backend"] = targets.backend
    benchmark.pedantic(target, setup=setup, rounds=rounds, iterations=1)
    benchmark.extra_info["peak_rss_mb"] = round(max(peaks) / 1024, 1)


def test_import_49k(benchmark, exports, targets) -> None:
    _bench(benchmark, exports, targets, 49_050, rounds=5)


def test_reimport_49k(benchmark, exports, targets) -> None:
    _bench(benchmark, exports, targets, 49_050, rounds=5, reimport=True)


@pytest.mark.parametrize("n", [10_000, 100_000])
def test_scale(benchmark, exports, targets, n: int) -> None:
    _bench(benchmark, exports, targets, n, rounds=3)


@pytest.mark.skipif(not BENCH_1M, reason="set KOITO_IMPORT_BENCH_1M=1")
def test_scale_1m(benchmark, exports, targets) -> None:
    _bench(benchmark, exports, targets, 1_000_000, rounds=3)
