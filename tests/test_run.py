"""``koito-import run`` end to end: what lands in the database and what the user is told."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from koito_import.cli import main
from koito_import.stores import open_store

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "maloja_export.json"


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(list(args))
    out, err = capsys.readouterr()
    return int(done.value.code or 0), out, err


def scrobble(t: int, artist: str = "A", title: str = "T", album: str | None = "Al") -> dict:
    return {
        "time": t,
        "track": {
            "artists": [artist],
            "title": title,
            "album": {"albumtitle": album} if album is not None else None,
        },
    }


def maloja(path: Path, *items: dict) -> Path:
    path.write_text(json.dumps({"maloja": {"export_time": 1}, "scrobbles": list(items)}))
    return path


def count(db: str, table: str) -> int:
    with open_store(db) as store:
        return store.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_json_summary_of_the_sample(capsys, db_target: str) -> None:
    code, out, err = cli(capsys, "run", str(EXAMPLE), "--db", db_target, "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["read"] == 32
    assert summary["skipped"] == {"missing_title": 1}
    assert summary["duplicates"] == 1
    assert summary["inserted"] == 30
    assert (summary["new_artists"], summary["new_albums"], summary["new_tracks"]) == (6, 5, 10)
    assert count(db_target, "listens") == 30
    code, out, _ = cli(capsys, "run", str(EXAMPLE), "--db", db_target, "--json")
    again = json.loads(out)
    # Every importable listen was heard before (the file's exact duplicate too).
    assert (again["inserted"], again["already_present"], again["new_tracks"]) == (0, 31, 0)


def test_per_listen_mode_gives_the_same_counts(capsys, tmp_path: Path) -> None:
    db = str(tmp_path / "k.db")
    code, out, err = cli(capsys, "run", str(EXAMPLE), "--db", db, "--json", "--mode", "per-listen")
    assert code == 0, err
    assert json.loads(out)["inserted"] == 30


def test_summary_table_on_stderr(capsys, tmp_path: Path) -> None:
    code, out, err = cli(capsys, "run", str(EXAMPLE), "--db", str(tmp_path / "k.db"))
    assert code == 0
    assert out == ""
    for row in (
        "listens read",
        "skipped: missing_title",
        "duplicates in input",
        "inserted",
        "already present",
        "new artists",
        "listens per second",
    ):
        assert row in err


def test_import_window(capsys, tmp_path: Path) -> None:
    f = maloja(
        tmp_path / "m.json",
        scrobble(100, title="a"),
        scrobble(200, title="b"),
        scrobble(300, title="c"),
    )
    db = str(tmp_path / "k.db")
    code, out, err = cli(
        capsys, "run", str(f), "--db", db, "--since", "150", "--until", "250", "--json"
    )
    assert code == 0, err
    assert json.loads(out)["skipped"] == {"outside_window": 2}
    assert count(db, "listens") == 1


def test_window_from_koito_environment(capsys, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("KOITO_IMPORT_AFTER_UNIX", "150")
    f = maloja(tmp_path / "m.json", scrobble(100, title="a"), scrobble(200, title="b"))
    code, out, _ = cli(capsys, "run", str(f), "--db", str(tmp_path / "k.db"), "--json")
    assert code == 0 and json.loads(out)["inserted"] == 1


def test_dry_run_writes_nothing(capsys, tmp_path: Path) -> None:
    db = tmp_path / "k.db"
    code, out, err = cli(capsys, "run", str(EXAMPLE), "--db", str(db), "--dry-run", "--json")
    assert code == 0, err
    assert json.loads(out)["inserted"] == 30
    assert not db.exists()
    cli(capsys, "run", str(EXAMPLE), "--db", str(db), "--quiet")
    before = db.read_bytes()
    code, out, _ = cli(
        capsys,
        "run",
        str(maloja(tmp_path / "new.json", scrobble(5, "New"))),
        "--db",
        str(db),
        "--dry-run",
        "--json",
    )
    assert json.loads(out)["new_artists"] == 1
    assert count(str(db), "artists") == 6
    assert db.read_bytes() == before


def test_files_are_imported_in_the_order_given(capsys, tmp_path: Path) -> None:
    # [A] then [A, B]: two tracks; the other order: one (Koito's order effect).
    solo = tmp_path / "solo.json"
    solo.write_text(json.dumps([scrobble(1)]))
    duo = tmp_path / "duo.json"
    duo.write_text(
        json.dumps(
            [
                {
                    "time": 2,
                    "track": {"artists": ["A", "B"], "title": "T", "album": {"albumtitle": "Al"}},
                }
            ]
        )
    )
    first, second = str(tmp_path / "1.db"), str(tmp_path / "2.db")
    assert cli(capsys, "run", "-p", "maloja", str(solo), str(duo), "--db", first, "-q")[0] == 0
    assert cli(capsys, "run", "-p", "maloja", str(duo), str(solo), "--db", second, "-q")[0] == 0
    assert (count(first, "tracks"), count(second, "tracks")) == (2, 1)


def test_file_without_importable_listens_is_a_summary_row(capsys, tmp_path: Path) -> None:
    """Real exports hold such files (Spotify's video histories): a row, not a failure."""
    f = maloja(tmp_path / "m.json", scrobble(1, title=""), scrobble(2, artist=""))
    good = maloja(tmp_path / "good.json", scrobble(3))
    db = str(tmp_path / "k.db")
    code, out, err = cli(capsys, "run", str(f), str(good), "--db", db, "--json")
    assert code == 0, err
    files = json.loads(out)["files"]
    assert [x["path"] for x in files] == [str(f), str(good)]
    assert files[0]["note"] and "missing_title: 1" in files[0]["note"]
    assert files[0]["error"] is None and files[1]["note"] is None
    assert count(db, "listens") == 1


def test_a_bad_file_does_not_stop_the_others(capsys, tmp_path: Path) -> None:
    good = maloja(tmp_path / "good.json", scrobble(3))
    bad = tmp_path / "bad.json"
    bad.write_text('{"scrobbles": [')
    later = maloja(tmp_path / "later.json", scrobble(4, title="Other"))
    db = str(tmp_path / "k.db")
    code, out, err = cli(capsys, "run", str(good), str(bad), str(later), "--db", db, "--json")
    assert code == 1
    assert [x["error"] is not None for x in json.loads(out)["files"]] == [False, True, False]
    errors = [line for line in err.splitlines() if line.startswith("koito-import: error: ")]
    assert len(errors) == 1 and str(bad) in errors[0]
    assert count(db, "listens") == 2


def test_a_missing_file_is_noticed_before_anything_is_written(capsys, tmp_path: Path) -> None:
    good = maloja(tmp_path / "good.json", scrobble(3))
    db = tmp_path / "k.db"
    code, _, err = cli(capsys, "run", str(good), str(tmp_path / "nope.json"), "--db", str(db))
    assert code == 1
    assert err == f"koito-import: error: {tmp_path / 'nope.json'}: no such file\n"
    assert not db.exists()


def test_truncated_file_writes_nothing(capsys, db_target: str, tmp_path: Path) -> None:
    good = maloja(tmp_path / "good.json", *[scrobble(t, title=f"t{t}") for t in range(1, 400)])
    cut = tmp_path / "cut_maloja.json"
    cut.write_bytes(good.read_bytes()[:-300])
    code, _, err = cli(capsys, "run", str(cut), "--db", db_target)
    assert code == 1
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert str(cut) in err
    assert count(db_target, "listens") == 0 and count(db_target, "artists") == 0


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.json", None, "missing.json"),
        ("binary.json", b"\x00\xff\x13garbage" * 50, "binary.json"),
        ("listenbrainz_bad.zip", b"PK\x03\x04 not really a zip", "listenbrainz_bad.zip"),
    ],
)
def test_bad_files_are_one_line_errors(
    capsys, tmp_path: Path, name: str, content: bytes | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    code, _, err = cli(capsys, "run", str(path), "--db", str(tmp_path / "k.db"))
    assert code == 1
    assert len(err.strip().splitlines()) == 1 and message in err and "Traceback" not in err


def test_bad_file_stops_the_run_but_earlier_files_stay(capsys, tmp_path: Path) -> None:
    good = maloja(tmp_path / "good.json", scrobble(1))
    bad = tmp_path / "bad_maloja.json"
    bad.write_text('{"scrobbles": [')
    db = str(tmp_path / "k.db")
    code, _, err = cli(capsys, "run", str(good), str(bad), "--db", db)
    assert code == 1 and "bad_maloja.json" in err
    assert count(db, "listens") == 1


def test_unknown_plugin_and_mode_are_usage_errors(capsys, tmp_path: Path) -> None:
    code, _, err = cli(
        capsys, "run", str(EXAMPLE), "--plugin", "nope", "--db", str(tmp_path / "k.db")
    )
    assert code == 2 and "nope" in err and "maloja" in err
    code, _, err = cli(
        capsys, "run", str(EXAMPLE), "--mode", "fast", "--db", str(tmp_path / "k.db")
    )
    assert code == 2


def test_undetectable_file_lists_installed_plugins(capsys, tmp_path: Path) -> None:
    f = tmp_path / "notes.txt"
    f.write_text("just some text\n")
    code, _, err = cli(capsys, "run", str(f), "--db", str(tmp_path / "k.db"))
    assert code == 1
    assert "formats: " in err and "listenbrainz" in err


def test_spotify_thirty_second_option(capsys, tmp_path: Path) -> None:
    item = {
        "ts": "2025-01-01T10:00:00Z",
        "ms_played": 45_000,
        "master_metadata_track_name": "T",
        "master_metadata_album_artist_name": "A",
        "master_metadata_album_album_name": "Al",
        "reason_end": "fwdbtn",
    }
    f = tmp_path / "Streaming_History_Audio_2025.json"
    f.write_text(json.dumps([item, {**item, "ts": "2025-01-01T11:00:00Z", "ms_played": 10_000}]))
    db = tmp_path / "k.db"
    code, out, err = cli(capsys, "run", str(f), "--db", str(db), "--json")
    assert code == 0 and "not_trackdone: 2" in json.loads(out)["files"][0]["note"]
    code, out, err = cli(
        capsys, "run", str(f), "--db", str(db), "--json", "--spotify-min-seconds", "30"
    )
    assert code == 0, err
    assert json.loads(out)["inserted"] == 1
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT duration FROM tracks").fetchone() == (45,)


def test_dry_run_reads_a_live_databases_wal_and_creates_nothing(capsys, tmp_path: Path) -> None:
    db = tmp_path / "koito.db"
    export = tmp_path / "maloja_x.json"
    export.write_text(json.dumps({"scrobbles": [scrobble(t) for t in (1, 2, 3)]}))
    code, _, err = cli(capsys, "run", str(export), "--db", str(db), "--quiet")
    assert code == 0, err
    # A "Koito" holding the database open: its last commit sits in the WAL only.
    koito = sqlite3.connect(db)
    koito.execute("PRAGMA wal_autocheckpoint = 0")
    koito.execute("INSERT INTO listens (track_id, listened_at, user_id) VALUES (1, 4, 1)")
    koito.commit()
    assert (tmp_path / "koito.db-wal").stat().st_size > 0
    more = tmp_path / "maloja_y.json"
    more.write_text(json.dumps({"scrobbles": [scrobble(t) for t in (1, 2, 3, 4, 5)]}))
    before = db.read_bytes()
    code, out, err = cli(capsys, "run", str(more), "--db", str(db), "--dry-run", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert (summary["inserted"], summary["already_present"]) == (1, 4)  # second 4: the WAL's
    assert db.read_bytes() == before
    koito.close()
    missing = tmp_path / "missing.db"
    code, _, err = cli(capsys, "run", str(more), "--db", f"sqlite:///{missing}", "--dry-run")
    assert code == 0, err
    assert not missing.exists()


def test_dry_run_refusal_names_the_users_file(capsys, tmp_path: Path) -> None:
    db = tmp_path / "other.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE foo (x)")
    export = tmp_path / "maloja_x.json"
    export.write_text(json.dumps({"scrobbles": [scrobble(1)]}))
    code, _, err = cli(capsys, "run", str(export), "--db", str(db), "--dry-run")
    assert code == 4
    assert str(db) in err and "koito-import-dry-" not in err


def test_dry_run_on_postgresql_writes_nothing_not_even_the_schema(
    capsys, tmp_path: Path, pg_url: str
) -> None:
    a, b = tmp_path / "maloja_a.json", tmp_path / "maloja_b.json"
    a.write_text(json.dumps({"scrobbles": [scrobble(t) for t in (1, 2, 3)]}))
    b.write_text(json.dumps({"scrobbles": [scrobble(t, artist="B") for t in (4, 5)]}))
    code, out, err = cli(capsys, "run", str(a), str(b), "--db", pg_url, "--dry-run", "--json")
    assert code == 0, err
    assert json.loads(out)["inserted"] == 5
    import psycopg

    with psycopg.connect(pg_url) as conn:
        tables = conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()"
        ).fetchone()[0]
    assert tables == 0


def test_dry_run_on_postgresql_with_known_tracks_twice(capsys, tmp_path: Path, pg_url: str) -> None:
    a, c = tmp_path / "maloja_a.json", tmp_path / "maloja_c.json"
    a.write_text(json.dumps({"scrobbles": [scrobble(t) for t in (1, 2, 3)]}))
    c.write_text(json.dumps({"scrobbles": [scrobble(t) for t in (10, 11)]}))
    assert cli(capsys, "run", str(a), "--db", pg_url, "--quiet")[0] == 0
    code, out, err = cli(capsys, "run", str(c), str(c), "--db", pg_url, "--dry-run", "--json")
    assert code == 0, err
    assert [f["inserted"] for f in json.loads(out)["files"]] == [2, 2]
    assert count(pg_url, "listens") == 3


def test_a_koito_database_without_its_user_is_a_clear_error(
    capsys, db_target: str, tmp_path
) -> None:
    export = maloja(tmp_path / "maloja.json", scrobble(1))
    with open_store(db_target) as store, store.transaction():
        store.execute("DELETE FROM api_keys")
        store.execute("DELETE FROM users")
    code, _, err = cli(capsys, "run", str(export), "--db", db_target)
    assert code == 4
    assert "has no user to import the listens for" in err
    assert len(err.strip().splitlines()) == 1
    assert count(db_target, "listens") == 0
