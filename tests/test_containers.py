"""What people download: folders, Spotify's zip of folders, gzip, archives on stdin."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from koito_import.inputs import natural_key
from tests.test_run import cli, count, maloja, scrobble

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SPOTIFY = FIXTURES / "spotify"
CODE = "from koito_import.cli import main; main()"


def _spotify_zip(path: Path) -> Path:
    """The shape of ``my_spotify_data.zip``: folders, music beside video and podcasts,
    account files no plugin reads, and a PDF."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        ext = "Spotify Extended Streaming History/"
        zf.write(
            SPOTIFY / "Streaming_History_Audio_2023.json", ext + "Streaming_History_Audio_2023.json"
        )
        video = {
            "ts": "2023-05-02T20:00:00Z",
            "platform": "android",
            "ms_played": 600000,
            "conn_country": "SE",
            "master_metadata_track_name": None,
            "master_metadata_album_artist_name": None,
            "master_metadata_album_album_name": None,
            "spotify_track_uri": None,
            "episode_name": "Episode 12 (video)",
            "episode_show_name": "A Video Podcast",
            "spotify_episode_uri": "spotify:episode:v",
            "audiobook_title": None,
            "reason_start": "clickrow",
            "reason_end": "endplay",
            "shuffle": False,
            "skipped": False,
            "offline": False,
            "incognito_mode": False,
        }
        zf.writestr(ext + "Streaming_History_Video_2023.json", json.dumps([video, video]))
        zf.writestr(ext + "ReadMeFirst_ExtendedStreamingHistory.pdf", b"%PDF-1.4 not a listen")
        acc = "Spotify Account Data/"
        zf.write(SPOTIFY / "StreamingHistory_music_0.json", acc + "StreamingHistory_music_0.json")
        zf.write(
            SPOTIFY / "StreamingHistory_podcast_0.json", acc + "StreamingHistory_podcast_0.json"
        )
        zf.writestr(acc + "Userdata.json", json.dumps({"username": "someone", "country": "SE"}))
        zf.writestr("__MACOSX/._Userdata.json", b"\x00\x05\x16\x07")
    return path


def _files(summary: dict) -> dict[str, dict]:
    return {f["path"]: f for f in summary["files"]}


def test_spotify_zip_of_folders(capsys, tmp_path: Path) -> None:
    archive = _spotify_zip(tmp_path / "my_spotify_data.zip")
    db = str(tmp_path / "k.db")
    code, out, err = cli(capsys, "run", str(archive), "--db", db, "--json")
    assert code == 0, err
    files = _files(json.loads(out))
    ext = f"{archive}:Spotify Extended Streaming History/"
    acc = f"{archive}:Spotify Account Data/"
    assert files[ext + "Streaming_History_Audio_2023.json"]["inserted"] == 2
    assert files[acc + "StreamingHistory_music_0.json"]["inserted"] == 2
    # Video and podcast histories are read, and hold nothing importable: rows, not errors.
    video = files[ext + "Streaming_History_Video_2023.json"]
    assert (video["plugin"], video["read"], video["inserted"]) == ("spotify", 2, 0)
    assert video["error"] is None and video["note"]
    assert files[acc + "StreamingHistory_podcast_0.json"]["note"].startswith("podcast_or_audiobook")
    assert files[acc + "Userdata.json"]["not_read"] == "no plugin reads it"
    assert (
        files[ext + "ReadMeFirst_ExtendedStreamingHistory.pdf"]["not_read"] == "no plugin reads it"
    )
    assert not any("__MACOSX" in name for name in files)
    assert count(db, "listens") == 4


def test_a_folder_natural_order_hidden_files_left_out(capsys, tmp_path: Path) -> None:
    folder = tmp_path / "exports"
    (folder / "more").mkdir(parents=True)
    for n in (10, 2, 1):
        maloja(folder / f"maloja_{n}.json", scrobble(1000 + n, title=f"T{n}"))
    maloja(folder / "more" / "maloja_3.json", scrobble(2000, title="deeper"))
    (folder / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    (folder / "notes.txt").write_text("my exports\n")
    db = str(tmp_path / "k.db")
    code, out, err = cli(capsys, "run", str(folder), "--db", db, "--json")
    assert code == 0, err
    paths = [f["path"] for f in json.loads(out)["files"]]
    assert paths == [
        f"{folder}/maloja_1.json",
        f"{folder}/maloja_2.json",
        f"{folder}/maloja_10.json",
        f"{folder}/more/maloja_3.json",
        f"{folder}/notes.txt",  # listed, not read
    ]
    assert count(db, "listens") == 4


def test_natural_key_keeps_numbered_files_in_order() -> None:
    names = ["StreamingHistory_music_10.json", "StreamingHistory_music_2.json", "a", "a1", "B"]
    assert sorted(names, key=natural_key) == [
        "a",
        "a1",
        "B",
        "StreamingHistory_music_2.json",
        "StreamingHistory_music_10.json",
    ]


def test_json_gz_and_gzip_on_stdin(capsys, tmp_path: Path) -> None:
    plain = maloja(tmp_path / "export.json", scrobble(5), scrobble(6, title="U"))
    packed = tmp_path / "history.json.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    db = str(tmp_path / "k.db")
    code, out, err = cli(capsys, "run", str(packed), "--db", db, "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert [(f["path"], f["plugin"], f["inserted"]) for f in summary["files"]] == [
        (str(packed), "maloja", 2)
    ]
    # gzip is known by its bytes, not its name: also on standard input.
    other = str(tmp_path / "other.db")
    done = subprocess.run(
        [sys.executable, "-c", CODE, "run", "--db", other, "--json", "-"],
        input=packed.read_bytes(),
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["inserted"] == 2
    assert count(other, "listens") == 2


def test_zcat_into_a_named_plugin(tmp_path: Path) -> None:
    plain = maloja(tmp_path / "export.json", scrobble(5))
    db = str(tmp_path / "k.db")
    done = subprocess.run(
        f"gzip -c {plain} | {sys.executable} -c '{CODE}' run --plugin maloja -q --db {db} -",
        shell=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert count(db, "listens") == 1


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("broken.zip", b"PK\x03\x04 this is no zip", "corrupt zip file"),
        ("cut.json.gz", gzip.compress(b'{"scrobbles": []}' * 50)[:30], "corrupt or truncated"),
    ],
)
def test_a_broken_archive_is_one_line_and_nothing_is_created(
    capsys, tmp_path: Path, name: str, data: bytes, message: str
) -> None:
    good = maloja(tmp_path / "good.json", scrobble(1))
    bad = tmp_path / name
    bad.write_bytes(data)
    db = tmp_path / "k.db"
    code, _, err = cli(capsys, "run", str(good), str(bad), "--db", str(db))
    assert code == 1
    assert err.startswith(f"koito-import: error: {bad}: {message}")
    assert len(err.strip().splitlines()) == 1
    # Archives are opened before the database: the good file was not imported either.
    assert not db.exists()


def test_a_folder_no_plugin_reads_is_an_error(capsys, tmp_path: Path) -> None:
    folder = tmp_path / "wrong"
    folder.mkdir()
    (folder / "photo.jpg").write_bytes(b"\xff\xd8\xff\xe0 JFIF")
    code, _, err = cli(capsys, "run", str(folder), "--db", str(tmp_path / "k.db"))
    assert code == 1
    assert (
        err == f"koito-import: error: {folder}: holds no file a plugin reads (1 files looked at)\n"
    )
    assert not (tmp_path / "k.db").exists()


def test_with_a_named_plugin_other_members_are_listed(capsys, tmp_path: Path) -> None:
    archive = _spotify_zip(tmp_path / "my_spotify_data.zip")
    db = str(tmp_path / "k.db")
    code, out, err = cli(capsys, "run", "--plugin", "spotify", str(archive), "--db", db, "--json")
    assert code == 0, err
    files = _files(json.loads(out))
    assert (
        files[f"{archive}:Spotify Account Data/Userdata.json"]["not_read"] == "not a spotify file"
    )
    assert count(db, "listens") == 4


def test_a_listenbrainz_zip_is_read_whole(capsys, tmp_path: Path) -> None:
    export = FIXTURES / "listenbrainz" / "export"
    archive = tmp_path / "listenbrainz_tester_1749780844.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for member in sorted(export.rglob("*")):
            if member.is_file():
                zf.write(member, member.relative_to(export).as_posix())
    db = str(tmp_path / "k.db")
    code, out, err = cli(capsys, "run", str(archive), "--db", db, "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert [(f["path"], f["plugin"]) for f in summary["files"]] == [(str(archive), "listenbrainz")]
    assert summary["inserted"] > 0
    assert count(db, "listens") == summary["inserted"]
