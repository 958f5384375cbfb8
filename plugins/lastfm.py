"""Last.fm scrobbles as exported by lastfm.ghan.nl (``recenttracks-<user>-<unix>.json``).

The file is a JSON list of API pages, each ``{"track": [...], "@attr": {...}}``; a track
is ``{"artist": {"mbid", "#text"}, "album": {"mbid", "#text"}, "name", "mbid",
"date": {"uts", "#text"}, "@attr": {"nowplaying": "true"}?, ...}``. Pages are streamed
and so are the tracks inside each page. As Koito does:

- album title = ``album["#text"]``, or the track name when that is empty;
- an item without ``name`` or ``artist["#text"]`` is skipped (``missing_title`` /
  ``missing_artist``);
- time = ``date.uts`` read as Go's ``strconv.ParseInt``; failing that ``date["#text"]``
  as ``"02 Jan 2006, 15:04"`` in UTC; failing both the item is skipped — as
  ``now_playing`` when it is the "now playing" entry (``@attr.nowplaying``), which
  Last.fm sends without a date, ``bad_timestamp`` otherwise;
- the artist MBID (``""`` when absent or invalid, i.e. Go's uuid.Nil) is always the one
  entry of the listen's artist-MBID list, and when valid also an (artist, MBID) mapping;
- release and recording MBIDs are used when they parse (Go's ``uuid.Parse``);
- the client is ``"lastfm"``.

Where we differ because Koito would refuse the whole file: an item with a field of the
wrong JSON type (for the fields read: artist, album, name, mbid, date) is skipped
(``wrong_type``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from koito_import.hookspecs import hookimpl
from koito_import.jsonstream import ITEMS, first_byte, iter_items, peek_items
from koito_import.listen import Listen
from koito_import.plugin_types import ParseOptions, PluginInfo, Skip
from koito_import.records import WrongType, go_object, go_str, mbid
from koito_import.timeparse import parse_go_int, parse_lastfm_text

CLIENT = "lastfm"
_STEPS = (ITEMS, "track", ITEMS)


@hookimpl
def koito_import_describe() -> PluginInfo:
    """The lastfm.ghan.nl JSON export of a Last.fm account's scrobbles."""
    return PluginInfo(
        name="lastfm",
        formats=("Last.fm scrobbles (lastfm.ghan.nl JSON export)",),
        patterns=("*recenttracks*",),
    )


@hookimpl
def koito_import_detect(path: Path, head: bytes) -> int | None:
    """100 when the first page's first track has Last.fm's artist/name/date shape."""
    if first_byte(head) != ord("["):
        return None
    tracks = peek_items(head, _STEPS)
    if not tracks or type(tracks[0]) is not dict:
        return None
    track = tracks[0]
    artist = track.get("artist")
    if type(artist) is dict and "#text" in artist and "name" in track:
        return 100 if ("date" in track or "@attr" in track) else 90
    return None


def _now_playing(track: dict[str, Any]) -> bool:
    attr = track.get("@attr")
    return type(attr) is dict and str(attr.get("nowplaying", "")).lower() == "true"


def track_to_listen(track: Any, where: str) -> Listen | Skip:
    """One Last.fm track entry as a Listen, or the Skip saying why it is not one."""
    if type(track) is not dict:
        return Skip("not_an_object", where, raw=track)
    try:
        artist_obj = go_object(track, "artist")
        artist = go_str(artist_obj, "#text", "artist.#text")
        artist_mbid = go_str(artist_obj, "mbid", "artist.mbid")
        album_obj = go_object(track, "album")
        album = go_str(album_obj, "#text", "album.#text")
        album_mbid = go_str(album_obj, "mbid", "album.mbid")
        name = go_str(track, "name")
        track_mbid = go_str(track, "mbid")
        date = go_object(track, "date")
        uts = go_str(date, "uts", "date.uts")
        date_text = go_str(date, "#text", "date.#text")
    except WrongType as exc:
        return Skip("wrong_type", f"{where} ({exc.field})", raw=track)
    if album == "":
        album = name
    if artist == "":
        return Skip("missing_artist", where, raw=track)
    if name == "":
        return Skip("missing_title", where, raw=track)
    time = parse_go_int(uts)
    if time is None:
        time = parse_lastfm_text(date_text)
        if time is None:
            return Skip("now_playing" if _now_playing(track) else "bad_timestamp", where, raw=track)
    artist_id = mbid(artist_mbid)
    return Listen(
        artist=artist,
        title=name,
        time=time,
        album=album,
        artist_mbids=(artist_id,),
        mbid_mappings=((artist, artist_id),) if artist_id else (),
        release_mbid=mbid(album_mbid),
        recording_mbid=mbid(track_mbid),
        client=CLIENT,
    )


@hookimpl
def koito_import_parse(path: Path, options: ParseOptions) -> Iterator[Listen | Skip]:
    """Stream the tracks of every page, in file order."""
    return (
        track_to_listen(track, f"page {page}, item {number}")
        for (page, number), track in iter_items(path, _STEPS)
    )
