"""One import run: files -> plugin parse -> window -> write -> summary.

Data flows one way. Plugins only parse; the import window and the skip accounting are
format-independent and live here; writing is either the bulk path (default) or the
per-listen reference path (Koito's SubmitListen, listen by listen).

Atomicity is per file: a file that turns out to be truncated or corrupt halfway leaves
nothing behind (one transaction, or, on SQLite, several that begin once the whole file
has been read: ``bulk``).
Files are processed in the order given (matching depends on order).
"""

from __future__ import annotations

import time as clock
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

from koito_import import jsonstream, plugins
from koito_import.counts import ImportCounts
from koito_import.errors import DatabaseError, InputError, SchemaError
from koito_import.listen import DEFAULT_USER_ID, Listen
from koito_import.settings import MatchSettings
from koito_import.stores import Store, write_failure
from koito_import.submit import replay

Mode = Literal["bulk", "per-listen"]


class Prefetch(Protocol):
    """Files parsed ahead (``parallel.Prefetcher``): file i's (plugin name, records)."""

    def open(self, index: int) -> tuple[str, Iterable[Listen | plugins.Skip]]: ...

    def position(self, index: int) -> int | None: ...


class Progress(Protocol):
    """What a run tells a progress display (``progress.run_progress``)."""

    def start(self, total_bytes: int) -> None:
        """The run begins: this many bytes of input in all."""

    def file(self, path: str) -> None:
        """Reading of this file begins."""

    def update(self, listens: int, done_bytes: int) -> None:
        """Listens read so far in the run, and the bytes of input read."""


class NoProgress:
    """A run nobody watches (scripts, tests, ``--quiet``)."""

    def start(self, total_bytes: int) -> None:
        pass

    def file(self, path: str) -> None:
        pass

    def update(self, listens: int, done_bytes: int) -> None:
        pass


class SkipSink(Protocol):
    """Where every skipped item goes (``--skipped FILE``: ``skiplog.SkipLog``)."""

    def item(self, path: str, skip: plugins.Skip) -> None:
        """An item of ``path`` that is not a listen, as the plugin said."""

    def listen(self, path: str, listen: Listen, reason: str) -> None:
        """A listen of ``path`` skipped after parsing (window, invalid once normalized)."""


@dataclass
class ImportOptions:
    plugin: str | None = None
    since: int | None = None
    until: int | None = None
    settings: MatchSettings = field(default_factory=MatchSettings)
    parse_options: plugins.ParseOptions = field(default_factory=plugins.ParseOptions)
    mode: Mode = "bulk"
    dry_run: bool = False
    #: Parse worker processes reading files ahead of the writer (0: parse in-process).
    #: See ``koito_import.parallel``; inputs too small to gain are parsed in-process.
    workers: int = 0
    #: Seconds of write lock between commits of a file in pieces (None: the store's).
    commit_every: float | None = None
    #: Told of every skipped item, with what it was (None: only counted).
    skipped: SkipSink | None = None


@dataclass
class FileReport(ImportCounts):
    """One file's line in the summary: its counts, and why it was not (fully) imported."""

    path: str = field(kw_only=True)
    plugin: str = field(kw_only=True)
    #: Transactions of this file already committed (a run in pieces; see ``bulk``).
    committed_pieces: int = 0
    #: Why nothing of the file was imported: it could not be read (``error``: the run
    #: then exits 1 after the other files), or it holds no importable listen (``note``).
    error: InputError | None = None
    note: str = ""
    #: Why a file found in a folder or archive was not read (no plugin reads it).
    not_read: str = ""


@dataclass
class RunSummary:
    database: str
    mode: Mode
    dry_run: bool
    files: list[FileReport] = field(default_factory=list)
    seconds: float = 0.0
    #: Where ``--skipped`` wrote the skipped items ("" when it was not given).
    skipped_log: str = ""

    @property
    def failed(self) -> list[FileReport]:
        return [f for f in self.files if f.error is not None]

    def total(self, name: str) -> int:
        return sum(getattr(f, name) for f in self.files)

    @property
    def skipped(self) -> Counter[str]:
        out: Counter[str] = Counter()
        for f in self.files:
            out.update(f.skipped)
        return out

    @property
    def listens_per_second(self) -> float:
        return self.total("read") / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "database": self.database,
            "mode": self.mode,
            "dry_run": self.dry_run,
            "files": [
                {
                    "path": f.path,
                    "plugin": f.plugin,
                    "error": str(f.error) if f.error is not None else None,
                    "note": f.note or None,
                    "not_read": f.not_read or None,
                    "read": f.read,
                    "skipped": dict(f.skipped),
                    "duplicates": f.duplicates,
                    "inserted": f.inserted,
                    "already_present": f.already_present,
                }
                for f in self.files
            ],
            "read": self.total("read"),
            "skipped": dict(self.skipped),
            "duplicates": self.total("duplicates"),
            "inserted": self.total("inserted"),
            "already_present": self.total("already_present"),
            "new_artists": self.total("new_artists"),
            "new_albums": self.total("new_albums"),
            "new_tracks": self.total("new_tracks"),
            "skipped_log": self.skipped_log or None,
            "seconds": round(self.seconds, 3),
            "listens_per_second": round(self.listens_per_second, 1),
        }


class _Rollback(Exception):
    """Raised inside a dry run's transaction so that nothing it wrote stays."""


def _listens(
    report: FileReport, items: Iterable[Listen | plugins.Skip], options: ImportOptions
) -> Iterator[Listen]:
    """Count what the plugin skipped and what falls outside the window; pass the rest."""
    since, until = options.since, options.until
    sink = options.skipped
    for item in items:
        report.read += 1
        if isinstance(item, plugins.Skip):
            report.skipped[item.reason] += 1
            if sink is not None:
                sink.item(report.path, item)
        elif (since is not None and item.time < since) or (until is not None and item.time > until):
            report.skipped["outside_window"] += 1
            if sink is not None:
                sink.listen(report.path, item, "outside_window")
        else:
            yield item


def _on_skip(report: FileReport, options: ImportOptions) -> Callable[[Listen, str], None] | None:
    sink = options.skipped
    if sink is None:
        return None
    return lambda listen, reason: sink.listen(report.path, listen, reason)


def _write_per_listen(
    store: Store,
    listens: Iterable[Listen],
    report: FileReport,
    options: ImportOptions,
    progress: FileProgress,
) -> None:
    result = replay(
        store,
        listens,
        options.settings,
        progress=lambda _n: progress(report.read),
        on_skip=_on_skip(report, options),
    )
    # ``read`` is the report's own count (it includes what the plugin skipped).
    report.add(result, read=False)


def _write_bulk(
    store: Store,
    listens: Iterable[Listen],
    report: FileReport,
    options: ImportOptions,
    progress: FileProgress,
) -> None:
    from koito_import.bulk import BulkSubmitter

    submitter = BulkSubmitter(
        store,
        options.settings,
        progress=lambda _n: progress(report.read),
        commit_every=options.commit_every,
        on_skip=_on_skip(report, options),
        on_commit=lambda share: progress(report.read, share),
    )
    try:
        result = submitter.run(listens)
    finally:
        report.committed_pieces = submitter.pieces
    report.add(result, read=False)


Opened = tuple[str, Iterable[Listen | plugins.Skip]]
#: Listens of the file read so far, and (a run in pieces) the share of it committed.
FileProgress = Callable[..., None]


def import_file(
    store: Store,
    path: Path,
    options: ImportOptions,
    progress: FileProgress = lambda n, written=None: None,
    opened: Opened | None = None,
) -> FileReport:
    """Import one file in one transaction; raises InputError and writes nothing if it is bad.

    ``opened``: the file's (plugin name, records) when a parse worker already reads it.
    """
    if opened is None:
        name = options.plugin or plugins.detect(path)[0]
        items: Iterable[Listen | plugins.Skip] = plugins.parse(path, name, options.parse_options)
    else:
        name, items = opened
    report = FileReport(path=str(path), plugin=name)
    listens = _listens(report, items, options)
    write = _write_bulk if options.mode == "bulk" else _write_per_listen
    # The bulk path commits a file in pieces where the store wants that (SQLite beside a
    # running Koito: ``bulk``); it reads the whole file before its first commit, so a bad
    # file still leaves nothing behind. Otherwise the file is one transaction here.
    from koito_import.bulk import commits_in_pieces

    in_pieces = options.mode == "bulk" and commits_in_pieces(store)
    try:
        with nullcontext() if in_pieces else store.transaction():
            write(store, listens, report, options, progress)
            if report.inserted + report.already_present + report.duplicates == 0:
                # Not an error: real exports hold such files (Spotify's video and podcast
                # histories, a year outside --since); the summary row says why.
                report.note = (
                    ", ".join(f"{r}: {c}" for r, c in report.skipped.most_common())
                    or "nothing in it"
                )
            if options.dry_run:
                raise _Rollback
    except _Rollback:
        pass
    except Exception as exc:
        failure = write_failure(store, exc)
        if failure is None:
            raise
        if report.committed_pieces:
            # Whole transactions of the file are in; a re-run completes it exactly.
            failure = DatabaseError(
                f"{failure}; {path} is partly imported, the same command again completes it"
            )
        raise failure from exc
    progress(report.read)
    return report


@dataclass
class _FileMeter:
    """One file's progress, as bytes of the run: how far its parser has read and, for
    a file committed in pieces (read whole first, then written), half for each."""

    shown: Progress
    source: Prefetch | None
    index: int
    path: Path
    size: int
    listens_before: int
    bytes_before: int
    pieces: bool
    read: int = 0
    written: float = 0.0

    def __call__(self, listens: int, written: float | None = None) -> None:
        if self.source is not None:
            at = self.source.position(self.index)
        else:
            at = jsonstream.position(self.path)
        if at is None and self.read:
            at = self.size  # closed: read to its end (the writes go on)
        self.read = max(self.read, min(at or 0, self.size))
        if written is not None:
            self.written = written
        part = (self.read + self.written * self.size) / 2 if self.pieces else self.read
        self.shown.update(self.listens_before + listens, self.bytes_before + int(part))


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # the file's own error says why, in its summary row


@contextmanager
def reading(paths: Sequence[Path], options: ImportOptions) -> Iterator[Prefetch | None]:
    """Start parse workers for these files when they pay off (else yield None).

    Entered before the database is opened, the workers parse while the store connects
    and creates the schema. Pass what it yields to :func:`run_import` as ``source``.
    """
    from koito_import import parallel

    if not parallel.worth_it(paths, options.workers):
        yield None
        return
    with parallel.Prefetcher(
        paths,
        options.plugin,
        options.parse_options,
        options.workers,
        raw=options.skipped is not None,
    ) as source:
        yield source


def run_import(
    store: Store,
    paths: Iterable[Path],
    options: ImportOptions,
    progress: Progress | None = None,
    source: Prefetch | None = None,
) -> RunSummary:
    """Import files in the order given; a file that cannot be read is a summary row
    with its error (nothing of it written) and the run goes on with the next.

    ``source``: what :func:`reading` yielded for the same paths; without it, this decides
    and starts the workers itself.
    """
    started = clock.perf_counter()
    if not store.has_user(DEFAULT_USER_ID):
        # Without it every listen would fail its foreign key, deep inside the write.
        raise SchemaError(
            f"{store.display_name} has no user to import the listens for (user {DEFAULT_USER_ID}); "
            "start Koito once so that it creates its admin user, then import"
        )
    summary = RunSummary(store.display_name, options.mode, options.dry_run)
    paths = list(paths)
    shown = progress or NoProgress()
    sizes = [_size(p) for p in paths]
    shown.start(sum(sizes))
    from koito_import.bulk import commits_in_pieces

    pieces = options.mode == "bulk" and commits_in_pieces(store)
    done = done_bytes = 0
    with ExitStack() as stack:
        if source is None:
            source = stack.enter_context(reading(paths, options))
        for i, path in enumerate(paths):
            shown.file(str(path))

            meter = _FileMeter(shown, source, i, path, sizes[i], done, done_bytes, pieces)
            try:
                opened = source.open(i) if source is not None else None
                report = import_file(store, path, options, meter, opened)
            except InputError as exc:
                # Nothing of this file was written; the other files still are.
                report = FileReport(path=str(path), plugin=options.plugin or "", error=exc)
            summary.files.append(report)
            done += report.read
            done_bytes += sizes[i]
            shown.update(done, done_bytes)
    summary.seconds = clock.perf_counter() - started
    return summary
