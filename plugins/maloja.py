"""Maloja exports: ``{"maloja": {...}, "scrobbles": [...]}``, or a bare list of scrobbles.

Each scrobble is ``{"time": unix, "track": {"artists": [...], "title": ...,
"album": {"albumtitle": ...} | null, "length": ...}, "duration": ..., "origin": ...}``.

What Koito does, and so do we:

- Maloja tends to list a featured artist first and the credit second
  (``["feat", "main • feat"]``). The first artist string containing ``" • "`` moves to
  the front; every string is split on ``" • "``; the pieces are de-duplicated ignoring
  case (Go's ``strings.EqualFold``, first spelling kept). Those are the listen's artist
  names; the artist string is the first string of the reordered list, unsplit.
- An item with no artists, or an empty title, is skipped (``missing_artist`` /
  ``missing_title``). So is one whose first artist is ``""`` — Koito's SubmitListen
  refuses it and aborts the whole import; we skip only the item.
- The album title comes from ``track.album.albumtitle`` (``album: null`` → none).
- No duration is passed (Koito ignores ``length`` and ``duration``): 0.
- The client is ``"maloja"``.

Where we differ because Koito would refuse the whole file (it decodes all of it into Go
structs first): a scrobble with a field of the wrong JSON type is skipped
(``wrong_type``); one without a usable integer ``time`` is skipped (``bad_timestamp``)
rather than imported at 1970-01-01 as Koito does for a missing time. The bare-list form
(Maloja's API output) is read although Koito cannot.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from koito_import.hookspecs import hookimpl
from koito_import.jsonstream import ITEMS, first_byte, iter_items, peek_items, read_head
from koito_import.listen import Listen
from koito_import.plugin_types import ParseOptions, PluginInfo, Skip
from koito_import.records import WrongType, go_object, go_str, go_str_list
from koito_import.textfold import fold_key

CLIENT = "maloja"
SEPARATOR = " \u2022 "  # " • "
_INT64 = 1 << 63


@hookimpl
def koito_import_describe() -> PluginInfo:
    """Maloja's export file, and its bare scrobble list."""
    return PluginInfo(
        name="maloja",
        formats=("Maloja export (JSON)", "Maloja scrobble list (JSON array)"),
        patterns=("*maloja*",),
    )


def _looks_like_scrobble(item: Any) -> bool:
    if type(item) is not dict or "time" not in item:
        return False
    track = item.get("track")
    return type(track) is dict and "artists" in track and "title" in track


@hookimpl
def koito_import_detect(path: Path, head: bytes) -> int | None:
    """100 for a Maloja export object, 90 for a bare list of Maloja scrobbles."""
    c = first_byte(head)
    if c == ord("{"):
        items = peek_items(head, ("scrobbles", ITEMS))
        if items and _looks_like_scrobble(items[0]):
            return 100
        if b'"scrobbles"' in head and b'"maloja"' in head:
            return 90
    elif c == ord("["):
        items = peek_items(head, (ITEMS,))
        if items and _looks_like_scrobble(items[0]):
            return 90
    return None


def unique_ignoring_case(names: list[str]) -> list[str]:
    """Koito's ``utils.UniqueIgnoringCase``: the first spelling of each, in order."""
    if len(names) < 2:
        return list(names)
    seen: set[str] = set()
    unique: list[str] = []
    for name in names:
        key = fold_key(name)
        if key not in seen:
            seen.add(key)
            unique.append(name)
    return unique


def move_first_match_to_front(items: list[str], substring: str) -> list[str]:
    """Koito's ``utils.MoveFirstMatchToFront``: the first string containing ``substring`` first."""
    for i, item in enumerate(items):
        if substring in item:
            return items if i == 0 else [item, *items[:i], *items[i + 1 :]]
    return items


def _fast(item: Any) -> Listen | None:
    """The common, well-typed scrobble without the per-field checks; None otherwise.

    Gives exactly what :func:`scrobble_to_listen` gives for such an item (a test checks
    both on every fixture); anything unusual takes the careful path.
    """
    if type(item) is not dict:
        return None
    track = item.get("track")
    time = item.get("time")
    if type(track) is not dict or type(time) is not int:
        return None
    artists = track.get("artists")
    title = track.get("title")
    album = track.get("album")
    if type(artists) is not list or type(title) is not str or not title or not artists:
        return None
    if album is None:
        album_title = ""
    elif type(album) is dict and type(album_title := album.get("albumtitle", "")) is str:
        pass
    else:
        return None
    if len(artists) == 1:
        artist = artists[0]
        if type(artist) is not str or not artist or SEPARATOR in artist:
            return None
        names: tuple[str, ...] = (artist,)
    else:
        return None
    if not -_INT64 <= time < _INT64:
        return None
    return Listen(artist, title, time, names, album_title, client=CLIENT)


def scrobble_to_listen(item: Any, where: str) -> Listen | Skip:
    """One Maloja scrobble as a Listen, or the Skip saying why it is not one."""
    if type(item) is not dict:
        return Skip("not_an_object", where, raw=item)
    try:
        track = go_object(item, "track")
        artists = go_str_list(track, "artists", "track.artists")
        title = go_str(track, "title", "track.title")
        album = go_str(
            go_object(track, "album", "track.album"), "albumtitle", "track.album.albumtitle"
        )
    except WrongType as exc:
        return Skip("wrong_type", f"{where} ({exc.field})", raw=item)
    artists = move_first_match_to_front(artists, SEPARATOR)
    if not artists or artists[0] == "":
        return Skip("missing_artist", where, raw=item)
    if title == "":
        return Skip("missing_title", where, raw=item)
    time = item.get("time")
    if type(time) is not int or not -_INT64 <= time < _INT64:
        return Skip("bad_timestamp", f"{where} (time)", raw=item)
    split: list[str] = []
    for artist in artists:
        if SEPARATOR in artist:
            split.extend(artist.split(SEPARATOR))
        else:
            split.append(artist)
    names = unique_ignoring_case(split)
    return Listen(
        artist=artists[0],
        title=title,
        time=time,
        artist_names=tuple(names),
        album=album,
        client=CLIENT,
    )


@hookimpl
def koito_import_parse(path: Path, options: ParseOptions) -> Iterator[Listen | Skip]:
    """Stream the scrobbles of a Maloja export (object or bare list)."""
    steps = (ITEMS,) if first_byte(read_head(path, 4096)) == ord("[") else ("scrobbles", ITEMS)
    for number, item in iter_items(path, steps):
        yield _fast(item) or scrobble_to_listen(item, f"item {number}")
