"""The bulk path against the per-listen reference path, and the live path's repeat.

Bulk and per-listen run the same CLI on the same 10,000-listen export in the same
session, one benchmark each in one group, so their medians give the ratio (target:
bulk ≥ 100× faster). The per-listen path is Koito's SubmitListen, listen by listen.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.conftest import Targets
from benchmarks.test_bench_import import import_file
from koito_import.errors import InvalidListen
from koito_import.listen import Listen
from koito_import.stores import Store, open_store
from koito_import.submit import submit_listen


@pytest.mark.parametrize("mode", ["bulk", "per-listen"])
def test_bulk_vs_per_listen(
    benchmark, exports: dict[int, Path], targets: Targets, mode: str
) -> None:
    path = exports[10_000]
    benchmark.group = f"bulk vs per-listen, 10k listens, {targets.backend}"
    benchmark.extra_info["mode"] = mode
    benchmark.pedantic(
        lambda db: import_file(path, db, "--mode", mode),
        setup=lambda: ((targets.fresh(),), {}),
        rounds=3 if mode == "bulk" else 1,
        iterations=1,
    )


@pytest.fixture
def primed(targets: Targets) -> Iterator[Store]:
    with open_store(targets.fresh()) as store:
        submit_listen(
            store, Listen(artist="Aurora Lane", title="Paper Boats", album="Quiet Harbour", time=1)
        )
        yield store


def test_live_submit_repeat(benchmark, primed: Store, targets: Targets) -> None:
    """A listen of a known track: matched in full against the catalog (there is no cache)."""
    times = itertools.count(2)
    benchmark.group = "live submit, known track"
    benchmark.extra_info["backend"] = targets.backend

    def submit() -> None:
        result = submit_listen(
            primed,
            Listen(
                artist="Aurora Lane", title="Paper Boats", album="Quiet Harbour", time=next(times)
            ),
        )
        assert result.inserted and result.resolved.track_id == 1

    benchmark(submit)


def test_live_path_commit_per_listen(benchmark, history, targets: Targets) -> None:
    """The live path as a relay drives it: submit_listen per listen, each its own commit.

    ``--mode per-listen`` runs the same matching inside one transaction per file (for
    atomicity); this is the per-listen cost without that help, on the first 10,000
    generated listens (the same shape as the 10k export above).
    """
    listens = history("maloja")[:10_000]
    benchmark.group = f"bulk vs per-listen, 10k listens, {targets.backend}"
    benchmark.extra_info["mode"] = "live path, one commit per listen"

    def setup():
        return (open_store(targets.fresh()),), {}

    def submit_all(store: Store) -> None:
        with store:
            for listen in listens:
                with contextlib.suppress(InvalidListen):
                    submit_listen(store, listen)

    benchmark.pedantic(submit_all, setup=setup, rounds=1, iterations=1)
