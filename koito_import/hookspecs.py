r"""The plugin hooks of koito-import: how a package teaches it to read a new export format.

An importer plugin is a Python module (or any object) with functions marked
``@hookimpl`` and registered under the ``koito_import`` entry-point group; the
built-in importers (``maloja``, ``spotify``, ``lastfm``, ``lastfm_csv``,
``listenbrainz``, ``koito``) are registered exactly the same way. A minimal
third-party package — the same example as ``docs/plugins.md``'s (a complete one, tested
by installing it, is in ``examples/koito-import-rockbox/``)::

    # pyproject.toml
    [project.entry-points.koito_import]
    rockbox = "koito_import_rockbox"

    # koito_import_rockbox.py
    from koito_import.hookspecs import hookimpl
    from koito_import.plugin_types import Listen, OptionSpec, PluginInfo, Skip
    from koito_import.records import mbid

    KEEP_SKIPPED = OptionSpec("keep_skipped", bool, False, "import plays rated S (skipped) too")


    @hookimpl
    def koito_import_describe():
        return PluginInfo(
            "rockbox",
            formats=("Rockbox playback log (.scrobbler.log)",),
            patterns=("*.scrobbler.log",),
            options=(KEEP_SKIPPED,),
        )


    @hookimpl
    def koito_import_detect(path, head):
        return 100 if head.startswith(b"#AUDIOSCROBBLER/") else None


    @hookimpl
    def koito_import_parse(path, options):
        keep_skipped = options.get("rockbox", KEEP_SKIPPED.name, KEEP_SKIPPED.default)
        with open(path, encoding="utf-8", errors="replace") as fp:
            for number, line in enumerate(fp, 1):
                if line.startswith("#") or not line.strip():
                    continue  # the header, or an empty line
                where = f"line {number}"
                fields = line.rstrip("\r\n").split("\t")
                if len(fields) < 7:
                    yield Skip("wrong_field_count", where, raw=line)
                    continue
                artist, album, title, _track, length, rating, stamp = fields[:7]
                if rating != "L" and not keep_skipped:
                    yield Skip("skipped_on_player", where, raw=line)
                elif not artist or not title:
                    yield Skip("missing_title" if artist else "missing_artist", where, raw=line)
                elif not stamp.isdigit():
                    yield Skip("bad_timestamp", where, raw=line)
                else:
                    yield Listen(
                        artist=artist,
                        title=title,
                        album=album,
                        time=int(stamp),
                        duration=int(length) if length.isdigit() else 0,
                        recording_mbid=mbid(fields[7]) if len(fields) > 7 else "",
                        client="rockbox",
                    )

The entry-point name ("rockbox") is the plugin's name: what ``koito-import plugins``
lists, what ``--plugin`` takes and what ``KOITO_IMPORT_LOAD_PLUGINS`` filters on. A
third-party plugin registered under a built-in's name replaces that built-in.

Plugins only parse. They never open a database, never match artists, and do not apply
the import window (``--since``/``--until``): the pipeline does all of that, the same way
for every format, so a plugin stays a small, testable function from a file to records.

Hooks
=====

koito_import_describe()
    Return a :class:`~koito_import.plugin_types.PluginInfo` (or a dict with the same
    keys): ``name``, human-readable ``formats``, file-name ``patterns`` (shell globs,
    matched case-sensitively against the file's base name) and the ``options`` the
    plugin takes (:class:`~koito_import.plugin_types.OptionSpec`: name, type, default,
    help). ``koito-import plugins`` shows them; detection uses the patterns only to
    break a tie between plugins equally sure of the content, or as a last resort when
    no plugin recognises the content; ``koito-import run -o PLUGIN.KEY=VALUE`` accepts
    exactly the declared options, converted to their types.

koito_import_detect(path, head)
    Say how sure the plugin is that it can read ``path``: an int from 1 to 100;
    ``None`` for "cannot tell from the content" (the file name may still choose this
    plugin); ``0`` for "the content is another format" (the name will not choose it
    either: a ``*.jsonl`` of another app is not ListenBrainz's). ``head`` holds the
    file's first 64 KiB, so most plugins never open the file; a plugin whose format is
    a container (a zip) may open it to look at member names. Judge by content, not by
    the name (the host already uses the patterns), and be cheap and quiet: an
    exception counts as ``None``. Rough scale: 100 = unmistakable (the format's own
    marker or key set), 90 = the structure and field names fit, 50 = plausible, below
    that = a guess.

koito_import_parse(path, options)
    Read ``path`` and return an iterator (usually a generator) of
    :class:`~koito_import.listen.Listen` and :class:`~koito_import.plugin_types.Skip`
    records, in file order — matching in Koito depends on order. Stream: a lifetime
    export can be a gigabyte, so never hold the whole file or all listens (see
    :mod:`koito_import.jsonstream`). Yield one ``Skip(reason, where)`` for every item
    that does not become a listen, so that the summary adds up; raise
    :class:`~koito_import.errors.InputError` (file, where, why) only when the file as
    a whole cannot be read — missing, not the format, corrupt or truncated.
    ``options`` is a :class:`~koito_import.plugin_types.ParseOptions`: read the value
    the user set for one of your declared options with ``options.get(PLUGIN, KEY,
    default)`` (absent when not set). The host calls this hook of one plugin only: the
    one detection chose, or the one named by ``--plugin``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from koito_import.listen import Listen
    from koito_import.plugin_types import ParseOptions, PluginInfo, Skip

#: The entry-point group and pluggy project name.
PROJECT = "koito_import"

hookspec = pluggy.HookspecMarker(PROJECT)
#: Mark a plugin's hook implementations with this.
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def koito_import_describe() -> PluginInfo | Mapping[str, Any]:
    """Describe the plugin: its name, formats, usual file names and the options it takes."""


@hookspec
def koito_import_detect(path: Path, head: bytes) -> int | None:
    """Return 0–100 for how sure the plugin is that it reads this file, None if it does not."""


@hookspec(firstresult=True)
def koito_import_parse(path: Path, options: ParseOptions) -> Iterator[Listen | Skip] | None:
    """Stream the file's listens, and a Skip for each item that is not one, in file order."""
