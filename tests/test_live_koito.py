"""Importing into a SQLite database that a running Koito keeps writing to.

Koito opens koito.db with a busy timeout of 5 s and writes a few rows per scrobble. A
bulk run commits in pieces (``bulk``), at most ``--lock-seconds`` of lock each, with a gap
after each commit, so such a writer never fails; and between its pieces the run notices
the other writer's commits (``PRAGMA data_version``) and matches the rest of the file
against the catalog as that writer left it. "Exact" then means: the database equals the
one Koito's own path gives for the same listens in the same commit order.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import replace
from pathlib import Path

import pytest

from benchmarks import generate, live_writer
from koito_import.bulk import BulkSubmitter, safe_cuts
from koito_import.listen import Listen
from koito_import.stores import open_store
from koito_import.stores.sqlite import SqliteStore
from koito_import.submit import replay, submit_listen
from tests.snapshot import catalog_snapshot, table_rows

pytestmark = pytest.mark.slow  # threads, processes and real time


class KoitoLikeStore(SqliteStore):
    """Koito's own writer: the same matching, but none of koito-import's writer lock."""

    def exclusive(self):  # type: ignore[override]
        return nullcontext()


class Koito(threading.Thread):
    """Scrobbles one listen every ``every`` seconds, as Koito's SubmitListen does.

    Each scrobble is logged (with a monotonic time) while its transaction holds the
    write lock, so the log's order is the commit order.
    """

    def __init__(self, path: Path, listens: list[Listen], every: float) -> None:
        super().__init__(daemon=True)
        self.path, self.listens, self.every = path, listens, every
        self.log: list[tuple[float, Listen]] = []
        self.failures: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        store = KoitoLikeStore(self.path)
        store.conn.execute("PRAGMA busy_timeout = 5000")
        try:
            for listen in self.listens:
                if self.stop.wait(self.every):
                    return
                try:
                    with store.transaction():
                        submit_listen(store, listen)
                        self.log.append((time.perf_counter(), listen))
                except sqlite3.OperationalError as exc:
                    self.failures.append(str(exc))
        finally:
            store.close()


@contextmanager
def running(koito: Koito) -> Iterator[Koito]:
    koito.start()
    try:
        yield koito
    finally:
        koito.stop.set()
        koito.join(timeout=30)


def test_safe_cuts_never_split_a_second() -> None:
    from array import array

    assert list(safe_cuts(array("q", [1, 2, 2, 3]))) == [1, 1, 0, 1, 1]
    assert list(safe_cuts(array("q", [5, 4, 4, 1]))) == [1, 1, 0, 1, 1]
    # Unsorted: a second seen again later closes every cut before its last position.
    assert list(safe_cuts(array("q", [3, 1, 3, 2, 1, 4]))) == [1, 0, 0, 0, 0, 1, 1]
    assert list(safe_cuts(array("q", [2, 1, 1, 3]))) == [1, 1, 0, 1, 1]
    assert list(safe_cuts(array("q", []))) == [1]
    assert list(safe_cuts(array("q", [7]))) == [1, 1]


@pytest.mark.parametrize("ahead", [False, True], ids=["under-the-lock", "matched-ahead"])
def test_import_beside_a_live_writer_equals_koito_in_commit_order(
    tmp_path: Path, ahead: bool
) -> None:
    """The file's pieces and Koito's scrobbles, replayed one by one in commit order.

    Matched ahead, a piece is matched outside the lock and dropped when Koito committed
    meanwhile; either way its catalog is the one at its commit."""
    listens = generate.generate_listens(12_000, seed=21)
    # Koito's scrobbles: the file's artists and titles (so they change what the file
    # matches), at seconds the file does not use.
    top = max(x.time for x in listens)
    live = [replace(x, time=top + 1000 + i, client="koito") for i, x in enumerate(listens[::40])]
    db = tmp_path / "koito.db"
    open_store(str(db)).close()
    store = open_store(str(db))
    store.commit_gap = 0.03
    if ahead:
        submitter = BulkSubmitter(store, commit_every=0.05, chunk_size=512, ahead_rows=1500)
    else:
        submitter = BulkSubmitter(store, commit_every=0.0, chunk_size=512)
    with running(Koito(db, live, every=0.002)) as koito:
        time.sleep(0.05)
        result = submitter.run(listens)
    store.close()
    assert koito.failures == []
    assert result.inserted == len(listens) - result.duplicates - result.already_present
    # Koito really wrote between the run's pieces.
    inside = [t for t, _ in koito.log if submitter.piece_log[0][0] < t < submitter.piece_log[-1][1]]
    assert len(inside) >= 5, (len(inside), submitter.pieces)
    if ahead:
        # Every piece was matched ahead; Koito's commits threw some of that away.
        assert submitter.ahead_taken + submitter.ahead_dropped == submitter.pieces
        assert submitter.ahead_dropped >= 1
    else:
        assert submitter.ahead_taken == submitter.ahead_dropped == 0

    # The same commits, one listen at a time, no cache: Koito's result.
    ref_path = tmp_path / "ref.db"
    open_store(str(ref_path)).close()
    ref = KoitoLikeStore(ref_path)
    events = [(t, "koito", x) for t, x in koito.log]
    start = 0
    # Both times are taken under the write lock, so their order is the commit order.
    for _begun, locked, end in submitter.piece_log:
        events.append((locked, "file", listens[start:end]))
        start = end
    events.sort(key=lambda e: e[0])
    for _, who, what in events:
        if who == "koito":
            with ref.transaction():
                submit_listen(ref, what)
        else:
            with ref.transaction():
                replay(ref, what)
    with open_store(str(db)) as got:
        assert catalog_snapshot(got) == catalog_snapshot(ref)
        a, b = table_rows(ref), table_rows(got)
        for table in a:
            assert b[table] == a[table], table
    ref.close()


def test_a_koito_like_writer_never_fails_during_a_large_import(tmp_path: Path) -> None:
    """busy_timeout 5000, a write every 200 ms, all through a CLI import of a large file."""
    export = generate.write_export(tmp_path / "big.json", "maloja", 150_000, seed=22)
    db = tmp_path / "koito.db"
    open_store(str(db)).close()
    stop = tmp_path / "stop"
    writer = live_writer.start_writer(db, stop, every=0.2)
    try:
        time.sleep(0.5)
        code = "from koito_import.cli import main; main()"
        done = subprocess.run(
            [sys.executable, "-c", code, "run", str(export), "--db", str(db), "--json"],
            capture_output=True,
            text=True,
            timeout=600,
        )
    finally:
        ok, failed, _longest, err = live_writer.stop_writer(writer, stop)
    assert done.returncode == 0, done.stderr
    assert failed == 0, err
    assert ok >= 5
    with sqlite3.connect(db) as conn:
        listens = conn.execute("SELECT count(*) FROM listens").fetchone()[0]
        live = conn.execute(
            "SELECT count(*) FROM artist_aliases WHERE alias LIKE 'Live %'"
        ).fetchone()[0]
    assert listens > 100_000
    assert live == ok
