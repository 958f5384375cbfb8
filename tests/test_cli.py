"""The command line as a user meets it: exit codes, one-line errors, no tracebacks."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson
import pytest

from koito_import import __version__, plugins
from koito_import.cli import main


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(list(args))
    out, err = capsys.readouterr()
    return int(done.value.code or 0), out, err


def test_version_names_the_normalize_implementation(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "--version")
    assert code == 0
    assert out.startswith(f"koito-import {__version__} (normalize: ")


def test_help_lists_commands(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "--help")
    assert code == 0
    for command in ("run", "submit", "detect", "plugins"):
        assert command in out


def test_submit_twice_lands_on_the_same_track(
    capsys: pytest.CaptureFixture[str], db_target: str
) -> None:
    args = ("submit", "--artist", "Aurora Lane", "--track", "Paper Boats", "--db", db_target)
    code, out, err = cli(capsys, *args, "--time", "2025-01-01T10:00:00Z")
    assert code == 0, err
    assert out.strip().endswith("track 1 (new listen)")
    code, out, _ = cli(capsys, *args, "--time", "1735725600")  # the same second
    assert code == 0 and out.strip().endswith("track 1 (already present)")


def test_the_cache_command_is_gone(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "cache", "clear")
    assert code == 2 and "cache" in err


def test_submit_invalid_listen_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = cli(
        capsys, "submit", "--artist", " ", "--track", "T", "--db", str(tmp_path / "k.db")
    )
    assert code == 2
    assert err.strip() == "koito-import: error: listen not imported: missing_artist"


def test_bad_time_is_a_usage_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = cli(
        capsys,
        "submit",
        "--artist",
        "A",
        "--track",
        "T",
        "--time",
        "yesterday",
        "--db",
        str(tmp_path / "k.db"),
    )
    assert code == 2
    assert "--time 'yesterday'" in err and "Traceback" not in err


def test_foreign_sqlite_database_is_refused_untouched(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db = tmp_path / "other.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE notes (body TEXT)")
    before = db.read_bytes()
    code, _, err = cli(capsys, "submit", "--artist", "A", "--track", "T", "--db", str(db))
    assert code == 4
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert db.read_bytes() == before


def test_missing_folder_is_a_database_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, _, err = cli(
        capsys, "submit", "--artist", "A", "--track", "T", "--db", str(tmp_path / "no" / "k.db")
    )
    assert code == 3
    assert "does not exist" in err and len(err.strip().splitlines()) == 1


def test_unreachable_postgres_is_one_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    url = f"postgresql://nobody@/koito?host={tmp_path}&connect_timeout=2"
    code, _, err = cli(capsys, "submit", "--artist", "A", "--track", "T", "--db", url)
    assert code == 3
    assert err.startswith("koito-import: error: cannot connect to postgresql://nobody@")
    assert len(err.strip().splitlines()) == 1


def test_debug_shows_the_traceback(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = cli(
        capsys,
        "--debug",
        "submit",
        "--artist",
        "A",
        "--track",
        "T",
        "--db",
        str(tmp_path / "no" / "k.db"),
    )
    assert code == 3 and "Traceback" in err


def test_database_url_from_environment(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "env.db"
    monkeypatch.setenv("KOITO_DATABASE_URL", f"sqlite:///{db}")
    code, _, err = cli(capsys, "submit", "--artist", "A", "--track", "T")
    assert code == 0, err
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM listens").fetchone()[0] == 1


@pytest.mark.slow
def test_ctrl_c_exits_130_and_leaves_whole_transactions(tmp_path: Path) -> None:
    import json
    import signal
    import subprocess
    import sys
    import time

    export = tmp_path / "big_maloja.json"
    items = [
        {"time": t, "track": {"artists": [f"Artist {t % 5000}"], "title": f"T{t}", "album": None}}
        for t in range(300_000)
    ]
    export.write_text(json.dumps({"scrobbles": items}))
    db = tmp_path / "k.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "koito_import.cli", "run", str(export), "--db", str(db), "-q"],
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(1.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert err.strip().splitlines()[-1].startswith("koito-import: error: interrupted; ")
    # Whole transactions only: no database (the run created it and wrote no listen), or
    # one the same command completes.
    if db.exists():
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        subprocess.run(
            [sys.executable, "-m", "koito_import.cli", "run", str(export), "--db", str(db), "-q"],
            check=True,
        )
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT count(*) FROM listens").fetchone()[0] == 300_000


def _with_password(url: str, password: str) -> str:
    scheme, rest = url.split("://", 1)
    userinfo, host = rest.split("@", 1) if "@" in rest else ("", rest)
    user = userinfo.split(":", 1)[0] or "postgres"
    return f"{scheme}://{user}:{password}@{host}"


@pytest.mark.parametrize("password", ["s3cr%t", "hunter2"])
def test_a_password_is_never_printed(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    password: str,
) -> None:
    export = tmp_path / "maloja_x.json"
    export.write_text('{"scrobbles": [{"time": 1, "track": {"artists": ["A"], "title": "T"}}]}')
    bad_host = f"postgresql://bob:{password}@[::1/koito"
    for url in (f"postgresql://bob:{password}@/koito?host={tmp_path}", bad_host):
        for args in (("--dry-run",), ("--dry-run", "--json"), ()):
            code, out, err = cli(capsys, "run", str(export), "--db", url, *args)
            assert code == 3, err
            assert password not in out + err
            assert len(err.strip().splitlines()) == 1
        monkeypatch.setenv("KOITO_DATABASE_URL", url)
        code, out, err = cli(capsys, "run", str(export), "--dry-run", "--json")
        assert password not in out + err
        monkeypatch.delenv("KOITO_DATABASE_URL")


def test_a_dry_run_summary_names_the_database_without_password(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, pg_url: str
) -> None:
    export = tmp_path / "maloja_x.json"
    export.write_text('{"scrobbles": [{"time": 1, "track": {"artists": ["A"], "title": "T"}}]}')
    url = _with_password(pg_url, "hunter2")
    code, out, err = cli(capsys, "run", str(export), "--db", url, "--dry-run", "--json")
    assert "hunter2" not in out + err
    if code == 0:  # the embedded server trusts local connections, whatever the password
        assert orjson.loads(out)["database"].startswith("postgresql://")


def test_short_help_and_python_dash_m() -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "koito_import", "-h"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and "run" in done.stdout and "submit" in done.stdout


def test_default_target_follows_koito_config_dir(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("KOITO_DATABASE_URL", raising=False)
    monkeypatch.setenv("KOITO_CONFIG_DIR", str(tmp_path / "etc-koito"))
    (tmp_path / "etc-koito").mkdir()
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(capsys, "submit", "--artist", "A", "--track", "T")
    assert code == 0, err
    assert (tmp_path / "etc-koito" / "koito.db").exists()
    assert not (tmp_path / "koito.db").exists()


FIXTURES = Path(__file__).resolve().parent / "fixtures"
PANO = FIXTURES / "unsupported" / "pano_scrobbler.jsonl"


def test_detect_reports_every_file_and_fails_at_the_end(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    maloja = FIXTURES / "maloja" / "maloja_export.json"
    spotify = FIXTURES / "spotify" / "StreamingHistory_music_0.json"
    missing = tmp_path / "missing.json"
    empty = tmp_path / "empty.json"
    empty.write_bytes(b"")
    code, out, err = cli(
        capsys, "detect", str(maloja), str(PANO), str(missing), str(empty), str(spotify)
    )
    assert code == 1
    assert out.splitlines() == [
        f"{maloja}: maloja (confidence 100)",
        f"{PANO}: no plugin reads it",
        f"{missing}: error: no such file",
        f"{empty}: no plugin reads it (the file is empty)",
        f"{spotify}: spotify (confidence 95)",
    ]
    assert len(err.splitlines()) == 1
    assert err.startswith("koito-import: error: no plugin reads 2 of 5 files (formats: ")
    assert "listenbrainz" in err and "1 of 5 files cannot be read" in err


def test_detect_exits_0_when_every_file_is_read(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    jsonl = FIXTURES / "listenbrainz" / "listens.jsonl"
    code, out, err = cli(capsys, "detect", str(jsonl), str(jsonl))
    assert (code, err) == (0, "")
    assert out == f"{jsonl}: listenbrainz (confidence 100)\n" * 2


def test_detect_only_a_missing_file_is_exit_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, err = cli(capsys, "detect", str(tmp_path / "nope.json"))
    assert code == 1
    assert out == f"{tmp_path / 'nope.json'}: error: no such file\n"
    assert err == "koito-import: error: 1 of 1 files cannot be read\n"


def test_detect_has_its_own_help(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "detect", "--help")
    assert code == 0
    assert "Files to look at; nothing is imported." in out
    assert "imported in the order given" not in out  # run's help for FILES
    assert "no plugin reads it" in out


def test_run_says_no_plugin_reads_a_pano_scrobbler_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db = tmp_path / "koito.db"
    for name in ("pano_scrobbler.jsonl", "listenbrainz_export.jsonl"):
        path = tmp_path / name
        path.write_bytes(PANO.read_bytes())
        code, out, err = cli(capsys, "run", str(path), "--db", str(db))
        assert code == 1
        formats = ", ".join(plugins.plugin_names())
        assert err == f"koito-import: error: {path}: no plugin reads it (formats: {formats})\n"
        assert "listenbrainz" in formats and "bad_timestamp" not in out + err
        assert not db.exists()


def test_window_errors_name_their_option(capsys, tmp_path) -> None:
    from koito_import.cli import main

    export = tmp_path / "maloja.json"
    export.write_text('{"scrobbles": []}')
    db = tmp_path / "k.db"
    for args, message in (
        (["--since", "yesterday"], "--since (KOITO_IMPORT_AFTER_UNIX) 'yesterday' is neither"),
        (["--until", "soon"], "--until (KOITO_IMPORT_BEFORE_UNIX) 'soon' is neither"),
        (["--since", "2024-01-02", "--until", "2024-01-01"], "--since '2024-01-02' is after"),
    ):
        try:
            main(["run", str(export), "--db", str(db), *args])
        except SystemExit as done:
            code = done.code
        err = capsys.readouterr().err
        assert code == 2, err
        assert err.startswith(f"koito-import: error: {message}")
        assert not db.exists()


def test_help_shows_examples_and_exit_codes(capsys) -> None:
    from koito_import.cli import main

    try:
        main(["--help"])
    except SystemExit as done:
        assert done.code == 0
    out = capsys.readouterr().out
    assert "koito-import run my_spotify_data.zip" in out
    assert "Exit codes: 0 success" in out and "143 terminated" in out


def test_shell_completion_through_typer(tmp_path) -> None:
    import os
    import subprocess
    import sys

    code = "from koito_import.cli import main; main()"
    shown = subprocess.run(
        [sys.executable, "-c", code, "--show-completion", "bash"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shown.returncode == 0, shown.stderr
    assert "_KOITO_IMPORT_COMPLETE" in shown.stdout
    env = {
        **os.environ,
        "_KOITO_IMPORT_COMPLETE": "complete_bash",
        "COMP_WORDS": "koito-import ru",
        "COMP_CWORD": "1",
    }
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.stdout.split() == ["run"]


def test_option_parser_errors_are_one_line_in_our_style(capsys) -> None:
    from koito_import.cli import main

    for args, message in (
        (["run", "--bogus", "x"], "No such option: --bogus (see 'koito-import run --help')"),
        (["nosuch"], "No such command 'nosuch'. (see 'koito-import --help')"),
    ):
        try:
            main(args)
        except SystemExit as done:
            assert done.code == 2
        err = capsys.readouterr().err
        assert err == f"koito-import: error: {message}\n"


def test_mode_is_a_choice(capsys) -> None:
    from koito_import.cli import main

    try:
        main(["run", "x.json", "--mode", "fast"])
    except SystemExit as done:
        assert done.code == 2
    err = capsys.readouterr().err
    assert "'fast' is not one of 'bulk', 'per-listen'" in err
