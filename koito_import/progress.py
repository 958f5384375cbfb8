"""What a person sees during and after a long import: a progress line and a summary table.

Both go to stderr so stdout stays clean for ``--json``. The progress bar shows only on a
terminal and never with ``--quiet``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from koito_import.pipeline import RunSummary

# rich is imported where it is used: a quiet run (scripts, cron, the benchmarks) never
# draws anything, and importing rich costs ~25 ms of a one-second import.


@contextmanager
def listen_progress(enabled: bool) -> Iterator[Callable[[int], None]]:
    """Yield a callback taking "listens read so far"; a no-op when not on a terminal."""
    if not enabled:
        yield lambda n: None
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    if not console.is_terminal:
        yield lambda n: None
        return
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.completed:,.0f} listens"),
        TextColumn("[progress.data.speed]{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("importing", total=None, rate="")

        def update(n: int) -> None:
            elapsed = bar.tasks[0].elapsed or 0.0
            rate = f"{n / elapsed:,.0f} listens/s" if elapsed > 0 else ""
            bar.update(task, completed=n, rate=rate)

        yield update


def print_summary(summary: RunSummary, stream=None) -> None:
    """The end-of-run table: read, skipped by reason, duplicates, inserted, new entities."""
    from rich.console import Console
    from rich.table import Table

    console = Console(file=stream or sys.stderr, highlight=False)
    table = Table(title="koito-import" + (" (dry run: nothing written)" if summary.dry_run else ""))
    table.add_column("")
    table.add_column("count", justify="right")
    table.add_row("database", summary.database)
    table.add_row("files", str(len(summary.files)))
    table.add_row("listens read", f"{summary.total('read'):,}")
    for reason, count in summary.skipped.most_common():
        table.add_row(f"  skipped: {reason}", f"{count:,}")
    table.add_row("duplicates in input", f"{summary.total('duplicates'):,}")
    table.add_row("inserted", f"{summary.total('inserted'):,}")
    table.add_row("already present", f"{summary.total('already_present'):,}")
    table.add_row("new artists", f"{summary.total('new_artists'):,}")
    table.add_row("new albums", f"{summary.total('new_albums'):,}")
    table.add_row("new tracks", f"{summary.total('new_tracks'):,}")
    table.add_row("seconds", f"{summary.seconds:.2f}")
    table.add_row("listens per second", f"{summary.listens_per_second:,.0f}")
    console.print(table)
    if len(summary.files) > 1 or any(f.error or f.note for f in summary.files):
        files = Table(title="files", width=min(console.width, 80))
        files.add_column("file", overflow="fold", ratio=3)
        files.add_column("plugin")
        files.add_column("read", justify="right")
        files.add_column("inserted", justify="right")
        files.add_column("outcome", overflow="fold", ratio=2)
        for f in summary.files:
            if f.error is not None:
                outcome = f"error: {f.error.reason}" + (
                    f" ({f.error.where})" if f.error.where else ""
                )
            elif f.note:
                outcome = f"nothing importable: {f.note}"
            else:
                outcome = "ok"
            files.add_row(f.path, f.plugin, f"{f.read:,}", f"{f.inserted:,}", outcome)
        console.print(files)
