"""Koito's own export (version "1"): listens with their already-resolved catalog entries.

``{"version": "1", "exported_at", "user", "listens": [{"listened_at": RFC 3339,
"client", "track": {"mbid", "duration", "aliases": [{"alias", "source", "is_primary"}]},
"album": {"image_url", "mbid", "aliases", "various_artists"}, "artists": [{"image_url",
"mbid", "is_primary", "aliases"}]}]}``.

Koito does not run its scrobble matching on these: it matches each artist, the album and
the track directly (by MBID, else by primary alias), so each listen carries
``Listen.entities`` (:class:`~koito_import.listen.KoitoEntities`) for the resolver:

- an entity's name = the first alias marked ``is_primary`` (``""`` if none), aliases =
  every alias string in file order (duplicates and the primary one included — Koito's
  ``FlattenAliases``), mbid, image URL; the album's ``various_artists`` flag;
- artists in file order (Koito links the album to the *first* artist; the artists'
  ``is_primary`` flags are not used by Koito's importer, so they are not kept);
- ``Listen.artist`` / ``title`` / ``album`` / ``artist_names`` repeat the primary names
  (for display and keys), ``duration`` = the track's duration (Go's int32 conversion),
  ``time`` = ``listened_at``, ``client`` = ``client``. MBIDs live only in ``entities``.

A version other than ``"1"`` refuses the file before any listen is read
(InputError). Koito writes ``version`` first; when it comes after ``listens`` (an
edited or re-serialised export), one extra streaming pass finds it.

Where we differ because Koito would fail: a listen without artists is skipped
(``missing_artist``; Koito indexes the first artist and panics), one without a primary
track title too (``missing_title``); an ``mbid`` that is not a UUID counts as none
(Koito's decoder refuses the whole file); a listen whose ``listened_at`` is missing or
not RFC 3339 is skipped (``bad_timestamp``); fields of the wrong JSON type skip the
listen (``wrong_type``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from koito_import.errors import InputError
from koito_import.hookspecs import hookimpl
from koito_import.jsonstream import ITEMS, first_byte, iter_items, peek_items, top_level_values
from koito_import.listen import EntityRecord, KoitoEntities, Listen
from koito_import.plugin_types import ParseOptions, PluginInfo, Skip
from koito_import.records import (
    WrongType,
    go_bool,
    go_int,
    go_list,
    go_object,
    go_str,
    int32_wrap,
    mbid,
)
from koito_import.timeparse import parse_rfc3339

#: The only export version Koito (and so koito-import) reads.
SUPPORTED_VERSION = "1"
_STEPS = ("listens", ITEMS)


@hookimpl
def koito_import_describe() -> PluginInfo:
    """Koito's own JSON export."""
    return PluginInfo(
        name="koito", formats=("Koito export, version 1 (JSON)",), patterns=("*koito*",)
    )


@hookimpl
def koito_import_detect(path: Path, head: bytes) -> int | None:
    """100 when the first listen has Koito's alias-based shape, 90 on the top-level keys."""
    if first_byte(head) != ord("{"):
        return None
    items = peek_items(head, _STEPS)
    if items and type(items[0]) is dict:
        track = items[0].get("track")
        if type(track) is dict and "aliases" in track and "artists" in items[0]:
            return 100
    if b'"listens"' in head and b'"version"' in head and b'"exported_at"' in head:
        return 90
    return None


def _entity(obj: Mapping[str, Any], field: str, with_image: bool) -> EntityRecord:
    """A track, album or artist object as an EntityRecord (Go's typing, primary alias)."""
    aliases: list[str] = []
    primary: str | None = None
    # The Go typing of models.Alias, inlined: this runs four times per listen.
    for alias in go_list(obj, "aliases", f"{field}.aliases"):
        if type(alias) is dict:
            text = alias.get("alias")
            if text is None:
                text = ""
            elif type(text) is not str:
                raise WrongType(f"{field}.aliases.alias")
            source = alias.get("source")
            if source is not None and type(source) is not str:
                raise WrongType(f"{field}.aliases.source")
            is_primary = alias.get("is_primary")
            if is_primary is True:
                if primary is None:
                    primary = text
            elif is_primary is not None and is_primary is not False:
                raise WrongType(f"{field}.aliases.is_primary")
        elif alias is None:  # Go: a zero Alias (empty, not primary)
            text = ""
        else:
            raise WrongType(f"{field}.aliases")
        aliases.append(text)
    raw_mbid = obj.get("mbid")
    if raw_mbid is not None and type(raw_mbid) is not str:
        raise WrongType(f"{field}.mbid")
    return EntityRecord(
        name=primary or "",
        aliases=tuple(aliases),
        mbid=mbid(raw_mbid),
        image_url=go_str(obj, "image_url", f"{field}.image_url") if with_image else "",
    )


def listen_to_listen(item: Any, where: str) -> Listen | Skip:
    """One exported listen as a Listen with entities, or the Skip saying why it is not one."""
    if type(item) is not dict:
        return Skip("not_an_object", where, raw=item)
    try:
        client = go_str(item, "client")
        track_obj = go_object(item, "track")
        album_obj = go_object(item, "album")
        artist_objs = go_list(item, "artists")
        track = _entity(track_obj, "track", with_image=False)
        duration = int32_wrap(go_int(track_obj, "duration", "track.duration"))
        album = _entity(album_obj, "album", with_image=True)
        various = go_bool(album_obj, "various_artists", "album.various_artists")
        artists = []
        for artist_obj in artist_objs:
            if type(artist_obj) is not dict:
                raise WrongType("artists")
            go_bool(artist_obj, "is_primary", "artists.is_primary")
            artists.append(_entity(artist_obj, "artists", with_image=True))
    except WrongType as exc:
        return Skip("wrong_type", f"{where} ({exc.field})", raw=item)
    time = parse_rfc3339(item.get("listened_at"))
    if time is None:
        return Skip("bad_timestamp", f"{where} (listened_at)", raw=item)
    if not artists:
        return Skip("missing_artist", where, raw=item)
    if track.name == "":
        return Skip("missing_title", where, raw=item)
    return Listen(
        artist=artists[0].name,
        title=track.name,
        time=time,
        artist_names=tuple(a.name for a in artists),
        album=album.name,
        duration=duration,
        client=client,
        entities=KoitoEntities(
            artists=tuple(artists), album=album, track=track, various_artists=various
        ),
    )


def check_version(path: Path) -> None:
    """Refuse any export version but "1", before a single listen is read."""
    found = top_level_values(path, ("version",), stop_at="listens")
    if "version" not in found:
        found = top_level_values(path, ("version",))
    if "version" not in found:
        raise InputError(str(path), "version", "not a Koito export: it has no version")
    version = found["version"]
    if version != SUPPORTED_VERSION:
        raise InputError(
            str(path),
            "version",
            f"unsupported Koito export version {version!r} (only {SUPPORTED_VERSION!r} is read)",
        )


@hookimpl
def koito_import_parse(path: Path, options: ParseOptions) -> Iterator[Listen | Skip]:
    """Check the version, then stream the listens."""
    check_version(path)
    return (listen_to_listen(item, f"item {number}") for number, item in iter_items(path, _STEPS))
