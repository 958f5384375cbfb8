"""The ``koito-import`` command line.

Every failure a user can cause or fix is a ``KoitoImportError`` and ends as one line on
stderr with a documented exit code; a traceback appears only with ``--debug`` (or
``KOITO_IMPORT_DEBUG=1``). Exit codes:

    0   success
    1   an input file is missing, unreadable or malformed (the other files still import)
    2   usage error (bad option or value)
    3   the database cannot be opened or a write failed (nothing half-written)
    4   the database is not empty and not a Koito database this version knows,
        or has no user to import for (Koito creates it on its first start)
    70  internal error (a bug: please report it with the --debug output)
    130 interrupted (Ctrl-C)
    143 terminated (SIGTERM)
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import traceback
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.exceptions import TyperException

from koito_import import __version__, _normalize
from koito_import.errors import (
    DatabaseError,
    InputError,
    KoitoImportError,
    SchemaError,
    UsageError,
)
from koito_import.listen import Listen
from koito_import.settings import SEPARATORS_ENV, MatchSettings

EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130
#: 128 + SIGTERM, what a shell reports for a process ended by it.
EXIT_TERMINATED = 143


class _Terminated(BaseException):
    """Raised in the main thread on SIGTERM, so the run unwinds: its transaction rolls
    back, its parse workers are stopped, and one line says what happened."""


_EPILOG = """\b
Examples:
  koito-import run my_spotify_data.zip           (into ./koito.db)
  koito-import run ~/exports/ --db /srv/koito/koito.db
  koito-import run scrobbles.csv --skipped skipped.jsonl
  zcat export.json.gz | koito-import run --plugin maloja -
  koito-import detect *.json

\b
Exit codes: 0 success, 1 an input file could not be read (the others
imported), 2 usage error, 3 database cannot be opened or written,
4 not a Koito database (or no user in it), 70 internal error,
130 interrupted, 143 terminated.
"""

app = typer.Typer(
    context_settings={"help_option_names": ["-h", "--help"]},
    name="koito-import",
    help="Import a whole listening history into Koito in seconds, exactly as Koito would.",
    no_args_is_help=True,
    epilog=_EPILOG,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

#: Set per invocation: by --debug, or KOITO_IMPORT_DEBUG for errors found before parsing.
_state = {"debug": False}

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="KOITO_DATABASE_URL",
        help="Target database: a Koito SQLite file (PATH or sqlite:///PATH) or a "
        "postgresql:// URL. Created with Koito's schema when empty. "
        "[default: $KOITO_CONFIG_DIR/koito.db when that is set, else ./koito.db]",
        show_default=False,
    ),
]
SeparatorOption = Annotated[
    str | None,
    typer.Option(
        "--artist-separator",
        envvar=SEPARATORS_ENV,
        help="Regex(es) splitting an artist string into artists, ';;'-separated, as Koito's "
        "KOITO_ARTIST_SEPARATORS_REGEX. [default: \\s+·\\s+]",
        show_default=False,
    ),
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"koito-import {__version__} (normalize: {_normalize.__impl__})")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
    debug: Annotated[
        bool,
        typer.Option("--debug", envvar="KOITO_IMPORT_DEBUG", help="Show tracebacks for errors."),
    ] = False,
) -> None:
    _state["debug"] = _state["debug"] or debug


def parse_time(value: str, flag: str = "--time") -> int:
    """Unix seconds, or an ISO 8601 time (UTC when it names no zone).

    ``flag`` names the option (and its environment variable) in the error.
    """
    text = value.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UsageError(f"{flag} {value!r} is neither unix seconds nor an ISO 8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp())


@app.command()
def submit(
    artist: Annotated[str, typer.Option("--artist", help="Artist string, parsed as Koito does.")],
    track: Annotated[str, typer.Option("--track", help="Track title.")],
    album: Annotated[
        str, typer.Option("--album", help="Album title (default: the track title).")
    ] = "",
    time: Annotated[
        str | None, typer.Option("--time", help="Unix seconds or ISO 8601. [default: now]")
    ] = None,
    duration: Annotated[int, typer.Option("--duration", min=0, help="Track length, seconds.")] = 0,
    client: Annotated[
        str, typer.Option("--client", help="Client name stored with the listen.")
    ] = "koito-import",
    recording_mbid: Annotated[
        str, typer.Option("--recording-mbid", help="MusicBrainz recording id.")
    ] = "",
    release_mbid: Annotated[
        str, typer.Option("--release-mbid", help="MusicBrainz release id.")
    ] = "",
    db: DbOption = None,
    artist_separator: SeparatorOption = None,
) -> None:
    """Submit one listen through the live path: Koito's matching, as a scrobble."""
    from koito_import.records import mbid, parse_go_uuid
    from koito_import.stores import open_store
    from koito_import.submit import submit_listen

    when = parse_time(time) if time else int(datetime.now(timezone.utc).timestamp())
    mbids = {}
    for flag, raw in (("--recording-mbid", recording_mbid), ("--release-mbid", release_mbid)):
        if raw and parse_go_uuid(raw) is None:
            raise UsageError(f"{flag} {raw!r} is not a MusicBrainz id (a UUID)")
        mbids[flag] = mbid(raw)
    listen = Listen(
        artist=artist,
        title=track,
        time=when,
        album=album,
        duration=duration,
        client=client,
        recording_mbid=mbids["--recording-mbid"],
        release_mbid=mbids["--release-mbid"],
    )
    settings = MatchSettings.from_value(artist_separator)
    with open_store(db) as store:
        try:
            result = submit_listen(store, listen, settings)
        except KoitoImportError as exc:
            raise UsageError(f"listen not imported: {exc}") from exc
    state = "new listen" if result.inserted else "already present"
    typer.echo(f"{store.display_name}: track {result.resolved.track_id} ({state})")


class ModeChoice(str, Enum):
    """``--mode``: a choice, so that ``--help`` and the error name the two."""

    bulk = "bulk"
    per_listen = "per-listen"


FilesArgument = Annotated[
    list[Path],
    typer.Argument(
        help="Export files, folders (read recursively, in natural order), zips and "
        ".gz files, imported in the order given; '-' is standard input.",
        show_default=False,
    ),
]


@app.command()
def run(
    files: FilesArgument,
    plugin: Annotated[
        str | None,
        typer.Option(
            "--plugin",
            "-p",
            help="Read every file with this plugin (see `plugins`). "
            "[default: detect from content, then file name]",
            show_default=False,
        ),
    ] = None,
    db: DbOption = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            envvar="KOITO_IMPORT_AFTER_UNIX",
            help="Skip listens before this time (unix seconds or ISO 8601).",
            show_default=False,
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            "--until",
            envvar="KOITO_IMPORT_BEFORE_UNIX",
            help="Skip listens after this time (unix seconds or ISO 8601).",
            show_default=False,
        ),
    ] = None,
    artist_separator: SeparatorOption = None,
    option: Annotated[
        list[str] | None,
        typer.Option(
            "--option",
            "-o",
            metavar="PLUGIN.KEY=VALUE",
            help="Set an option a plugin declares (see `plugins`), e.g. "
            "-o spotify.min_seconds=30; repeatable, the last value for a key wins.",
            show_default=False,
        ),
    ] = None,
    spotify_min_seconds: Annotated[
        int | None,
        typer.Option(
            "--spotify-min-seconds",
            min=0,
            help="Alias of -o spotify.min_seconds=N: keep Spotify plays of at least N "
            "seconds instead of Koito's 'trackdone only' rule (30 is Spotify's own count "
            "rule). A -o spotify.min_seconds given too wins.",
            show_default=False,
        ),
    ] = None,
    mode: Annotated[
        ModeChoice,
        typer.Option("--mode", help="bulk (fast) or per-listen (Koito's path, listen by listen)."),
    ] = ModeChoice.bulk,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Read, match and report; write nothing.")
    ] = False,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the summary as one JSON object on stdout.")
    ] = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bar, no summary table.")
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            envvar="KOITO_IMPORT_WORKERS",
            min=0,
            help="Parse worker processes reading files ahead of the writer; 0 "
            "parses in-process. [default: 1: on 2 cores one worker parsing ahead "
            "of the writer was fastest (see BENCHMARKS.md); a single file under "
            "8 MB or inputs under 2 MB are parsed in-process: no measurable gain]",
            show_default=False,
        ),
    ] = None,
    skipped: Annotated[
        Path | None,
        typer.Option(
            "--skipped",
            help="Write every skipped item to this file as JSON Lines: file, where "
            "(line or item), reason, and the item itself.",
            show_default=False,
            dir_okay=False,
        ),
    ] = None,
    lock_seconds: Annotated[
        float | None,
        typer.Option(
            "--lock-seconds",
            envvar="KOITO_IMPORT_LOCK_SECONDS",
            min=0.0,
            help="SQLite: commit at least this often, so that a running Koito can write "
            "between the import's transactions (0: after every step of 4,096 listens). "
            "[default: 0.4]",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Import export files into a Koito database (by default ./koito.db)."""
    import orjson

    from koito_import import parallel, plugins
    from koito_import.inputs import prepared
    from koito_import.pipeline import FileReport, ImportOptions, reading, run_import
    from koito_import.progress import print_summary, run_progress
    from koito_import.skiplog import SkipLog
    from koito_import.stores import display_target, open_store, resolve_target, sqlite_path

    if plugin is not None:
        plugins.require(plugin)
    start = parse_time(since, "--since (KOITO_IMPORT_AFTER_UNIX)") if since else None
    end = parse_time(until, "--until (KOITO_IMPORT_BEFORE_UNIX)") if until else None
    if start is not None and end is not None and start > end:
        raise UsageError(f"--since {since!r} is after --until {until!r}: nothing would be imported")
    # --spotify-min-seconds N is an alias of -o spotify.min_seconds=N (an -o given too wins);
    # checked on its own first, so that an error names the flag the user typed.
    alias = [] if spotify_min_seconds is None else [f"spotify.min_seconds={spotify_min_seconds}"]
    try:
        plugins.parse_options(alias)
    except UsageError as exc:
        # Name what the user typed, not the -o text it stands for.
        reason = str(exc).split("': ", 1)[-1]
        raise UsageError(f"--spotify-min-seconds {spotify_min_seconds}: {reason}") from None
    options = ImportOptions(
        plugin=plugin,
        since=start,
        until=end,
        settings=MatchSettings.from_value(artist_separator),
        parse_options=plugins.parse_options([*alias, *(option or ())]),
        mode=mode.value,  # type: ignore[arg-type]
        dry_run=dry_run,
        workers=parallel.DEFAULT_WORKERS if workers is None else workers,
        commit_every=lock_seconds,
    )
    target = resolve_target(db)
    created: list[Path] = []
    names: dict[str, str] = {}
    try:
        # Every input is checked, and archives and folders unpacked, before the database
        # is opened: a mistyped name neither creates a database nor leaves earlier files
        # imported.
        with prepared(files, _member_check(plugin)) as given, ExitStack() as stack:
            names = given.names
            if skipped is not None:
                options.skipped = stack.enter_context(SkipLog(skipped, names))
            with (
                # Parse workers start first: they read while the database opens.
                reading(given.paths, options) as source,
                _dry_run_target(target, dry_run) as effective,
                open_store(effective, read_only=dry_run) as store,
                run_progress(not quiet, names) as progress,
            ):
                if store.created and not dry_run and sqlite_path(effective) is not None:
                    created.append(Path(store.display_name))
                summary = run_import(store, given.paths, options, progress, source)
    except InputError as exc:
        _forget_new_database(created)
        if exc.path not in names:
            raise
        raise InputError(names[exc.path], exc.where, exc.reason) from exc
    except BaseException:
        _forget_new_database(created)
        raise
    for report in summary.files:
        report.path = names.get(report.path, report.path)
        if report.error is not None and report.error.path in names:
            e = report.error
            report.error = InputError(names[e.path], e.where, e.reason)
    nothing = len(summary.failed) == len(summary.files)
    if skipped is not None:
        summary.skipped_log = f"{skipped} ({options.skipped.count:,} items)"
    summary.files.extend(
        FileReport(path=name, plugin="", not_read=why) for name, why in given.unread
    )
    if dry_run:
        summary.database = display_target(target)
    if nothing:
        _forget_new_database(created)
    elif store.created and not dry_run:
        typer.echo(
            f"koito-import: created a new Koito database: {store.display_name} "
            "(login admin / changeme)",
            err=True,
        )
    if json_out:
        typer.echo(orjson.dumps(summary.as_dict()).decode())
    elif not quiet and not nothing:
        # When every file failed, their one-line errors are all there is to say.
        print_summary(summary)
    if summary.failed:
        for report in summary.failed:
            typer.echo(f"koito-import: error: {report.error}", err=True)
        raise typer.Exit(InputError.exit_code)


def _member_check(plugin: str | None):
    """Why a file found in a folder or archive is not read (None: it is)."""
    from koito_import import plugins

    def why_not(path: Path) -> str | None:
        try:
            if path.stat().st_size == 0:
                return "empty"
            if plugin is not None:
                return None if plugins.reads(path, plugin) else f"not a {plugin} file"
            found = plugins.claim(path)
        except (InputError, OSError) as exc:
            return f"cannot be read: {getattr(exc, 'reason', None) or exc}"
        # Inside an archive, a name alone (``*.csv``) is not enough to fail the run on.
        if found is None or found[1] <= plugins.NAME_ONLY_CONFIDENCE:
            return "no plugin reads it"
        return None

    return why_not


def _forget_new_database(created: list[Path]) -> None:
    """A run that failed leaves no database it created behind (if it holds no listen).

    The lock file beside it goes too: the database it guards is gone.
    """
    from koito_import.stores import open_store, remove_database

    for path in created:
        try:
            with open_store(str(path)) as store:
                if store.counts().listens:
                    continue
        except KoitoImportError:
            continue
        remove_database(path)


@contextmanager
def _dry_run_target(target: str, dry_run: bool) -> Iterator[str]:
    """A dry run works on a scratch copy of a SQLite database, so it writes nothing there.

    The copy is made with SQLite's backup API through a read-only connection: a
    consistent snapshot, the WAL of a running Koito included, and a missing file is
    never created. Errors name the user's file, not the copy.
    """
    from koito_import.stores import sqlite_path

    path = sqlite_path(target) if dry_run else None
    if path is None:
        yield target
        return
    with tempfile.TemporaryDirectory(prefix="koito-import-dry-") as tmp:
        scratch = Path(tmp) / "koito.db"
        if Path(path).exists():
            from koito_import.stores import snapshot_copy

            snapshot_copy(path, scratch)
        try:
            yield str(scratch)
        except (DatabaseError, SchemaError) as exc:
            raise type(exc)(str(exc).replace(str(scratch), path)) from exc


@app.command()
def detect(
    files: Annotated[
        list[Path],
        typer.Argument(help="Files to look at; nothing is imported.", show_default=False),
    ],
) -> None:
    """Say which plugin would read each file, and how sure it is (0-100).

    One line per file on stdout, every file looked at: "FILE: PLUGIN (confidence N)",
    "FILE: no plugin reads it", or "FILE: error: WHY" when it cannot be read. Exit
    code 1 when any file is not read by a plugin, else 0. Nothing is imported.
    """
    from koito_import import plugins

    unread = unclaimed = 0
    for path in files:
        try:
            found = plugins.claim(path)
        except InputError as exc:
            unread += 1
            typer.echo(f"{path}: error: {exc.reason}")
            continue
        if found is None:
            unclaimed += 1
            empty = path.is_file() and path.stat().st_size == 0
            typer.echo(f"{path}: no plugin reads it" + (" (the file is empty)" if empty else ""))
            continue
        name, confidence = found
        typer.echo(f"{path}: {name} (confidence {confidence})")
    problems = []
    if unclaimed:
        formats = plugins.format_names()
        problems.append(f"no plugin reads {unclaimed} of {len(files)} files (formats: {formats})")
    if unread:
        problems.append(f"{unread} of {len(files)} files cannot be read")
    if problems:
        typer.echo(f"koito-import: error: {'; '.join(problems)}", err=True)
        raise typer.Exit(InputError.exit_code)


@app.command("plugins")
def list_plugins(
    json_out: Annotated[bool, typer.Option("--json", help="Print as JSON.")] = False,
) -> None:
    """List the installed importer plugins: name, package, version, formats, options."""
    import orjson
    from rich.console import Console
    from rich.table import Table

    from koito_import import plugins

    rows = plugins.list_plugins()
    if json_out:
        # orjson serializes dataclasses (PluginRecord, OptionSpec) directly; an option's
        # type (a Python type, which it cannot) is given by its name.
        typer.echo(orjson.dumps(rows, default=lambda kind: kind.__name__).decode())
        return
    table = Table()
    for col in ("name", "package", "version", "formats", "file patterns"):
        table.add_column(col)
    for p in rows:
        table.add_row(p.name, p.package, p.version, ", ".join(p.formats), ", ".join(p.patterns))
    Console(highlight=False).print(table)
    options = [(p.name, o) for p in rows for o in p.options]
    if options:
        typer.echo("Plugin options (koito-import run -o PLUGIN.KEY=VALUE):")
        for name, o in options:
            # The default as it would be written after -o PLUGIN.KEY= (true, not True).
            default = "unset" if o.default is None else str(o.default)
            default = default.lower() if isinstance(o.default, bool) else default
            typer.echo(f"  {name}.{o.name} ({o.type_name}, default: {default}): {o.help}")


def _report(exc: BaseException, message: str) -> None:
    if _state["debug"]:
        traceback.print_exception(exc)
    typer.echo(f"koito-import: error: {message}", err=True)


def main(argv: list[str] | None = None) -> Any:
    """Entry point: run the app and turn every failure into a message and an exit code."""
    _state["debug"] = bool(os.environ.get("KOITO_IMPORT_DEBUG"))

    def terminated(signum: int, frame: object) -> None:
        raise _Terminated

    try:
        previous = signal.signal(signal.SIGTERM, terminated)
    except ValueError:  # not the main thread (embedded use): leave SIGTERM alone
        previous = None
    try:
        # Without standalone mode, typer returns (not raises) 130 for a KeyboardInterrupt.
        returned = app(args=argv, prog_name="koito-import", standalone_mode=False)
    except _Terminated as exc:
        _report(
            exc,
            "terminated (SIGTERM); the transaction under way was rolled back "
            "(the same command again completes the import)",
        )
        return sys.exit(EXIT_TERMINATED)
    except typer.Exit as exc:
        return sys.exit(exc.exit_code)
    except TyperException as exc:  # usage errors found by the option parser
        # One style for every error: ours, with the way to the command's help.
        ctx = getattr(exc, "ctx", None)
        where = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        text = exc.format_message().strip()
        _report(exc, (text.splitlines()[0] if text else type(exc).__name__) + where)
        return sys.exit(getattr(exc, "exit_code", 2))
    except (typer.Abort, KeyboardInterrupt) as exc:
        _report(
            exc,
            "interrupted; the transaction under way was rolled back "
            "(the same command again completes the import)",
        )
        return sys.exit(EXIT_INTERRUPTED)
    except KoitoImportError as exc:
        text = str(exc).strip()
        _report(exc, text.splitlines()[0] if text else type(exc).__name__)
        return sys.exit(exc.exit_code)
    except Exception as exc:
        text = str(exc).strip()
        first = text.splitlines()[0] if text else ""  # PostgreSQL adds DETAIL/HINT lines
        _report(
            exc, f"internal error: {type(exc).__name__}: {first} (run with --debug for details)"
        )
        return sys.exit(EXIT_INTERNAL)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    if returned == EXIT_INTERRUPTED:
        typer.echo(
            "koito-import: error: interrupted; the transaction under way was rolled back "
            "(the same command again completes the import)",
            err=True,
        )
        return sys.exit(EXIT_INTERRUPTED)
    return sys.exit(returned if isinstance(returned, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
