"""Write failures are database errors: exit 3, one line naming the database, nothing lost."""

from __future__ import annotations

import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks import generate
from koito_import.cli import main


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(list(args))
    out, err = capsys.readouterr()
    return int(done.value.code or 0), out, err


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 600 KiB tmpfs (needs the right to mount; skipped elsewhere)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mount)], capture_output=True
    )
    if done.returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_disk_full_is_a_database_error_and_keeps_what_was_there(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, small_disk: Path
) -> None:
    db = small_disk / "koito.db"
    first = generate.write_export(tmp_path / "small_maloja.json", "maloja", 50, seed=3)
    big = generate.write_export(tmp_path / "big_maloja.json", "maloja", 20_000, seed=4)
    code, _, err = cli(capsys, "run", str(first), "--db", str(db), "--quiet")
    assert code == 0, err
    with sqlite3.connect(db) as conn:
        before = conn.execute("SELECT count(*) FROM listens").fetchone()[0]
    code, _, err = cli(capsys, "run", str(big), "--db", str(db), "--quiet")
    assert code == 3
    assert err.count("\n") == 1 and str(db) in err and "full" in err
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT count(*) FROM listens").fetchone()[0] == before
