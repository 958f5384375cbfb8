"""Many koito-import writers on one database: the catalog of some serial order, no duplicates."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks import generate
from koito_import.stores import open_store
from koito_import.testing import fresh_database
from tests.snapshot import catalog_snapshot

pytestmark = pytest.mark.slow  # locks between processes: independent of the compiled hot path

CODE = "from koito_import.cli import main; main()"


def _run_together(db: str, files: list[Path]) -> list[tuple[int, str]]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CODE, "run", str(f), "--db", db, "--quiet", "--workers", "0"],
            stderr=subprocess.PIPE,
            text=True,
        )
        for f in files
    ]
    return [(p.wait(timeout=300), p.stderr.read()) for p in procs]


def _counts(db: str) -> tuple[int, int, int, int]:
    with open_store(db) as store:
        c = store.counts()
        return c.artists, c.albums, c.tracks, c.listens


def test_the_same_file_imported_twice_at_once(
    tmp_path: Path, db_target: str, pg_server_url: str
) -> None:
    export = generate.write_export(tmp_path / "same_maloja.json", "maloja", 2000, seed=11)
    for code, err in _run_together(db_target, [export, export, export]):
        assert code == 0, err
    # The reference: the file imported once, alone.
    if db_target.startswith("postgresql"):
        with fresh_database(pg_server_url) as once:
            assert _run_together(once, [export])[0][0] == 0
            assert _counts(db_target) == _counts(once)
            with open_store(db_target) as a, open_store(once) as b:
                assert catalog_snapshot(a) == catalog_snapshot(b)
    else:
        once = str(tmp_path / "once.db")
        assert _run_together(once, [export])[0][0] == 0
        assert _counts(db_target) == _counts(once)


def test_overlapping_files_at_once_duplicate_nothing(tmp_path: Path, db_target: str) -> None:
    a = generate.write_export(tmp_path / "a_maloja.json", "maloja", 1500, seed=12)
    # The same artists, albums and tracks, heard a year later.
    data = json.loads(a.read_text())
    for item in data["scrobbles"]:
        item["time"] += 365 * 86400
    b = tmp_path / "b_maloja.json"
    b.write_text(json.dumps(data))
    for code, err in _run_together(db_target, [a, b]):
        assert code == 0, err
    with open_store(db_target) as store:
        dup = store.execute(
            "SELECT count(*) FROM (SELECT alias FROM artist_aliases WHERE is_primary = ? "
            "GROUP BY alias HAVING count(*) > 1) d",
            (True,),
        ).fetchone()[0]
        assert dup == 0
        listens = store.execute("SELECT count(*) FROM listens").fetchone()[0]
    assert listens == 2 * _counts_one(tmp_path, a)


def _counts_one(tmp_path: Path, export: Path) -> int:
    once = str(tmp_path / "one.db")
    assert _run_together(once, [export])[0][0] == 0
    return _counts(once)[3]
