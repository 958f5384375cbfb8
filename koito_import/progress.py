"""What a person sees during and after a long import: a progress bar and a summary.

Both go to stderr so stdout stays clean for ``--json``. The progress bar shows only on a
terminal and never with ``--quiet``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from koito_import.pipeline import Progress, RunSummary

# rich is imported where it is used: a quiet run (scripts, cron, the benchmarks) never
# draws anything, and importing rich costs ~25 ms of a one-second import.


@contextmanager
def run_progress(enabled: bool, names: Mapping[str, str] | None = None) -> Iterator[Progress]:
    """A progress bar for a run (percent and ETA from the bytes of input read, the
    current file, listens/s); silent when not on a terminal. ``names``: the name the
    user knows a stand-in file by (an archive member, standard input).
    """
    from koito_import.pipeline import NoProgress

    if not enabled:
        yield NoProgress()
        return
    from rich.console import Console

    console = Console(stderr=True)
    if not console.is_terminal:
        yield NoProgress()
        return
    from rich.progress import (
        BarColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("{task.fields[name]}"),
        BarColumn(bar_width=20),
        TaskProgressColumn(),
        TextColumn("{task.fields[listens]} listens"),
        TextColumn("[progress.data.speed]{task.fields[rate]}"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        yield _Bar(bar, names or {}, max(12, console.width - 68))


class _Bar:
    def __init__(self, bar: Any, names: Mapping[str, str], width: int) -> None:
        self.bar = bar
        self.names = names
        self.width = width
        self.task = bar.add_task("importing", total=None, name="", listens="0", rate="")

    def start(self, total_bytes: int) -> None:
        self.bar.update(self.task, total=total_bytes or None)

    def file(self, path: str) -> None:
        name = self.names.get(path, path)
        if len(name) > self.width:  # the end of a path says most: the file's own name
            name = "…" + name[-(self.width - 1) :]
        self.bar.update(self.task, name=name.ljust(self.width))

    def update(self, listens: int, done_bytes: int) -> None:
        elapsed = self.bar.tasks[0].elapsed or 0.0
        rate = f"{listens / elapsed:,.0f}/s" if elapsed > 0 else ""
        self.bar.update(self.task, completed=done_bytes, listens=f"{listens:,}", rate=rate)


def print_summary(summary: RunSummary, stream=None) -> None:
    """The end-of-run table: read, skipped by reason, duplicates, inserted, new entities."""
    from rich.console import Console
    from rich.table import Table

    console = Console(file=stream or sys.stderr, highlight=False)
    # The database's path can be long: a line of its own, wrapped, never cut.
    console.print(f"database: {summary.database}", overflow="fold")
    table = Table(title="koito-import" + (" (dry run: nothing written)" if summary.dry_run else ""))
    table.add_column("")
    table.add_column("count", justify="right")
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
    if summary.skipped_log:
        console.print(f"skipped items: {summary.skipped_log}", overflow="fold")
    if len(summary.files) > 1 or any(f.error or f.note or f.not_read for f in summary.files):
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
            elif f.not_read:
                outcome = f"not read: {f.not_read}"
            elif f.note:
                outcome = f"nothing importable: {f.note}"
            else:
                outcome = "ok"
            files.add_row(f.path, f.plugin, f"{f.read:,}", f"{f.inserted:,}", outcome)
        console.print(files)
