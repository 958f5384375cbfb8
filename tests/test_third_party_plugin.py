"""A third-party plugin for real: pip-install the example distribution, then use it.

No monkeypatching of the plugin manager: the example package is installed into this
environment, discovered through its entry point by a fresh ``koito-import`` process,
listed, used for detection and for an import, and uninstalled afterwards.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # installs things; independent of the compiled hot path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "koito-import-rockbox"
LOG = Path(__file__).resolve().parent / "fixtures" / "rockbox" / "scrobbler.log"
CLI = [sys.executable, "-m", "koito_import.cli"]


def pip(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", *args],
        check=True,
    )


@pytest.fixture(scope="module")
def rockbox_installed() -> Iterator[None]:
    pip("install", "--no-deps", "--no-build-isolation", "--no-index", str(EXAMPLE))
    try:
        yield
    finally:
        pip("uninstall", "-y", "koito-import-rockbox")


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120)


def test_plugin_is_listed(rockbox_installed: None) -> None:
    done = run("plugins", "--json")
    assert done.returncode == 0, done.stderr
    rows = {p["name"]: p for p in json.loads(done.stdout)}
    assert rows["rockbox"]["package"] == "koito-import-rockbox"
    assert rows["rockbox"]["version"] == "0.1.0"
    assert {"maloja", "spotify", "lastfm", "listenbrainz", "koito"} <= set(rows)


def test_plugin_detects_its_format(rockbox_installed: None) -> None:
    done = run("detect", str(LOG))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{LOG}: rockbox (confidence 100)"


def test_plugin_imports_through_run(rockbox_installed: None, tmp_path: Path) -> None:
    db = tmp_path / "koito.db"
    done = run("run", str(LOG), "--db", str(db), "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["inserted"] == 2
    assert summary["skipped"] == {
        "skipped_on_player": 1,
        "wrong_field_count": 1,
        "missing_artist": 1,
    }
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT t.title, l.client, l.listened_at, t.duration, t.musicbrainz_id "
            "FROM listens l JOIN tracks_with_title t ON t.id = l.track_id ORDER BY l.listened_at"
        ).fetchall()
    assert rows == [
        ("Northern Glass", "rockbox", 1735690000, 201, None),
        ("Andén Nueve", "rockbox", 1735690600, 240, "5c1d7e0f-2a11-4c0e-9f8c-0b1fbc3e5a9d"),
    ]


def test_load_plugins_env_can_exclude_it(rockbox_installed: None) -> None:
    done = subprocess.run(
        [*CLI, "plugins", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**__import__("os").environ, "KOITO_IMPORT_LOAD_PLUGINS": "maloja,spotify"},
    )
    assert done.returncode == 0, done.stderr
    assert sorted(p["name"] for p in json.loads(done.stdout)) == ["maloja", "spotify"]


def test_a_broken_plugin_is_one_clean_line_on_stderr(tmp_path: Path) -> None:
    """No "UserWarning", no source line: one line, once, and the other plugins work."""
    info = tmp_path / "koito_import_exploding-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: koito-import-exploding\n")
    (info / "entry_points.txt").write_text("[koito_import]\nexploding = koito_import_exploding\n")
    (tmp_path / "koito_import_exploding.py").write_text("raise ImportError('needs libfoo 2')\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp_path), env.get("PYTHONPATH")]))
    sample = ROOT / "tests" / "fixtures" / "maloja" / "maloja_export.json"
    for args in (["detect", str(sample), str(sample)], ["plugins", "--json"]):
        done = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=120, env=env)
        assert done.returncode == 0, done.stderr
        assert done.stderr == (
            "koito-import: warning: plugin 'exploding' could not be loaded: "
            "ImportError: needs libfoo 2\n"
        )
    assert done.stdout and "exploding" not in {p["name"] for p in json.loads(done.stdout)}
