"""koito-import plugin for the Audioscrobbler portable-player log (Rockbox's .scrobbler.log).

The format: header lines starting with ``#`` (``#AUDIOSCROBBLER/1.1``, ``#TZ/UTC`` or
``#TZ/UNKNOWN``, ``#CLIENT/...``), then one tab-separated line per play:
artist, album, title, track number, length in seconds, rating (``L`` listened / ``S``
skipped), unix timestamp, MusicBrainz recording id (may be empty).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from koito_import.errors import InputError
from koito_import.hookspecs import hookimpl
from koito_import.listen import Listen
from koito_import.records import ParseOptions, PluginInfo, Skip, mbid

MAGIC = b"#AUDIOSCROBBLER/"
OFFSET_ENV = "KOITO_IMPORT_ROCKBOX_UTC_OFFSET"
_OFFSET = re.compile(r"([+-])(\d{1,2}):?(\d{2})\Z")


def _utc_offset_seconds() -> int:
    """The player clock's offset from UTC; logs marked #TZ/UNKNOWN are local time."""
    raw = os.environ.get(OFFSET_ENV, "").strip()
    if not raw:
        return 0
    m = _OFFSET.match(raw)
    if not m:
        raise InputError(OFFSET_ENV, "", f"{raw!r} is not a UTC offset like +02:00")
    sign = -1 if m.group(1) == "-" else 1
    return sign * (int(m.group(2)) * 3600 + int(m.group(3)) * 60)


@hookimpl
def koito_import_describe() -> PluginInfo:
    """Name, format and usual file name."""
    return PluginInfo(
        "rockbox",
        formats=("Audioscrobbler portable player log (Rockbox)",),
        patterns=(".scrobbler.log", "*.scrobbler.log", "scrobbler*.log"),
    )


@hookimpl
def koito_import_detect(path: Path, head: bytes) -> int | None:
    """Sure when the file starts with the format's own marker."""
    return 100 if head.lstrip(b"\xef\xbb\xbf").startswith(MAGIC) else None


@hookimpl
def koito_import_parse(path: Path, options: ParseOptions) -> Iterator[Listen | Skip]:
    """One listen per ``L`` line, one skip per other line, in file order."""
    offset = _utc_offset_seconds()
    try:
        handle = open(path, encoding="utf-8", errors="replace", newline="")  # noqa: SIM115
    except OSError as exc:
        raise InputError(str(path), "", exc.strerror or str(exc)) from None
    with handle:
        header_utc = False
        for number, line in enumerate(handle, 1):
            line = line.rstrip("\r\n")
            if number == 1 and not line.lstrip("\ufeff").startswith("#AUDIOSCROBBLER/"):
                raise InputError(
                    str(path),
                    "line 1",
                    "not an Audioscrobbler log (#AUDIOSCROBBLER/ header missing)",
                )
            if line.startswith("#"):
                header_utc = header_utc or line.strip() == "#TZ/UTC"
                continue
            if not line.strip():
                continue
            where = f"line {number}"
            fields = line.split("\t")
            if len(fields) < 7:
                yield Skip("wrong_field_count", where)
                continue
            artist, album, title, _track, length, rating, stamp = fields[:7]
            if rating != "L":
                yield Skip("skipped_on_player", where)
                continue
            if not artist.strip():
                yield Skip("missing_artist", where)
                continue
            if not title.strip():
                yield Skip("missing_title", where)
                continue
            try:
                when = int(stamp)
            except ValueError:
                yield Skip("bad_timestamp", where)
                continue
            seconds = int(length) if length.isdigit() else 0
            yield Listen(
                artist=artist,
                title=title,
                time=when if header_utc else when - offset,
                artist_names=(artist,),
                album=album,
                recording_mbid=mbid(fields[7]) if len(fields) > 7 else "",
                duration=seconds,
                client="rockbox",
            )
