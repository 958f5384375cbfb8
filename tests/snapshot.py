"""A catalog as plain data without database ids, to compare two imports (tests only).

Two databases hold "the same catalog" when they have the same artists, albums, tracks,
aliases, links and listens, whatever ids they got. Each entity is described by its own
fields plus the descriptions of what it links to, so the comparison covers the links
too. Image ids are random UUIDs in Koito, so only whether an image is set counts.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

from koito_import.stores import Store


def _rows(store: Store, sql: str) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in store.execute(sql).fetchall()]


def _aliases(store: Store, table: str, column: str) -> dict[int, tuple]:
    out: dict[int, list] = defaultdict(list)
    for entity_id, alias, source, primary in _rows(
        store, f"SELECT {column}, alias, source, is_primary FROM {table}"
    ):
        out[entity_id].append((alias, source, bool(primary)))
    return {k: tuple(sorted(v)) for k, v in out.items()}


def catalog_snapshot(store: Store) -> dict[str, list]:
    """Sorted, id-free descriptions of every artist, album, track and listen."""
    artist_aliases = _aliases(store, "artist_aliases", "artist_id")
    artists = {
        aid: (str(mbid) if mbid else "", image is not None, src or "", artist_aliases.get(aid, ()))
        for aid, mbid, image, src in _rows(
            store, "SELECT id, musicbrainz_id, image, image_source FROM artists"
        )
    }
    links: dict[int, list] = defaultdict(list)
    for aid, rid, primary in _rows(
        store, "SELECT artist_id, release_id, is_primary FROM artist_releases"
    ):
        links[rid].append((artists[aid], bool(primary)))
    release_aliases = _aliases(store, "release_aliases", "release_id")
    albums = {
        rid: (
            str(mbid) if mbid else "",
            bool(various),
            image is not None,
            src or "",
            release_aliases.get(rid, ()),
            tuple(sorted(links[rid])),
        )
        for rid, mbid, various, image, src in _rows(
            store, "SELECT id, musicbrainz_id, various_artists, image, image_source FROM releases"
        )
    }
    track_links: dict[int, list] = defaultdict(list)
    for aid, tid, primary in _rows(
        store, "SELECT artist_id, track_id, is_primary FROM artist_tracks"
    ):
        track_links[tid].append((artists[aid], bool(primary)))
    track_aliases = _aliases(store, "track_aliases", "track_id")
    tracks = {
        tid: (
            str(mbid) if mbid else "",
            duration,
            albums[rid],
            track_aliases.get(tid, ()),
            tuple(sorted(track_links[tid])),
        )
        for tid, mbid, duration, rid in _rows(
            store, "SELECT id, musicbrainz_id, duration, release_id FROM tracks"
        )
    }
    time_sql = store.listen_epoch_sql
    listens = [
        (tracks[tid], ts, client or "", user)
        for tid, ts, client, user in _rows(
            store, f"SELECT track_id, {time_sql}, client, user_id FROM listens"
        )
    ]
    return {
        "artists": sorted(artists.values()),
        "albums": sorted(albums.values()),
        "tracks": sorted(tracks.values()),
        "listens": sorted(listens),
    }


def table_rows(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the catalog tables and the lookup cache, ids included, sorted.

    Stricter than :func:`catalog_snapshot`: two imports that created the same entities
    in the same order agree here too. Image ids are random, so only "set or not" counts.
    """
    queries = {
        "artists": "SELECT id, musicbrainz_id, image IS NOT NULL, image_source FROM artists",
        "artist_aliases": "SELECT artist_id, alias, source, is_primary FROM artist_aliases",
        "releases": "SELECT id, musicbrainz_id, various_artists, image IS NOT NULL, "
        "image_source FROM releases",
        "release_aliases": "SELECT release_id, alias, source, is_primary FROM release_aliases",
        "artist_releases": "SELECT artist_id, release_id, is_primary FROM artist_releases",
        "tracks": "SELECT id, musicbrainz_id, duration, release_id FROM tracks",
        "track_aliases": "SELECT track_id, alias, source, is_primary FROM track_aliases",
        "artist_tracks": "SELECT artist_id, track_id, is_primary FROM artist_tracks",
        "listens": f"SELECT track_id, {store.listen_epoch_sql}, client, user_id FROM listens",
    }

    def norm(v: Any) -> Any:
        if isinstance(v, uuid.UUID):
            return str(v)
        return int(v) if isinstance(v, bool) else v

    return {
        table: sorted(tuple(norm(v) for v in row) for row in store.execute(sql).fetchall())
        for table, sql in queries.items()
    }
