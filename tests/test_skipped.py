"""``--skipped FILE``: which items were skipped, where they are, and what they were."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from koito_import import parallel
from koito_import.pipeline import ImportOptions, NoProgress, run_import
from koito_import.stores import open_store
from tests.test_run import cli, count, maloja, scrobble


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("mode", ["bulk", "per-listen"])
def test_every_skip_is_written_with_its_item(capsys, db_target: str, tmp_path: Path, mode) -> None:
    no_title = scrobble(20, title="")
    export = maloja(
        tmp_path / "maloja.json",
        scrobble(10),
        no_title,
        "not an object",
        scrobble(30, artist="B" * 70_000),  # too long for Koito: rejected once normalized
        scrobble(5, title="early"),
    )
    log = tmp_path / "skipped.jsonl"
    code, out, err = cli(
        capsys,
        "run",
        str(export),
        "--db",
        db_target,
        "--since",
        "8",
        "--mode",
        mode,
        "--skipped",
        str(log),
        "--json",
    )
    assert code == 0, err
    summary = json.loads(out)
    lines = _lines(log)
    assert summary["skipped_log"] == f"{log} (4 items)"
    assert sum(summary["skipped"].values()) == len(lines) == 4
    by_reason = {line["reason"]: line for line in lines}
    assert by_reason["missing_title"] == {
        "file": str(export),
        "where": "item 2",
        "reason": "missing_title",
        "raw": no_title,
    }
    assert by_reason["not_an_object"]["raw"] == "not an object"
    assert by_reason["not_an_object"]["where"] == "item 3"
    early = by_reason["outside_window"]
    assert early["where"] == "listen at 1970-01-01T00:00:05Z"
    assert (early["raw"]["title"], early["raw"]["time"]) == ("early", 5)
    long = by_reason["field_too_long"]
    assert long["raw"]["artist"] == "B" * 70_000
    assert count(db_target, "listens") == 1


def test_parse_workers_send_the_items_too(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(parallel, "MIN_PARALLEL_BYTES", 0)
    monkeypatch.setattr(parallel, "SINGLE_FILE_MIN_BYTES", 0)
    files = [
        maloja(tmp_path / f"{n}_maloja.json", scrobble(n), scrobble(n + 1, title=""))
        for n in (100, 200)
    ]

    class Sink:
        def __init__(self) -> None:
            self.items: list[tuple[str, str, object]] = []

        def item(self, path, skip) -> None:
            self.items.append((Path(path).name, skip.reason, skip.raw))

        def listen(self, path, listen, reason) -> None:
            self.items.append((Path(path).name, reason, listen.title))

    sink = Sink()
    with open_store(str(tmp_path / "k.db")) as store:
        run_import(store, files, ImportOptions(workers=2, skipped=sink), NoProgress())
    assert sink.items == [
        ("100_maloja.json", "missing_title", scrobble(101, title="")),
        ("200_maloja.json", "missing_title", scrobble(201, title="")),
    ]


def test_an_unwritable_skipped_file_is_a_usage_error(capsys, tmp_path: Path) -> None:
    export = maloja(tmp_path / "maloja.json", scrobble(1))
    target = tmp_path / "no" / "such" / "dir" / "s.jsonl"
    code, _, err = cli(
        capsys, "run", str(export), "--db", str(tmp_path / "k.db"), "--skipped", str(target)
    )
    assert code == 2
    assert err.startswith(f"koito-import: error: --skipped {target}: cannot be written")
    assert not (tmp_path / "k.db").exists()


FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.mark.parametrize(
    "fixture",
    [
        "maloja/maloja_export.json",
        "spotify/Streaming_History_Audio_2023.json",
        "spotify/StreamingHistory_music_0.json",
        "lastfm/recenttracks-tester-1700000000.json",
        "lastfm_csv/tester.csv",
        "listenbrainz/listens.jsonl",
        "koito/koito_export_v1.json",
    ],
)
def test_every_format_gives_the_skipped_item_itself(capsys, tmp_path: Path, fixture: str) -> None:
    log = tmp_path / "skipped.jsonl"
    code, out, err = cli(
        capsys,
        "run",
        str(FIXTURES / fixture),
        "--db",
        str(tmp_path / "k.db"),
        "--skipped",
        str(log),
        "--json",
    )
    assert code == 0, err
    lines = _lines(log)
    assert len(lines) == sum(json.loads(out)["skipped"].values()) > 0
    # A JSON null item is not an object, and its raw form is null.
    assert all(line["where"] for line in lines)
    assert all(line["raw"] is not None for line in lines if line["reason"] != "not_an_object")
