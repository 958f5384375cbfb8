"""Fuzzed inputs: never a traceback, never an internal error, nothing written by a failed file.

A seeded mutator (deterministic: the same cases every run) damages the project's own
fixture of every format: bytes flipped, cut short, spans repeated or deleted, numbers
made huge, strings padded with NULs and spaces, types swapped. Each case is imported
in-process into a database that holds one good import already.
"""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest

from koito_import.cli import main
from koito_import.stores import open_store
from tests.snapshot import table_rows

pytestmark = pytest.mark.slow  # plugins and stores: the twins are proven equal elsewhere

FIXTURES = Path(__file__).resolve().parent / "fixtures"
SOURCES = {
    "maloja": FIXTURES / "maloja" / "maloja_export.json",
    "spotify": FIXTURES / "spotify" / "Streaming_History_Audio_2023.json",
    "lastfm": FIXTURES / "lastfm" / "recenttracks-tester-1700000000.json",
    "listenbrainz": FIXTURES / "listenbrainz" / "listens.jsonl",
    "koito": FIXTURES / "koito" / "koito_export_v1.json",
}
CASES_PER_FORMAT = 60

_TOKENS = [
    b"null",
    b"[]",
    b"{}",
    b'""',
    b"true",
    b"-1",
    b"1e308",
    b"99999999999999999999999",
    b'"\\u0000"',
    b'"   "',
    b'"\\ud800"',
    b"0",
    b'"x"',
    b",",
    b":",
    b"]",
    b"}",
]


def mutate(data: bytes, rng: random.Random) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not buf:
            break
        i = rng.randrange(len(buf))
        op = rng.randrange(6)
        if op == 0:
            buf[i] = rng.randrange(256)
        elif op == 1:
            del buf[i : i + rng.randint(1, 40)]
        elif op == 2:
            j = min(len(buf), i + rng.randint(1, 200))
            buf[i:i] = buf[i:j]
        elif op == 3:
            buf[i:i] = rng.choice(_TOKENS)
        elif op == 4:
            buf = buf[: rng.randrange(len(buf) + 1)]
        else:
            # Replace the value after a colon with another token.
            k = buf.find(b":", i)
            if k != -1:
                end = k + 1
                while end < len(buf) and buf[end] not in b",}]":
                    end += 1
                buf[k + 1 : end] = rng.choice(_TOKENS)
    return bytes(buf)


@pytest.fixture(scope="module")
def base_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Koito database holding one good import (so a failed file has something to spare)."""
    path = tmp_path_factory.mktemp("fuzz") / "base.db"
    with pytest.raises(SystemExit) as done:
        main(["run", str(SOURCES["maloja"]), "--db", str(path), "--quiet"])
    assert done.value.code in (0, None)
    return path


def _check_case(target: str, path: Path, capsys: pytest.CaptureFixture[str], label: str) -> None:
    """Import one fuzzed file; it either imports, or fails in one line having written nothing."""
    with open_store(target) as store:
        before = table_rows(store)
    with pytest.raises(SystemExit) as done:
        main(["run", str(path), "--db", target, "--quiet"])
    code = int(done.value.code or 0)
    _, err = capsys.readouterr()
    assert code in (0, 1), (label, code, err)
    assert "Traceback" not in err, (label, err)
    if code:
        assert len(err.strip().splitlines()) == 1, (label, err)
        with open_store(target) as store:
            assert table_rows(store) == before, (label, "a failed file wrote")


@pytest.mark.parametrize("fmt", sorted(SOURCES))
def test_fuzzed_files(
    fmt: str, base_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = random.Random(f"koito-import-fuzz-{fmt}")
    original = SOURCES[fmt].read_bytes()
    for case in range(CASES_PER_FORMAT):
        path = tmp_path / f"{case}-{SOURCES[fmt].name}"
        path.write_bytes(mutate(original, rng))
        db = tmp_path / "k.db"
        shutil.copyfile(base_db, db)
        _check_case(str(db), path, capsys, f"{fmt} case {case}")
        path.unlink()


@pytest.mark.parametrize("fmt", sorted(SOURCES))
def test_fuzzed_files_postgresql(
    fmt: str, pg_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Fewer cases, on PostgreSQL: what only its types refuse (times, integers, text)."""
    rng = random.Random(f"koito-import-fuzz-pg-{fmt}")
    original = SOURCES[fmt].read_bytes()
    for case in range(CASES_PER_FORMAT // 4):
        path = tmp_path / f"{case}-{SOURCES[fmt].name}"
        path.write_bytes(mutate(original, rng))
        _check_case(pg_url, path, capsys, f"{fmt} case {case} (PostgreSQL)")
