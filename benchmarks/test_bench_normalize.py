"""normalize_batch on the plan's workload: the compiled twin against the Python one.

    pytest benchmarks/test_bench_normalize.py --benchmark-only

Each group holds the two twins on the same 49,050 generated listens; the compiled one
records its speed-up over the Python one in ``extra_info`` and must reach
``TARGET_SPEEDUP``. Groups: the Maloja history of the plan (the headline number), the
same history as ListenBrainz records (MBIDs, mappings, durations) and as Koito-export
records (entities).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from types import ModuleType

import pytest

from koito_import.listen import Listen

#: What the compiled twin must achieve over the pure-Python one.
TARGET_SPEEDUP = 5.0
FLAVORS = ["maloja", "listenbrainz", "koito"]
ROUNDS = {"python": 5, "c": 20}


def _median(benchmark) -> float | None:
    stats = getattr(benchmark, "stats", None)
    return stats.stats.median if stats else None


def _python_median(
    py_impl: ModuleType, listens: list[Listen], salt: str, medians: dict, key: str
) -> float:
    """The Python twin's median from its benchmark, or measured here when it did not run."""
    if key not in medians:
        times = []
        for _ in range(ROUNDS["python"]):
            started = time.perf_counter()
            py_impl.normalize_batch(listens, salt)
            times.append(time.perf_counter() - started)
        medians[key] = statistics.median(times)
    return medians[key]


@pytest.mark.parametrize("flavor", FLAVORS)
def test_normalize_batch_python(
    benchmark, flavor: str, history: Callable[[str], list[Listen]], salt: str, py_impl, medians
) -> None:
    listens = history(flavor)
    benchmark.group = f"normalize_batch-{flavor}-{len(listens)}"
    benchmark.extra_info.update(implementation="python", listens=len(listens))
    prepared, keys, rejected = benchmark.pedantic(
        py_impl.normalize_batch, args=(listens, salt), rounds=ROUNDS["python"], warmup_rounds=1
    )
    assert len(prepared) == len(keys) == len(listens) - len(rejected)
    median = _median(benchmark)
    if median is not None:
        medians[f"python-{flavor}"] = median
        benchmark.extra_info["us_per_listen"] = round(median / len(listens) * 1e6, 3)


@pytest.mark.parametrize("flavor", FLAVORS)
def test_normalize_batch_c(
    benchmark,
    flavor: str,
    history: Callable[[str], list[Listen]],
    salt: str,
    py_impl,
    c_impl,
    medians,
) -> None:
    listens = history(flavor)
    benchmark.group = f"normalize_batch-{flavor}-{len(listens)}"
    benchmark.extra_info.update(implementation="c", listens=len(listens))
    result = benchmark.pedantic(
        c_impl.normalize_batch, args=(listens, salt), rounds=ROUNDS["c"], warmup_rounds=1
    )
    assert result == py_impl.normalize_batch(listens, salt)  # same results, not just fast
    median = _median(benchmark)
    if median is None:  # --benchmark-disable: nothing was measured
        return
    python = _python_median(py_impl, listens, salt, medians, f"python-{flavor}")
    ratio = python / median
    benchmark.extra_info["us_per_listen"] = round(median / len(listens) * 1e6, 3)
    benchmark.extra_info["python_median_s"] = round(python, 6)
    benchmark.extra_info["speedup_vs_python"] = round(ratio, 2)
    assert ratio >= TARGET_SPEEDUP, f"C twin only {ratio:.1f}x the Python one on {flavor}"
