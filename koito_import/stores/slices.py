"""The bulk path's set queries: a slice of the catalog, read with a few statements.

The in-memory catalog (``bulk.memcatalog``) decides *what* to load — which names, MBIDs
and titles a batch can ask about — and this reader answers each of those questions for
a whole list at once, returning plain rows. The answers follow Koito's views: an album or
track is named by its *primary* alias; artists come with all their aliases, because
Koito matches an artist by any of them.

A list travels as one parameter (``BulkWriter.in_values`` / ``list_source``: a JSON
array on SQLite, an array on PostgreSQL), so a question costs one statement however
long its list is. ``sync`` runs before every statement: the bulk path writes on another
thread, and a read must see every write queued before it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import Any

from koito_import.stores.base import ALBUM_SELECT, TRACK_SELECT, Store
from koito_import.stores.bulkwrite import BulkWriter

#: A row of ``tracks``: id, title, album id, MBID, duration.
TrackRow = tuple[int, str, int, Any, int]
#: A row of ``releases``: id, title, MBID.
AlbumRow = tuple[int, str, Any]

_TRACK_BY_ALIAS = "SELECT t.id, ta.alias, t.release_id, t.musicbrainz_id, t.duration "


def _no_wait() -> None:
    pass


class SliceReader:
    """Set queries of the catalog for one store, through its bulk writer's dialect."""

    def __init__(
        self, store: Store, writer: BulkWriter, sync: Callable[[], None], via: Any = None
    ) -> None:
        self._in = writer.in_values
        self._src = writer.list_source
        self._join = writer.ordered_join
        if via is None:
            self._execute = store.execute
            self._listens_at = writer.listens_at
            self._sync = sync
        else:
            # A second connection (``BulkWriter.snapshot_reader``): it sees what is
            # committed, not the writes queued or in the open transaction, so it need
            # not wait for them; the catalog holds those in memory.
            self._execute = via.execute
            self._listens_at = via.listens_at
            self._sync = _no_wait

    def _q(self, sql: str, params: list[Any]) -> list[Any]:
        self._sync()
        return self._execute(sql, params).fetchall()

    # artists

    def artists(self, names: Collection[str], mbids: Collection[str]) -> list[Any]:
        """(id, MBID, alias, is_primary) of every alias of the artists that have one of
        these aliases or MBIDs."""
        subs: list[str] = []
        params: list[Any] = []
        if names:
            cond, p = self._in("alias", names, "text")
            subs.append(f"SELECT artist_id FROM artist_aliases WHERE {cond}")
            params.append(p)
        if mbids:
            cond, p = self._in("musicbrainz_id", mbids, "uuid")
            subs.append(f"SELECT id FROM artists WHERE {cond}")
            params.append(p)
        if not subs:
            return []
        return self._q(
            "SELECT a.id, a.musicbrainz_id, aa.alias, aa.is_primary FROM artists a "
            "JOIN artist_aliases aa ON aa.artist_id = a.id "
            f"WHERE a.id IN ({' UNION '.join(subs)})",
            params,
        )

    # albums

    def albums_by_mbid(self, mbids: Collection[str]) -> list[AlbumRow]:
        cond, p = self._in("r.musicbrainz_id", mbids, "uuid")
        return self._q(ALBUM_SELECT + f"WHERE {cond}", [p])

    def albums_of_artists(self, artist_ids: Collection[int]) -> list[AlbumRow]:
        """The albums linked to these artists (an album linked to two comes twice)."""
        cond, p = self._in("ar.artist_id", artist_ids, "int")
        return self._q(
            "SELECT r.id, ra.alias, r.musicbrainz_id FROM artist_releases ar "
            "JOIN release_aliases ra ON ra.release_id = ar.release_id "
            f"JOIN releases r ON r.id = ar.release_id WHERE {cond} AND ra.is_primary = true",
            [p],
        )

    def albums_titled(self, titles: Collection[str]) -> list[AlbumRow]:
        """The albums whose primary title is one of these (through the alias index)."""
        src, p = self._src("tl", titles, "text")
        return self._q(
            f"SELECT r.id, ra.alias, r.musicbrainz_id FROM {src} "
            f"{self._join} release_aliases ra ON ra.alias = tl.value "
            "JOIN releases r ON r.id = ra.release_id WHERE ra.is_primary = true",
            [p],
        )

    def album_artists(self, album_ids: Collection[int]) -> list[tuple[int, int]]:
        """(artist id, album id) links of these albums."""
        cond, p = self._in("release_id", album_ids, "int")
        return self._q(f"SELECT artist_id, release_id FROM artist_releases WHERE {cond}", [p])

    # tracks

    def tracks_by_mbid(self, mbids: Collection[str]) -> list[TrackRow]:
        cond, p = self._in("t.musicbrainz_id", mbids, "uuid")
        return self._q(TRACK_SELECT + f"WHERE {cond}", [p])

    def tracks_of_albums(self, album_ids: Collection[int]) -> list[TrackRow]:
        cond, p = self._in("t.release_id", album_ids, "int")
        return self._q(
            _TRACK_BY_ALIAS + "FROM tracks t JOIN track_aliases ta ON ta.track_id = t.id "
            f"WHERE {cond} AND ta.is_primary = true",
            [p],
        )

    def tracks_titled(self, titles: Collection[str]) -> list[TrackRow]:
        """The tracks whose primary title is one of these (through the alias index)."""
        src, p = self._src("tl", titles, "text")
        return self._q(
            _TRACK_BY_ALIAS + f"FROM {src} {self._join} track_aliases ta "
            "ON ta.alias = tl.value JOIN tracks t ON t.id = ta.track_id "
            "WHERE ta.is_primary = true",
            [p],
        )

    def track_artists(self, track_ids: Collection[int]) -> list[tuple[int, int]]:
        """(artist id, track id) links of these tracks."""
        cond, p = self._in("track_id", track_ids, "int")
        return self._q(f"SELECT artist_id, track_id FROM artist_tracks WHERE {cond}", [p])

    # listens

    def listens_at(self, times: Collection[int], user_id: int) -> list[tuple[int, int]]:
        """(unix second, track id) of the user's listens at these seconds."""
        self._sync()
        return self._listens_at(times, user_id)
