"""Spotify streaming history: the extended history Koito reads, and the account-data one.

**Extended streaming history** (``Streaming_History_Audio_*.json``, several files per
export), a JSON list of ``{"ts": RFC 3339, "ms_played", "master_metadata_track_name",
"master_metadata_album_artist_name", "master_metadata_album_album_name", "reason_end",
"episode_name", "audiobook_title", ...}``. As Koito does:

- only plays with ``reason_end == "trackdone"`` are kept (``not_trackdone`` otherwise);
- items without a track name or artist are skipped — podcast episodes and audiobook
  chapters (``podcast_or_audiobook``), or tracks Spotify no longer has metadata for
  (``missing_title`` / ``missing_artist``);
- artist = ``master_metadata_album_artist_name`` (one string, no artist list), album =
  ``master_metadata_album_album_name``, duration = ``ms_played / 1000`` truncated (Go's
  int32 division), time = ``ts`` (when the play *ended*), client ``"spotify"``.

**Account-data streaming history** (``StreamingHistory_music_0.json``, older
``StreamingHistory0.json``), a JSON list of ``{"endTime": "2023-01-31 18:04",
"artistName", "trackName", "msPlayed"}``. Its podcasts (``StreamingHistory_podcast_*.json``:
``{"endTime", "podcastName", "episodeName", "msPlayed"}``) and audiobooks
(``StreamingHistory_audiobook_*.json``: ``{"endTime", "audiobookName", "chapterName",
"msPlayed"}``, sometimes with ``authorName``) have no track and are skipped
(``podcast_or_audiobook``) like the extended history's.
Koito cannot read it; we treat it like the extended history: artist ``artistName``,
title ``trackName``, no album (Koito then uses the track title), duration
``msPlayed // 1000``, time ``endTime`` in UTC (the end of the play, like ``ts``). It has
no ``reason_end``, so by default a play counts when it lasted at least 30 seconds
(``too_short`` otherwise) — the rule Last.fm and ListenBrainz use, and what Koito issue
#205 asks for.

The option ``min_seconds`` (``koito-import run -o spotify.min_seconds=N``, or its alias
``--spotify-min-seconds N``) set to a number replaces both defaults: every play of at
least that many seconds is kept, whatever its ``reason_end`` (``too_short`` otherwise).
Each item is classified by its own keys, so a file mixing both kinds works.

Where we differ because Koito would refuse the whole file: an item whose ``ts`` is not a
valid RFC 3339 time is skipped (``bad_timestamp``; a missing one too, where Koito would
import it at year 1), and a field of the wrong JSON type skips the item (``wrong_type``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from koito_import.hookspecs import hookimpl
from koito_import.jsonstream import ITEMS, first_byte, iter_items, peek_items
from koito_import.listen import Listen
from koito_import.plugin_types import OptionSpec, ParseOptions, PluginInfo, Skip
from koito_import.records import WrongType, go_int, go_str, trunc_div
from koito_import.timeparse import parse_rfc3339, parse_spotify_end_time

CLIENT = "spotify"
#: Minimum play for the account-data history, which has no ``reason_end``.
ACCOUNT_DATA_MIN_MS = 30_000
#: The plugin's one option: unset keeps Koito's rule (see the module docstring).
MIN_SECONDS = OptionSpec(
    "min_seconds",
    int,
    None,
    "keep plays of at least this many seconds instead of Koito's rule, 'trackdone only' "
    "(30 is Spotify's own count rule)",
    minimum=0,
)

_PODCAST_KEYS = (
    "episode_name",
    "episode_show_name",
    "spotify_episode_uri",
    "audiobook_title",
    "audiobook_uri",
    "audiobook_chapter_uri",
    "audiobook_chapter_title",
)
#: The account-data history's podcast and audiobook keys (it has no URIs).
_ACCOUNT_PODCAST_KEYS = (
    "podcastName",
    "episodeName",
    "audiobookName",
    "chapterName",
    "authorName",
)
_EXTENDED_KEYS = ("ts", "ms_played", "reason_end", "master_metadata_track_name")


@hookimpl
def koito_import_describe() -> PluginInfo:
    """Spotify's extended and account-data streaming histories."""
    return PluginInfo(
        name="spotify",
        formats=(
            "Spotify extended streaming history (JSON)",
            "Spotify account-data streaming history (JSON)",
        ),
        patterns=("*Streaming_History_Audio*", "StreamingHistory*.json"),
        options=(MIN_SECONDS,),
    )


@hookimpl
def koito_import_detect(path: Path, head: bytes) -> int | None:
    """100 for an extended-history list, 95 for an account-data list."""
    if first_byte(head) != ord("["):
        return None
    items = peek_items(head, (ITEMS,))
    if not items or type(items[0]) is not dict:
        return None
    item = items[0]
    if "ts" in item and ("ms_played" in item or "master_metadata_track_name" in item):
        return 100
    if "endTime" in item and "msPlayed" in item:
        return 95
    return None


def _is_podcast(item: Mapping[str, Any], keys: tuple[str, ...]) -> bool:
    return any(item.get(key) for key in keys)


def extended_to_listen(item: Mapping[str, Any], where: str, min_ms: int | None) -> Listen | Skip:
    """One extended-history play as a Listen, or the Skip saying why it is not one."""
    try:
        reason_end = go_str(item, "reason_end")
        ms_played = go_int(item, "ms_played", bits=32)
        title = go_str(item, "master_metadata_track_name")
        artist = go_str(item, "master_metadata_album_artist_name")
        album = go_str(item, "master_metadata_album_album_name")
    except WrongType as exc:
        return Skip("wrong_type", f"{where} ({exc.field})", raw=item)
    if min_ms is None:
        if reason_end != "trackdone":
            return Skip("not_trackdone", where, raw=item)
    elif ms_played < min_ms:
        return Skip("too_short", where, raw=item)
    time = parse_rfc3339(item.get("ts"))
    if time is None:
        return Skip("bad_timestamp", f"{where} (ts)", raw=item)
    if title == "" or artist == "":
        if _is_podcast(item, _PODCAST_KEYS):
            return Skip("podcast_or_audiobook", where, raw=item)
        return Skip("missing_title" if title == "" else "missing_artist", where, raw=item)
    return Listen(
        artist=artist,
        title=title,
        time=time,
        album=album,
        duration=trunc_div(ms_played, 1000),
        client=CLIENT,
    )


def account_data_to_listen(
    item: Mapping[str, Any], where: str, min_ms: int | None
) -> Listen | Skip:
    """One account-data play as a Listen, or the Skip saying why it is not one."""
    try:
        ms_played = go_int(item, "msPlayed")
        title = go_str(item, "trackName")
        artist = go_str(item, "artistName")
    except WrongType as exc:
        return Skip("wrong_type", f"{where} ({exc.field})", raw=item)
    if ms_played < (ACCOUNT_DATA_MIN_MS if min_ms is None else min_ms):
        return Skip("too_short", where, raw=item)
    time = parse_spotify_end_time(item.get("endTime"))
    if time is None:
        return Skip("bad_timestamp", f"{where} (endTime)", raw=item)
    if title == "" or artist == "":
        if _is_podcast(item, _ACCOUNT_PODCAST_KEYS):
            return Skip("podcast_or_audiobook", where, raw=item)
        return Skip("missing_title" if title == "" else "missing_artist", where, raw=item)
    return Listen(
        artist=artist,
        title=title,
        time=time,
        duration=trunc_div(ms_played, 1000),
        client=CLIENT,
    )


def item_to_listen(item: Any, where: str, min_ms: int | None) -> Listen | Skip:
    """Classify one item by its keys and convert it."""
    if type(item) is not dict:
        return Skip("not_an_object", where, raw=item)
    if any(key in item for key in _EXTENDED_KEYS) or "endTime" not in item:
        return extended_to_listen(item, where, min_ms)
    return account_data_to_listen(item, where, min_ms)


@hookimpl
def koito_import_parse(path: Path, options: ParseOptions) -> Iterator[Listen | Skip]:
    """Stream the plays of one Spotify history file."""
    seconds = options.get("spotify", MIN_SECONDS.name, MIN_SECONDS.default)
    min_ms = None if seconds is None else round(seconds * 1000)
    items = iter_items(path, (ITEMS,))
    return (item_to_listen(item, f"item {number}", min_ms) for number, item in items)
