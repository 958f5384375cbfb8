"""Write failures are database errors: exit 3, one line naming the database, nothing lost."""

from __future__ import annotations

import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import psutil
import pytest

from benchmarks import generate
from koito_import.cli import main
from koito_import.stores import open_store
from tests.snapshot import catalog_snapshot

pytestmark = pytest.mark.slow  # signals, disk and processes: independent of the compiled hot path


CODE = "from koito_import.cli import main; main()"


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
        after = conn.execute("SELECT count(*) FROM listens").fetchone()[0]
    # Whole transactions only: none of the file, or some pieces and the message says so
    # (a re-run once there is room completes it: test_kill_... shows re-runs are exact).
    assert after >= before
    assert (after > before) == ("partly imported" in err), err


def _start_import(tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    """A koito-import run with a parse worker (the file is above the worker threshold)."""
    export = generate.write_export(tmp_path / "big_maloja.json", "maloja", 60_000, seed=5)
    db = tmp_path / "koito.db"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from koito_import.cli import main; main()",
            "run",
            str(export),
            "--db",
            str(db),
            "--workers",
            "1",
            "--quiet",
        ],
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, db


def _children(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _wait_for_worker(proc: subprocess.Popen) -> list[psutil.Process]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        kids = _children(proc.pid)
        if kids:
            time.sleep(0.3)  # into the run: the worker is parsing, the main process matching
            return kids
        time.sleep(0.02)
    pytest.fail("the run started no parse worker")


def test_sigterm_ends_the_run_with_143_and_one_line(tmp_path: Path) -> None:
    proc, db = _start_import(tmp_path)
    kids = _wait_for_worker(proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143, err
    assert err.strip().splitlines() == [
        "koito-import: error: terminated (SIGTERM); the transaction under way was rolled "
        "back (the same command again completes the import)"
    ]
    _gone, alive = psutil.wait_procs(kids, timeout=10)
    assert not alive
    if db.exists():
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT count(*) FROM listens").fetchone()[0] == 0


def test_no_worker_outlives_a_killed_main_process(tmp_path: Path) -> None:
    proc, _ = _start_import(tmp_path)
    kids = _wait_for_worker(proc)
    proc.kill()
    proc.wait(timeout=10)
    _gone, alive = psutil.wait_procs(kids, timeout=10)
    for p in alive:
        p.kill()
    assert not alive, "a parse worker outlived the main process"


def _shuffled_with_shared_seconds(src: Path, dst: Path, seed: int) -> Path:
    """The export unsorted, and every fifth scrobble at the second of another one."""
    data = orjson.loads(src.read_bytes())
    rng = random.Random(seed)
    items = data["scrobbles"]
    rng.shuffle(items)
    for i in range(0, len(items), 5):
        items[i]["time"] = items[rng.randrange(len(items))]["time"]
    dst.write_bytes(orjson.dumps(data))
    return dst


@pytest.mark.parametrize("order", ["sorted", "shuffled"])
def test_kill_at_random_points_then_rerun_equals_a_clean_import(tmp_path: Path, order: str) -> None:
    """Runs that commit after every step (the most cuts), killed anywhere, then re-run."""
    export = generate.write_export(tmp_path / "kill_maloja.json", "maloja", 30_000, seed=6)
    if order == "shuffled":
        export = _shuffled_with_shared_seconds(export, tmp_path / "shuffled.json", seed=8)
    args = ["run", str(export), "--quiet", "--workers", "1", "--lock-seconds", "0"]
    clean = tmp_path / "clean.db"
    subprocess.run([sys.executable, "-c", CODE, *args, "--db", str(clean)], check=True)
    with open_store(str(clean)) as store:
        expected = catalog_snapshot(store)
    total = _listens(clean)
    rng = random.Random(7)
    partial = 0
    for n in range(4):
        db = tmp_path / f"killed{n}.db"
        proc = subprocess.Popen([sys.executable, "-c", CODE, *args, "--db", str(db)])
        if n < 2:
            time.sleep(rng.uniform(0.1, 2.0))
        else:
            # Right after some commit: the file is then surely partly written.
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and proc.poll() is None:
                if db.exists() and _listens(db) > n * 1000:
                    break
                time.sleep(0.005)
        proc.kill()
        proc.wait(timeout=10)
        if db.exists():
            partial += 0 < _listens(db) < total
        done = subprocess.run(
            [sys.executable, "-c", CODE, *args, "--db", str(db)], capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        with open_store(str(db)) as store:
            assert catalog_snapshot(store) == expected, f"kill {n}"
    assert partial >= 1, "no kill landed between two commits"


def _listens(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
            return int(conn.execute("SELECT count(*) FROM listens").fetchone()[0])
    except sqlite3.OperationalError:  # not created yet
        return 0
