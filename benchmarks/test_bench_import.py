"""End-to-end import benchmarks: process start to exit, as a user runs it, and the floor.

Each round runs ``koito-import run`` in a fresh process against a fresh Koito database:
the setup, not timed, creates its schema and admin user as Koito's first start would (the
floor's setup makes its schema untimed too). ``test_import_49k_new_database`` times the
creation as well, as a first import into a path with no database pays it. Peak RSS is
the child's own VmHWM. In the same run, ``test_floor_*`` writes the rows one import
produced into a fresh schema by the plainest fast means (``benchmarks.floor``) and
reports each import as a ratio to that floor (``extra_info["ratio_to_floor"]``);
``test_parse_only_*`` times reading and parsing the file alone, the bound of a
re-import. Targets (this 2-core machine), as ratios to the floor: 49k ≤ 1.5× SQLite /
≤ 1.3× PostgreSQL; 1M (grown catalog) ≤ 1.3× both; re-import of 1M ≤ 1.2× parse only;
peak RSS ≤ 400 MB.

    pytest benchmarks --benchmark-only                 # all but the 1M runs
    KOITO_IMPORT_BENCH_1M=1 pytest benchmarks --benchmark-only -k 1m
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import floor
from benchmarks.conftest import BENCH_1M
from benchmarks.rss_run import CHILD_MARKER, MARKER
from koito_import.parallel import DEFAULT_WORKERS
from koito_import.stores import open_store

RUN = [sys.executable, "-m", "benchmarks.rss_run", "run", "--quiet"]
ROOT = Path(__file__).resolve().parents[1]


def import_file(path: Path, db: str, *extra: str) -> tuple[int, int]:
    """Run one import in a new process; return its own peak RSS and that of its largest
    parse worker, in KiB."""
    done = subprocess.run(
        [*RUN, str(path), "--db", db, *extra], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    own = int(done.stderr.rsplit(MARKER, 1)[1].split()[0])
    child = int(done.stderr.rsplit(CHILD_MARKER, 1)[1].split()[0])
    return own, child


def _bench(
    benchmark,
    exports,
    targets,
    n: int | str,
    rounds: int,
    reimport: bool = False,
    medians=None,
    new_database: bool = False,
) -> None:
    path = exports[n]
    peaks: list[tuple[int, int]] = []

    def setup():
        db = targets.fresh()
        if reimport:
            import_file(path, db)
        elif not new_database:
            open_store(db).close()  # Koito's schema and admin user, as Koito makes them
        return (path, db), {}

    def target(p, db):
        peaks.append(import_file(p, db))

    benchmark.group = f"import {n} listens" + (
        " (re-import)" if reimport else " (new database)" if new_database else ""
    )
    benchmark.extra_info["backend"] = targets.backend
    benchmark.pedantic(target, setup=setup, rounds=rounds, iterations=1)
    # The target is on every process of the run, summed: the main process and its
    # parse workers (each counted at the largest one's peak: an upper bound).
    benchmark.extra_info["peak_rss_mb"] = round(max(own for own, _ in peaks) / 1024, 1)
    benchmark.extra_info["worker_peak_rss_mb"] = round(max(c for _, c in peaks) / 1024, 1)
    benchmark.extra_info["summed_peak_rss_mb"] = round(
        max(own + DEFAULT_WORKERS * child for own, child in peaks) / 1024, 1
    )
    if medians is not None:
        medians[("import", n, reimport, targets.backend)] = benchmark.stats.stats.median


def test_import_49k(benchmark, exports, targets, medians) -> None:
    _bench(benchmark, exports, targets, 49_050, rounds=5, medians=medians)


def test_import_49k_new_database(benchmark, exports, targets) -> None:
    _bench(benchmark, exports, targets, 49_050, rounds=5, new_database=True)


def test_reimport_49k(benchmark, exports, targets, medians) -> None:
    _bench(benchmark, exports, targets, 49_050, rounds=5, reimport=True, medians=medians)


@pytest.mark.parametrize("n", [10_000, 100_000])
def test_scale(benchmark, exports, targets, n: int) -> None:
    _bench(benchmark, exports, targets, n, rounds=3)


@pytest.mark.skipif(not BENCH_1M, reason="set KOITO_IMPORT_BENCH_1M=1")
def test_scale_1m(benchmark, exports, targets, medians) -> None:
    _bench(benchmark, exports, targets, 1_000_000, rounds=3, medians=medians)


@pytest.mark.skipif(not BENCH_1M, reason="set KOITO_IMPORT_BENCH_1M=1")
def test_scale_1m_grown(benchmark, exports, targets, medians) -> None:
    _bench(benchmark, exports, targets, "1m-grown", rounds=3, medians=medians)


@pytest.mark.skipif(not BENCH_1M, reason="set KOITO_IMPORT_BENCH_1M=1")
def test_reimport_1m_grown(benchmark, exports, targets, medians) -> None:
    _bench(benchmark, exports, targets, "1m-grown", rounds=3, reimport=True, medians=medians)


# --- the floor: the same rows, written by the plainest fast means ----------------------


def _produced_rows(path: Path, targets) -> floor.Rows:
    """The rows one import of ``path`` leaves in a fresh database of this backend."""
    db = targets.fresh()
    import_file(path, db)
    if targets.backend == "sqlite":
        conn = sqlite3.connect(db)
        try:
            return floor.read_rows(conn)
        finally:
            conn.close()
    import psycopg

    with psycopg.connect(db) as conn:
        return floor.read_rows(conn)


def _floor(benchmark, exports, targets, medians, n: int | str, rounds: int) -> None:
    rows = _produced_rows(exports[n], targets)
    make, write = (
        (floor.sqlite_schema, floor.write_sqlite)
        if targets.backend == "sqlite"
        else (floor.postgres_schema, floor.write_postgres)
    )

    def setup():
        db = targets.fresh()
        make(db)
        return (db, rows), {}

    benchmark.group = f"floor {n} listens"
    benchmark.extra_info["backend"] = targets.backend
    benchmark.extra_info["rows"] = floor.row_count(rows)
    benchmark.pedantic(write, setup=setup, rounds=rounds, iterations=1)
    floor_median = benchmark.stats.stats.median
    medians[("floor", n, targets.backend)] = floor_median
    imported = medians.get(("import", n, False, targets.backend))
    if imported is not None:
        # The import benchmark of the same file ran earlier in this session.
        benchmark.extra_info["ratio_to_floor"] = round(imported / floor_median, 2)


def test_floor_49k(benchmark, exports, targets, medians) -> None:
    _floor(benchmark, exports, targets, medians, 49_050, rounds=5)


@pytest.mark.skipif(not BENCH_1M, reason="set KOITO_IMPORT_BENCH_1M=1")
def test_floor_1m_grown(benchmark, exports, targets, medians) -> None:
    _floor(benchmark, exports, targets, medians, "1m-grown", rounds=3)


def _parse_only(benchmark, exports, n: int | str, rounds: int) -> None:
    """Read and parse the file alone in a new process (the bound of a re-import)."""
    command = [sys.executable, "-m", "benchmarks.parse_rss", str(exports[n])]

    def target():
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
        assert done.returncode == 0, done.stderr

    benchmark.group = f"parse only {n} listens"
    benchmark.pedantic(target, rounds=rounds, iterations=1)


def test_parse_only_49k(benchmark, exports) -> None:
    _parse_only(benchmark, exports, 49_050, rounds=5)


@pytest.mark.skipif(not BENCH_1M, reason="set KOITO_IMPORT_BENCH_1M=1")
def test_parse_only_1m_grown(benchmark, exports) -> None:
    _parse_only(benchmark, exports, "1m-grown", rounds=3)
