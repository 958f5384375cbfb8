"""A writer configured like Koito beside a large SQLite import: does it ever fail?

Koito opens koito.db with ``busy_timeout=5000`` and writes a few rows per scrobble. This
starts such a writer as its own process (a new artist and alias every ``--every``
seconds, in ``BEGIN IMMEDIATE`` transactions like Koito's), runs ``koito-import run`` on a
generated Maloja export into the same database, and prints how many of the writer's
transactions succeeded, failed, and the longest one took (its wait for the lock)::

    python -m benchmarks.live_writer --listens 1000000

tests/test_live_koito.py runs the same writer through a smaller import.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: The writer process: ``python -c WRITER DB STOP_FILE EVERY``; prints "ok failed longest".
WRITER = r"""
import os, sqlite3, sys, time
db, stop_file, every = sys.argv[1], sys.argv[2], float(sys.argv[3])
conn = sqlite3.connect(db, timeout=5.0, isolation_level=None)
conn.execute("PRAGMA journal_mode = WAL")
ok = failed = n = 0
longest = 0.0
while not os.path.exists(stop_file):
    time.sleep(every)
    n += 1
    began = time.perf_counter()
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("INSERT INTO artists (musicbrainz_id) VALUES (NULL)")
        aid = conn.execute("SELECT last_insert_rowid()").fetchone()[0]
        conn.execute(
            "INSERT INTO artist_aliases (artist_id, alias, source, is_primary) "
            "VALUES (?, ?, 'Canonical', 1)", (aid, f"Live {n}"))
        conn.execute("COMMIT")
        ok += 1
    except sqlite3.OperationalError as exc:
        failed += 1
        print("FAILED", exc, file=sys.stderr, flush=True)
        try:
            conn.execute("ROLLBACK")
        except sqlite3.OperationalError:
            pass
    longest = max(longest, time.perf_counter() - began)
print(ok, failed, round(longest, 3), flush=True)
"""

CLI = "from koito_import.cli import main; main()"


def start_writer(db: Path, stop: Path, every: float = 0.2) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db), str(stop), str(every)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop_writer(proc: subprocess.Popen[str], stop: Path) -> tuple[int, int, float, str]:
    """(ok, failed, longest seconds, stderr) of a writer told to stop."""
    stop.touch()
    out, err = proc.communicate(timeout=60)
    ok, failed, longest = out.split()
    return int(ok), int(failed), float(longest), err


def main() -> None:
    from benchmarks import generate
    from koito_import.stores import open_store

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--listens", type=int, default=1_000_000)
    ap.add_argument("--every", type=float, default=0.2)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        export = generate.write_export(root / "big.json", "maloja", args.listens, seed=22)
        for beside in (False, True):
            db = root / f"koito-{beside}.db"
            open_store(str(db)).close()
            stop = root / f"stop-{beside}"
            writer = start_writer(db, stop, args.every) if beside else None
            began = time.perf_counter()
            subprocess.run(
                [sys.executable, "-c", CLI, "run", str(export), "--db", str(db), "--quiet"],
                check=True,
            )
            took = time.perf_counter() - began
            if writer is None:
                print(f"import alone: {took:.2f} s")
            else:
                ok, failed, longest, _ = stop_writer(writer, stop)
                print(
                    f"import beside the writer: {took:.2f} s; writer: {ok} ok, {failed} "
                    f"failed, longest transaction {longest:.3f} s"
                )


if __name__ == "__main__":
    main()
