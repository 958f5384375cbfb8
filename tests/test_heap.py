"""The bulk run gives the C heap's free pages back between steps (``bulk.heap``)."""

from __future__ import annotations

import platform
import sys

import pytest

from koito_import.bulk import heap


def _rss_kb() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc",
    reason="malloc_trim is glibc's",
)
def test_trim_returns_a_fragmented_heap_to_the_system() -> None:
    # Blocks above pymalloc's limit live in glibc's heap; keeping every 16th leaves
    # holes that the heap does not give back by itself.
    blocks = [bytearray(2000) for _ in range(60_000)]
    kept = blocks[::16]
    del blocks
    before = _rss_kb()
    assert heap.trim() is True
    after = _rss_kb()
    assert before - after > 50_000  # of the ~110 MB freed, most comes back
    assert all(len(b) == 2000 for b in kept)
