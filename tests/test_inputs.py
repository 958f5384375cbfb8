"""Inputs that can be read once: standard input, FIFOs, process substitution."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from koito_import.stores import open_store

CODE = "from koito_import.cli import main; main()"
EXPORT = {
    "scrobbles": [
        {"time": t, "track": {"artists": ["A"], "title": f"T{t}", "album": None}}
        for t in range(1, 6)
    ]
}


def _listens(db: Path) -> int:
    with open_store(str(db)) as store:
        return store.execute("SELECT count(*) FROM listens").fetchone()[0]


def _run(*args: str, data: bytes | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", CODE, "run", *args, "--quiet"],
        input=None if data is None else data.decode(),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_standard_input(tmp_path: Path) -> None:
    db = tmp_path / "k.db"
    done = _run("--db", str(db), "-", data=json.dumps(EXPORT).encode())
    assert done.returncode == 0, done.stderr
    assert _listens(db) == 5


def test_bad_standard_input_names_stdin(tmp_path: Path) -> None:
    done = _run("--db", str(tmp_path / "k.db"), "--plugin", "maloja", "-", data=b'{"scrob')
    assert done.returncode == 1
    assert done.stderr.startswith("koito-import: error: <stdin>")
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "export.fifo"
    os.mkfifo(fifo)

    def feed() -> None:
        with fifo.open("w") as f:
            json.dump(EXPORT, f)

    writer = threading.Thread(target=feed)
    writer.start()
    db = tmp_path / "k.db"
    done = _run("--db", str(db), str(fifo))
    writer.join(timeout=10)
    assert done.returncode == 0, done.stderr
    assert _listens(db) == 5


def test_process_substitution(tmp_path: Path) -> None:
    src = tmp_path / "export.json"
    src.write_text(json.dumps(EXPORT))
    db = tmp_path / "k.db"
    script = f'{sys.executable} -c "{CODE}" run --quiet --db {db} <(cat {src})'
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert _listens(db) == 5


def test_standard_input_only_once(tmp_path: Path) -> None:
    done = _run("--db", str(tmp_path / "k.db"), "-", "-", data=b"[]")
    assert done.returncode == 2 and "only once" in done.stderr
