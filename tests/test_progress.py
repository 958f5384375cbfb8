"""The progress a run reports: bytes of all inputs (percent, ETA), the file, listens."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import generate
from koito_import import parallel
from koito_import.pipeline import ImportOptions, NoProgress, run_import
from koito_import.stores import open_store


class Recorder(NoProgress):
    def __init__(self) -> None:
        self.total = -1
        self.events: list[tuple[str, object]] = []

    def start(self, total_bytes: int) -> None:
        self.total = total_bytes

    def file(self, path: str) -> None:
        self.events.append(("file", Path(path).name))

    def update(self, listens: int, done_bytes: int) -> None:
        self.events.append(("update", (listens, done_bytes)))


@pytest.mark.parametrize("workers", [0, 1])
def test_bytes_move_within_a_file_and_end_at_the_total(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int
) -> None:
    monkeypatch.setattr(parallel, "MIN_PARALLEL_BYTES", 0)
    monkeypatch.setattr(parallel, "SINGLE_FILE_MIN_BYTES", 0)
    files = [
        generate.write_export(tmp_path / f"{i}_maloja.json", "maloja", n, seed=i)
        for i, n in ((1, 30_000), (2, 500))
    ]
    sizes = [f.stat().st_size for f in files]
    seen = Recorder()
    with open_store(str(tmp_path / "k.db")) as store:
        summary = run_import(store, files, ImportOptions(workers=workers), seen)
    assert seen.total == sum(sizes)
    assert [e for e in seen.events if e[0] == "file"] == [("file", f.name) for f in files]
    updates = [v for kind, v in seen.events if kind == "update"]
    listens = [n for n, _ in updates]
    done = [b for _, b in updates]
    assert listens == sorted(listens) and listens[-1] == summary.total("read")
    assert done == sorted(done) and done[-1] == sum(sizes)
    # Within the big file the bar moves: some update lies strictly inside it.
    assert any(0 < b < sizes[0] for b in done)
