"""Koito's matching rules: which artists, album and track a listen belongs to.

This is Koito's SubmitListen as it behaves with MusicBrainz unreachable (every
MusicBrainz call fails, so each branch takes its fallback), and Koito's own importer for
Koito exports. Each function states the Koito behaviour it reproduces where the
behaviour is surprising; the code follows Koito's source (commit f7dc41c) where it and
docs/koito.md differ, e.g. an artist matched by name through an MBID mapping gets the
mapping's MBID even when it already had another one.

The rules are written once against ``Catalog``; listens must be ``prepare``d first.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from koito_import import _normalize
from koito_import.catalog import Album, Artist, Catalog, Resolved, Track
from koito_import.errors import InvalidListen
from koito_import.listen import KoitoEntities, Listen


def resolve(catalog: Catalog, listen: Listen, separators: Sequence[re.Pattern[str]]) -> Resolved:
    """Match (or create) the artists, album and track of one prepared listen."""
    if listen.entities is not None:
        return _resolve_koito_export(catalog, listen, listen.entities)
    artists = associate_artists(catalog, listen, separators)
    if not artists:
        # Koito would crash here (it indexes the first artist); we skip the listen.
        raise InvalidListen("no_artist_found")
    artist_ids = tuple(a.id for a in artists)
    album = associate_album(catalog, listen, artist_ids)
    catalog.link_album_artists(album.id, artist_ids)
    track = associate_track(catalog, listen, album.id, artist_ids)
    if track.duration == 0 and listen.duration:
        catalog.set_track_duration(track, listen.duration)
    return Resolved(artist_ids, album.id, track.id)


# --- artists -------------------------------------------------------------------------


def _known_by_name(name: str, artists: Sequence[Artist]) -> bool:
    eq = _normalize.equal_fold
    return any(eq(name, alias) for a in artists for alias in (*a.aliases, a.name))


def _known_by_mbid(mbid: str, artists: Sequence[Artist]) -> bool:
    return any(a.mbid == mbid for a in artists if a.mbid)


def match_artists_by_names(
    catalog: Catalog, names: Sequence[str], existing: Sequence[Artist]
) -> list[Artist]:
    """Each name not already in the list (ignoring case): by alias, else a new artist."""
    found: list[Artist] = []
    for name in names:
        if _known_by_name(name, existing) or _known_by_name(name, found):
            continue
        artist = catalog.artist_by_name(name)
        if artist is None:
            artist = catalog.create_artist(name)
        found.append(artist)
    return found


def _match_by_mappings(catalog: Catalog, listen: Listen) -> list[Artist]:
    found: list[Artist] = []
    for name, mbid in listen.mbid_mappings:
        artist = catalog.artist_by_mbid(mbid) if mbid else None
        if artist is None:
            artist = catalog.artist_by_name(name)
            if artist is not None:
                if mbid and artist.mbid != mbid:
                    catalog.set_artist_mbid(artist, mbid)
            else:
                artist = catalog.create_artist(name, mbid)
        found.append(artist)
    return found


def _match_by_mbid_list(
    catalog: Catalog, listen: Listen, prior: Sequence[Artist], separators: Sequence[re.Pattern[str]]
) -> list[Artist]:
    """Koito's matchArtistsByMBID with MusicBrainz down.

    The first MBID it cannot find (or a nil one) sends it to name matching, and then it
    returns only the name matches: artists found by MBID earlier in this loop are
    dropped from its result (they come back through the later name pass).
    """
    found: list[Artist] = []
    for mbid in listen.artist_mbids:
        if mbid and (_known_by_mbid(mbid, prior) or _known_by_mbid(mbid, found)):
            continue
        if not mbid:
            return match_artists_by_names(catalog, listen.artist_names, found)
        artist = catalog.artist_by_mbid(mbid)
        if artist is not None:
            found.append(artist)
            continue
        names = listen.artist_names or tuple(
            _normalize.parse_artists(listen.artist, listen.title, separators)
        )
        return match_artists_by_names(catalog, names, found)
    return found


def associate_artists(
    catalog: Catalog, listen: Listen, separators: Sequence[re.Pattern[str]]
) -> list[Artist]:
    """The listen's artists in order; the first is the primary artist."""
    result: list[Artist] = []
    if listen.mbid_mappings:
        result += _match_by_mappings(catalog, listen)
    if len(listen.artist_mbids) > len(result):
        result += _match_by_mbid_list(catalog, listen, result, separators)
    if len(listen.artist_names) > len(result):
        result += match_artists_by_names(catalog, listen.artist_names, result)
    if not result:
        names = (
            *listen.artist_names,
            *_normalize.parse_artists(listen.artist, listen.title, separators),
        )
        result += match_artists_by_names(catalog, names, ())
    return result


# --- album and track -------------------------------------------------------------------


def associate_album(catalog: Catalog, listen: Listen, artist_ids: Sequence[int]) -> Album:
    """By release MBID, else by title on the primary artist, else a new album."""
    if listen.release_mbid:
        album = catalog.album_by_mbid(listen.release_mbid)
        if album is not None:
            return album
    title = listen.album or listen.title
    album = catalog.album_by_title(title, artist_ids[0])
    if album is None:
        return catalog.create_album(title, artist_ids, mbid=listen.release_mbid)
    if album.mbid is None and listen.release_mbid:
        catalog.set_album_mbid(album, listen.release_mbid)
    return album


def associate_track(
    catalog: Catalog, listen: Listen, album_id: int, artist_ids: Sequence[int]
) -> Track:
    """By recording MBID, else by title + album + all artists, else a new track."""
    mbid = listen.recording_mbid
    if mbid:
        track = catalog.track_by_mbid(mbid)
        if track is not None:
            return track
    track = catalog.track_by_info(listen.title, album_id, artist_ids)
    if track is None:
        return catalog.create_track(
            listen.title, album_id, artist_ids, mbid=mbid, duration=listen.duration
        )
    if mbid and track.mbid is None:
        catalog.set_track_mbid(track, mbid)
    return track


# --- Koito exports -----------------------------------------------------------------------


def _resolve_koito_export(catalog: Catalog, listen: Listen, ent: KoitoEntities) -> Resolved:
    """Koito's importer for its own exports: match each entity by MBID only, or by its
    primary alias when it has none; create what is missing with the exported aliases.
    No duration fill and no extra artist links, as in Koito."""
    artist_ids: list[int] = []
    for rec in ent.artists:
        artist = catalog.artist_by_mbid(rec.mbid) if rec.mbid else catalog.artist_by_name(rec.name)
        if artist is None:
            artist = catalog.create_artist(rec.name, rec.mbid, rec.aliases, rec.image_url)
        artist_ids.append(artist.id)
    ids = tuple(artist_ids)

    rec = ent.album
    album = (
        catalog.album_by_mbid(rec.mbid) if rec.mbid else catalog.album_by_title(rec.name, ids[0])
    )
    if album is None:
        album = catalog.create_album(
            rec.name, ids, rec.mbid, rec.aliases, ent.various_artists, rec.image_url
        )

    rec = ent.track
    if rec.mbid:
        track = catalog.track_by_mbid(rec.mbid)
    else:
        track = catalog.track_by_info(rec.name, album.id, ids)
    if track is None:
        track = catalog.create_track(
            rec.name, album.id, ids, rec.mbid, listen.duration, rec.aliases
        )
    return Resolved(ids, album.id, track.id)
