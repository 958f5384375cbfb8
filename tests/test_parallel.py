"""Parse workers (``--workers``): the same result as in-process parsing, or the same error.

Real files, real databases, real worker processes. The size thresholds below which no
worker is started are set to 0 here (``force_workers``) so that small test files go
through the workers too.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
from contextlib import ExitStack
from pathlib import Path

import pytest

from koito_import import parallel, plugins
from koito_import.cli import main
from koito_import.errors import InputError
from koito_import.pipeline import ImportOptions, NoProgress, run_import
from koito_import.records import ParseOptions
from koito_import.stores import open_store
from koito_import.testing import fresh_database
from tests.snapshot import catalog_snapshot

generate = pytest.importorskip("benchmarks.generate")


@pytest.fixture
def force_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(parallel, "MIN_PARALLEL_BYTES", 0)
    monkeypatch.setattr(parallel, "SINGLE_FILE_MIN_BYTES", 0)


@pytest.fixture(autouse=True)
def no_children_left():
    yield
    assert multiprocessing.active_children() == []


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(list(args))
    out, err = capsys.readouterr()
    assert multiprocessing.active_children() == []
    return int(done.value.code or 0), out, err


def scrobble(t: int, artists: list[str], title: str = "T", album: str = "Al") -> dict:
    return {
        "time": t,
        "track": {"artists": artists, "title": title, "album": {"albumtitle": album}},
    }


def write_json(path: Path, items: object) -> Path:
    path.write_text(json.dumps(items))
    return path


def summary_without_timing(out: str) -> dict:
    summary = json.loads(out)
    for key in ("seconds", "listens_per_second", "database"):
        summary.pop(key)
    return summary


def snapshot(db: str) -> dict:
    with open_store(db) as store:
        return catalog_snapshot(store)


@pytest.fixture
def order_files(tmp_path: Path) -> list[Path]:
    """Generated histories around the order effect: [A] then [A, B] vs the reverse."""
    big = generate.write_export(tmp_path / "maloja_big.json", "maloja", 6000, seed=3)
    solo = write_json(tmp_path / "solo_maloja.json", [scrobble(1, ["A"]), scrobble(5, ["A"], "")])
    duo = write_json(tmp_path / "duo_maloja.json", [scrobble(2, ["A", "B"]), scrobble(3, ["B"])])
    spotify = generate.write_export(tmp_path / "Streaming_History_Audio_1.json", "spotify", 3000, 4)
    koito = generate.write_export(tmp_path / "koito_export.json", "koito", 2000, seed=5)
    return [big, solo, duo, spotify, koito]


@pytest.mark.usefixtures("force_workers")
@pytest.mark.parametrize("reverse", [False, True], ids=["A-then-AB", "AB-then-A"])
def test_workers_give_the_same_catalog_and_summary(
    capsys, tmp_path: Path, order_files: list[Path], reverse: bool
) -> None:
    files = [str(f) for f in (order_files[::-1] if reverse else order_files)]
    results = []
    for workers in (0, 1, 2):
        db = str(tmp_path / f"w{workers}.db")
        code, out, err = cli(capsys, "run", *files, "--db", db, "--json", "--workers", str(workers))
        assert code == 0, err
        results.append((summary_without_timing(out), snapshot(db)))
    assert results[0] == results[1] == results[2]
    summary = results[0][0]
    assert summary["skipped"]["missing_title"] >= 1  # solo's blank title
    assert summary["skipped"]["not_trackdone"] >= 1  # Spotify's skipped plays
    assert [f["path"] for f in summary["files"]] == files


@pytest.mark.usefixtures("force_workers")
@pytest.mark.parametrize("reverse", [False, True], ids=["A-then-AB", "AB-then-A"])
def test_workers_on_postgresql_give_the_same_catalog(
    capsys, pg_server_url: str, tmp_path: Path, order_files: list[Path], reverse: bool
) -> None:
    from koito_import.testing import fresh_database

    files = [str(f) for f in (order_files[::-1] if reverse else order_files)]
    results = []
    for workers in (0, 1, 2):
        with fresh_database(pg_server_url) as url:
            code, out, err = cli(
                capsys, "run", *files, "--db", url, "--json", "--workers", str(workers)
            )
            assert code == 0, err
            results.append((summary_without_timing(out), snapshot(url)))
    assert results[0] == results[1] == results[2]


@pytest.mark.usefixtures("force_workers")
def test_order_effect_survives_workers(capsys, tmp_path: Path) -> None:
    solo = write_json(tmp_path / "solo.json", [scrobble(1, ["A"])])
    duo = write_json(tmp_path / "duo.json", [scrobble(2, ["A", "B"])])
    counts = {}
    for workers in ("0", "1", "2"):
        for name, files in (("ab", (solo, duo)), ("ba", (duo, solo))):
            db = str(tmp_path / f"{name}{workers}.db")
            code, _, err = cli(
                capsys,
                "run",
                "-p",
                "maloja",
                *map(str, files),
                "--db",
                db,
                "-q",
                "--workers",
                workers,
            )
            assert code == 0, err
            with open_store(db) as store:
                counts[name, workers] = store.execute("SELECT count(*) FROM tracks").fetchone()[0]
    assert {counts["ab", w] for w in "012"} == {2}
    assert {counts["ba", w] for w in "012"} == {1}


@pytest.mark.usefixtures("force_workers")
@pytest.mark.parametrize("workers", ["1", "2"])
def test_truncated_second_file_is_skipped_like_in_process(
    capsys, tmp_path: Path, db_target: str, workers: str, request: pytest.FixtureRequest
) -> None:
    with ExitStack() as stack:
        _truncated_second_file(capsys, tmp_path, db_target, workers, request, stack)


def _truncated_second_file(
    capsys, tmp_path: Path, db_target: str, workers: str, request, stack: ExitStack
) -> None:
    good = generate.write_export(tmp_path / "good_maloja.json", "maloja", 3000, seed=7)
    whole = generate.write_export(tmp_path / "whole_maloja.json", "maloja", 3000, seed=8)
    cut = tmp_path / "cut_maloja.json"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    third = generate.write_export(tmp_path / "third_maloja.json", "maloja", 500, seed=9)

    # The reference is of the same kind: Koito's backends store padded album titles
    # differently (PostgreSQL adds the trimmed title as an alias).
    if db_target.startswith("postgresql"):
        server = request.getfixturevalue("pg_server_url")
        reference = stack.enter_context(fresh_database(server))
    else:
        reference = str(tmp_path / "reference.db")
    code0, _, err0 = cli(
        capsys, "run", str(good), str(cut), str(third), "--db", reference, "--workers", "0"
    )
    code, _, err = cli(
        capsys, "run", str(good), str(cut), str(third), "--db", db_target, "--workers", workers
    )
    assert code == code0 == 1
    errors = [line for line in err.splitlines() if line.startswith("koito-import: error: ")]
    assert errors == [line for line in err0.splitlines() if line.startswith("koito-import: err")]
    assert len(errors) == 1 and "Traceback" not in err
    assert str(cut) in errors[0]
    # The first and third files are imported, nothing of the truncated one.
    assert snapshot(db_target) == snapshot(reference)
    code, out, _ = cli(capsys, "run", str(third), "--db", db_target, "--json", "--workers", "0")
    assert json.loads(out)["inserted"] == 0
    code, out, _ = cli(capsys, "run", str(good), "--db", db_target, "--json", "--workers", "0")
    assert json.loads(out)["inserted"] == 0


@pytest.mark.usefixtures("force_workers")
def test_detection_and_open_errors_match(capsys, tmp_path: Path) -> None:
    good = generate.write_export(tmp_path / "good_maloja.json", "maloja", 500, seed=7)
    notes = tmp_path / "notes.txt"
    notes.write_text("just some text\n")
    empty = tmp_path / "empty.json"
    empty.write_bytes(b"")
    missing = tmp_path / "missing.json"
    for bad in (notes, empty, missing):
        errs = set()
        for workers in ("0", "1", "2"):
            db = str(tmp_path / f"{bad.stem}{workers}.db")
            code, _, err = cli(capsys, "run", str(good), str(bad), "--db", db, "--workers", workers)
            assert code == 1
            errs.add(err.splitlines()[-1])
            if bad is missing:
                assert not Path(db).exists()  # checked before anything is opened
                continue
            with open_store(db) as store:
                assert store.counts().tracks > 0  # the first file is imported
        assert len(errs) == 1, errs


def test_errors_keep_type_and_message(tmp_path: Path) -> None:
    whole = generate.write_export(tmp_path / "m_maloja.json", "maloja", 2000, seed=2)
    cut = tmp_path / "cut_maloja.json"
    cut.write_bytes(whole.read_bytes()[:-500])
    with pytest.raises(InputError) as local:
        list(plugins.parse(cut, "maloja"))
    with parallel.Prefetcher([cut], None, ParseOptions(), 1) as source:
        name, records = source.open(0)
        assert name == "maloja"
        with pytest.raises(InputError) as remote:
            list(records)
    assert str(remote.value) == str(local.value)
    assert (remote.value.path, remote.value.where, remote.value.reason) == (
        local.value.path,
        local.value.where,
        local.value.reason,
    )
    assert isinstance(remote.value.__cause__, parallel.RemoteTraceback)


@pytest.mark.parametrize("fmt", ["maloja", "spotify", "koito", "listenbrainz-jsonl", "lastfm"])
@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_records_arrive_unchanged_and_in_order(tmp_path: Path, fmt: str, method: str) -> None:
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {method} here")
    files = [
        generate.write_export(tmp_path / f"{i}_{fmt}.json", fmt, 1500, seed=i) for i in (1, 2, 3)
    ]
    with parallel.Prefetcher(
        files, None, ParseOptions(), 2, chunk=100, ahead=2, method=method
    ) as src:
        for i, path in enumerate(files):
            name, records = src.open(i)
            expected_name = plugins.detect(path)[0]
            assert name == expected_name
            assert list(records) == list(plugins.parse(path, expected_name))


def test_small_inputs_are_parsed_in_process(tmp_path: Path) -> None:
    small = write_json(tmp_path / "a.json", [scrobble(1, ["A"])])
    assert not parallel.worth_it([small, small], 2)
    assert not parallel.worth_it([small], 1)
    assert not parallel.worth_it([tmp_path / "nope.json"], 1)
    big = generate.write_export(tmp_path / "big_maloja.json", "maloja", 12000, seed=1)
    assert big.stat().st_size >= parallel.MIN_PARALLEL_BYTES
    assert parallel.worth_it([big, small], 1)
    assert not parallel.worth_it([big, small], 0)
    assert not parallel.worth_it([big], 1)  # one file below SINGLE_FILE_MIN_BYTES


@pytest.mark.usefixtures("force_workers")
def test_interrupt_leaves_no_worker(tmp_path: Path, db_target: str) -> None:
    files = [
        generate.write_export(tmp_path / f"{i}_maloja.json", "maloja", 6000, seed=i)
        for i in (1, 2, 3)
    ]
    seen = []

    class Interrupting(NoProgress):
        def update(self, listens: int, done_bytes: int) -> None:
            if listens:
                seen.append(listens)
                assert multiprocessing.active_children()
                raise KeyboardInterrupt

    with open_store(db_target) as store:
        with pytest.raises(KeyboardInterrupt):
            run_import(store, files, ImportOptions(workers=2), Interrupting())
        assert multiprocessing.active_children() == []
        # The parent's connection is intact after its forked workers ended.
        assert store.counts().listens == 0
        summary = run_import(store, files[:1], ImportOptions(workers=1))
        assert summary.total("inserted") > 0
    assert seen


@pytest.mark.usefixtures("force_workers")
def test_a_worker_killed_midway_is_an_error(tmp_path: Path) -> None:
    files = [
        generate.write_export(tmp_path / f"{i}_maloja.json", "maloja", 20000, seed=i)
        for i in (1, 2)
    ]
    with parallel.Prefetcher(files, None, ParseOptions(), 1, chunk=50, ahead=1) as source:
        _, records = source.open(0)
        next(records)
        (worker,) = multiprocessing.active_children()
        os.kill(worker.pid, signal.SIGKILL)
        with pytest.raises(parallel.WorkerDied, match=r"1_maloja\.json"):
            list(records)


@pytest.mark.usefixtures("force_workers")
def test_worker_env_and_dry_run(capsys, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = [
        generate.write_export(tmp_path / f"{i}_maloja.json", "maloja", 2000, seed=i) for i in (1, 2)
    ]
    monkeypatch.setenv("KOITO_IMPORT_WORKERS", "2")
    db = tmp_path / "k.db"
    code, out, err = cli(capsys, "run", *map(str, files), "--db", str(db), "--json", "--dry-run")
    assert code == 0, err
    assert json.loads(out)["inserted"] > 0 and not db.exists()
    code, _, err = cli(capsys, "run", str(files[0]), "--db", str(db), "--workers", "-1")
    assert code == 2
