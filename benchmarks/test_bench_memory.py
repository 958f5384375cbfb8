"""Streaming keeps memory flat: peak RSS of parsing 100k and 1M-listen exports.

A 1,000,000-listen Maloja or Last.fm export is 0.2–1 GB; parsed whole it would take ~10×
that. Target (issue 3): under 400 MB at 1M listens and flat in file size. Each round
runs a fresh process that streams the file through its plugin; ``extra_info`` holds
the child's own VmHWM.

    pytest benchmarks/test_bench_memory.py --benchmark-only
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.generate import write_export
from benchmarks.rss_run import MARKER

ROOT = Path(__file__).resolve().parents[1]
TARGET_MB = 400


@pytest.fixture(scope="module")
def big_exports(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, int], Path]:
    folder = tmp_path_factory.mktemp("big")
    return {
        (fmt, n): write_export(
            folder / f"{fmt}-{n}.{'jsonl' if 'jsonl' in fmt else 'json'}", fmt, n
        )
        for fmt in ("maloja", "lastfm")
        for n in (100_000, 1_000_000)
    }


@pytest.mark.parametrize("fmt", ["maloja", "lastfm"])
@pytest.mark.parametrize("n", [100_000, 1_000_000])
def test_parse_peak_rss(benchmark, big_exports, fmt: str, n: int) -> None:
    path = big_exports[(fmt, n)]
    peaks: list[int] = []

    def parse() -> None:
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.parse_rss", str(path)],
            capture_output=True,
            text=True,
            cwd=ROOT,
            check=True,
        )
        count, peak = done.stdout.split()
        assert int(count) == n
        peaks.append(int(peak.removeprefix(MARKER)))

    benchmark.group = f"streaming parse, {fmt}"
    benchmark.pedantic(parse, rounds=3, iterations=1)
    peak_mb = max(peaks) / 1024
    benchmark.extra_info.update(
        {
            "listens": n,
            "file_mb": round(path.stat().st_size / 2**20, 1),
            "peak_rss_mb": round(peak_mb, 1),
        }
    )
    assert peak_mb < TARGET_MB
