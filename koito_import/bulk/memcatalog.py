"""The resolver's ``Catalog`` answered from memory: the bulk path's half of the matching.

``SqlCatalog`` asks the database one question per lookup; this class loads, with a few
set queries, the *slice* of the catalog a batch of listens can touch, and then answers
every question from dictionaries, recording what the rules create or change so that the
bulk submitter can write it all at once. The resolver is the same object code in both
paths, so the two paths agree exactly when the answers agree; everything below exists
to make them agree:

* Lookups behave like SqlCatalog's SQL: artist by *any* alias, album/track by *primary*
  title, lowest id wins, an artist whose lowest-id row has no primary alias is "not
  found" (Koito's queries go through the *_with_name views), ``track_by_info`` needs
  count(distinct linked artists among the ids) == len(ids), so a repeated id never
  matches.
* Every lookup returns a *fresh* object, as SqlCatalog does. The resolver mutates the
  objects it holds (``set_artist_mbid`` sets ``artist.mbid``) and later compares MBIDs
  of objects it fetched earlier; sharing one object per entity would let a later
  change show through an earlier reference, which the per-listen path never does.
* Completeness: an answer is only right if every row that could answer it is loaded.
  The catalog tracks which names, MBIDs and titles its slice *covers*; a question
  outside the coverage loads the missing rows first (``ensure``), so a forgotten item
  in the batch prefetch costs a query, never a wrong answer. Coverage of album titles
  is per (title, loaded artist) and of track titles per (title, loaded album); loading
  new artists or albums therefore also loads their albums/tracks with covered titles.
* New entities get *provisional* ids (``PROVISIONAL_BASE`` + n, per table, in creation
  order): larger than every database id, so "lowest id wins" ranks them as Koito would
  rank the rows it inserts. ``take_changes`` gives them real ids, in the same order,
  when they are handed to the writer.
* Changes to rows loaded from the database (MBIDs, durations, album-artist links) are
  overlaid in memory and never overwritten by later loads: within a batch nothing but
  this catalog writes the catalog tables. The writer may have stored some of the batch's
  own rows by the time a later query runs (it writes while matching goes on); a loaded
  row with one of those real ids is the batch's own, already in memory, and is skipped.
* Every change is made here, so this class also tells the bulk path which earlier
  resolutions a change may have made wrong (``watch`` / ``take_stale``).
"""

from __future__ import annotations

import re
from array import array
from bisect import bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from koito_import import _normalize
from koito_import.catalog import (
    MUSICBRAINZ,
    Album,
    Artist,
    Track,
    album_alias_rows,
    alias_rows,
    image_columns,
    stored_mbid,
    track_alias_rows,
    unique,
)
from koito_import.listen import Listen
from koito_import.stores.bulkwrite import ChangeSet
from koito_import.stores.slices import SliceReader

#: Provisional ids of entities created in memory start here (far above real ids).
PROVISIONAL_BASE = 1 << 60


@dataclass(slots=True)
class Needs:
    """The names, MBIDs and titles a set of listens can ask the catalog about."""

    names: set[str] = field(default_factory=set)
    artist_mbids: set[str] = field(default_factory=set)
    release_mbids: set[str] = field(default_factory=set)
    album_titles: set[str] = field(default_factory=set)
    recording_mbids: set[str] = field(default_factory=set)
    track_titles: set[str] = field(default_factory=set)

    def add(self, listen: Listen, separators: Sequence[re.Pattern[str]]) -> None:
        """Everything ``resolver.resolve`` may look up for this prepared listen."""
        ent = listen.entities
        if ent is not None:
            for rec in ent.artists:
                if rec.mbid:
                    self.artist_mbids.add(rec.mbid)
                else:
                    self.names.add(rec.name)
            if ent.album.mbid:
                self.release_mbids.add(ent.album.mbid)
            else:
                self.album_titles.add(ent.album.name)
            if ent.track.mbid:
                self.recording_mbids.add(ent.track.mbid)
            else:
                self.track_titles.add(ent.track.name)
            return
        names = self.names
        names.update(listen.artist_names)
        for name, mbid in listen.mbid_mappings:
            names.add(name)
            if mbid:
                self.artist_mbids.add(mbid)
        for mbid in listen.artist_mbids:
            if mbid:
                self.artist_mbids.add(mbid)
        if not listen.artist_names:
            # Names parsed from the artist string are used only when the listen has no
            # artist names (step 4, and the MBID-list fallback); with names they never are.
            names.update(_normalize.parse_artists(listen.artist, listen.title, separators))
        if listen.release_mbid:
            self.release_mbids.add(listen.release_mbid)
        self.album_titles.add(listen.album or listen.title)
        if listen.recording_mbid:
            self.recording_mbids.add(listen.recording_mbid)
        self.track_titles.add(listen.title)


#: What a row holds instead of a list it does not need (rows loaded from the database,
#: and new rows once handed to the writer): a catalog of a whole 1M-listen file holds
#: ~200k rows, and an empty list or set apiece cost more than the rows' own fields.
_NONE: tuple[()] = ()


class _Row:
    """What every entity row holds: its MBID now and in the database, its new aliases.

    ``db_mbid`` (and a track's ``db_duration``) is the value the database holds once the
    writes handed over so far have landed (None for a row not handed over yet).
    """

    __slots__ = ("db_mbid", "mbid", "new_aliases")

    def __init__(self, mbid: str | None) -> None:
        self.mbid = mbid
        self.db_mbid = mbid
        #: (alias, source, is_primary) rows to insert with a new entity, until handed over.
        self.new_aliases: Sequence[tuple[str, str, bool]] = _NONE


class _ArtistRow(_Row):
    __slots__ = ("aliases", "image", "image_source", "primary")

    def __init__(self, primary: str | None, mbid: str | None, aliases: list[str]) -> None:
        super().__init__(mbid)
        self.primary = primary
        self.aliases = aliases
        self.image: str | None = None
        self.image_source: str | None = None


class _AlbumRow(_Row):
    __slots__ = ("image", "image_source", "links", "title", "various")

    def __init__(self, title: str, mbid: str | None) -> None:
        super().__init__(mbid)
        self.title = title
        #: Linked artist ids (a tuple: few, and rarely added to).
        self.links: tuple[int, ...] = _NONE
        self.various = False
        self.image: str | None = None
        self.image_source: str | None = None


class _TrackRow(_Row):
    __slots__ = ("album_id", "artists", "db_duration", "duration", "new_links", "title")

    def __init__(self, title: str, album_id: int, mbid: str | None, duration: int) -> None:
        super().__init__(mbid)
        self.title = title
        self.album_id = album_id
        self.duration = duration
        self.db_duration = duration
        #: Linked artist ids, without repeats (a tuple: one to three, set when loaded or
        #: created and never changed).
        self.artists: tuple[int, ...] = _NONE
        #: New tracks only, until handed over: (artist_id, is_primary) as create_track
        #: inserted them.
        self.new_links: Sequence[tuple[int, bool]] = _NONE


class _IdRuns:
    """A set of ids given out mostly in ascending runs (the ids allocated for new rows),
    kept as the runs' bounds: a few bytes for a whole run instead of ~60 an id."""

    __slots__ = ("_highs", "_lows", "_others")

    def __init__(self) -> None:
        self._lows = array("q")
        self._highs = array("q")
        #: Ids that came below the last run (no allocator here does that; kept exact).
        self._others: set[int] = set()

    def update(self, ids: Iterable[int]) -> None:
        lows, highs = self._lows, self._highs
        for i in ids:
            if highs and i == highs[-1] + 1:
                highs[-1] = i
            elif not highs or i > highs[-1]:
                lows.append(i)
                highs.append(i)
            else:
                self._others.add(i)

    def __contains__(self, i: int) -> bool:
        k = bisect_right(self._lows, i) - 1
        return (k >= 0 and i <= self._highs[k]) or i in self._others


class MemoryCatalog:
    """A ``Catalog`` over an in-memory slice of the database plus the batch's own changes."""

    def __init__(self, reader: SliceReader, dialect: str) -> None:
        #: Where the slice comes from (its statements wait for queued writes first).
        self._read = reader
        #: The backend's name: Koito's rules for album aliases differ by it.
        self._dialect = dialect
        self._artists: dict[int, _ArtistRow] = {}
        self._albums: dict[int, _AlbumRow] = {}
        self._tracks: dict[int, _TrackRow] = {}
        self._artist_by_alias: dict[str, int] = {}
        self._artist_by_mbid: dict[str, int] = {}
        self._album_by_mbid: dict[str, int] = {}
        self._album_by_title: dict[tuple[str, int], int] = {}
        self._track_by_mbid: dict[str, int] = {}
        #: (title, album) -> the track id, or ids in ascending order when several.
        self._tracks_by_title: dict[tuple[str, int], int | list[int]] = {}
        # What the loaded slice answers completely (see the module docstring).
        self._cov = Needs()
        self._db_artists: set[int] = set()
        self._db_albums: set[int] = set()
        # Changes to write.
        #: The provisional ids of the entities created, in creation order.
        self.new_artists = range(PROVISIONAL_BASE, PROVISIONAL_BASE)
        self.new_albums = range(PROVISIONAL_BASE, PROVISIONAL_BASE)
        self.new_tracks = range(PROVISIONAL_BASE, PROVISIONAL_BASE)
        #: (artist_id, release_id, is_primary) links not in the database and not handed
        #: over yet, first one wins.
        self.new_album_links: list[tuple[int, int, bool]] = []
        #: Real ids of the new entities handed to the writer, by provisional index.
        self.real_artists = array("q")
        self.real_albums = array("q")
        self.real_tracks = array("q")
        # The same as sets (a loaded row with one of these ids is already in memory).
        self._own_artists = _IdRuns()
        self._own_albums = _IdRuns()
        self._own_tracks = _IdRuns()
        # Rows whose MBID (or duration) changed since the previous take_changes.
        self._dirty_artists: set[int] = set()
        self._dirty_albums: set[int] = set()
        self._dirty_tracks: set[int] = set()
        #: Number of changes made (the bulk submitter checks a failed resolve made none).
        self.changes = 0
        #: Queries run because a lookup fell outside the prefetched slice.
        self.lazy_loads = 0
        # What resolutions read (see "Watching resolutions" below).
        self._reads: list[object] = []
        #: Token -> the watcher, or the watchers when several (most tokens have one).
        self._watchers: dict[object, int | list[int]] = {}
        self._stale: list[int] = []
        #: True when the resolution since ``start_reads`` must not be reused (see there).
        self.volatile = False

    # --- loading the slice ---------------------------------------------------------------

    def ensure(self, needs: Needs) -> None:
        """Load every row that could answer a question about these names/MBIDs/titles."""
        cov = self._cov
        names = needs.names - cov.names
        ambids = needs.artist_mbids - cov.artist_mbids
        new_artists = self._load_artists(names, ambids) if names or ambids else []
        cov.names |= names
        cov.artist_mbids |= ambids

        titles = needs.album_titles - cov.album_titles
        rmbids = needs.release_mbids - cov.release_mbids
        new_albums = self._load_albums(titles, rmbids, new_artists)
        cov.album_titles |= titles
        cov.release_mbids |= rmbids

        ttitles = needs.track_titles - cov.track_titles
        tmbids = needs.recording_mbids - cov.recording_mbids
        self._load_tracks(ttitles, tmbids, new_albums)
        cov.track_titles |= ttitles
        cov.recording_mbids |= tmbids

    def _load_artists(self, names: set[str], mbids: set[str]) -> list[int]:
        rows = self._read.artists(names, mbids)
        loaded: dict[int, _ArtistRow] = {}
        own = self._own_artists
        for aid, mbid, alias, primary in rows:
            if aid in self._artists or aid in own:
                continue  # memory wins: it may hold this batch's changes
            row = loaded.get(aid)
            if row is None:
                row = loaded[aid] = _ArtistRow(None, stored_mbid(mbid), [])
            row.aliases.append(alias)
            if primary and row.primary is None:
                row.primary = alias
        by_alias = self._artist_by_alias
        for aid, row in loaded.items():
            self._artists[aid] = row
            self._db_artists.add(aid)
            for alias in row.aliases:
                if by_alias.get(alias, aid + 1) > aid:
                    by_alias[alias] = aid
            if row.mbid is not None:
                self._artist_by_mbid[row.mbid] = aid
        return list(loaded)

    # The slice grows chunk by chunk (the bulk path resolves each chunk as it arrives), so
    # every query below is driven by what is *new* (titles, MBIDs, artists, albums) through
    # an index, and tests against what is already loaded run here, on Python sets. A query
    # carrying the whole loaded set each time would make a run quadratic.

    def _load_albums(self, titles: set[str], mbids: set[str], new_artists: list[int]) -> list[int]:
        albums = self._albums
        read = self._read
        found: dict[int, tuple[str, Any]] = {}
        if mbids:
            for rid, title, mbid in read.albums_by_mbid(mbids):
                found[rid] = (title, mbid)
        # Covered titles x newly loaded artists: the new artists' albums, kept by title.
        covered = self._cov.album_titles
        if new_artists and covered:
            for rid, title, mbid in read.albums_of_artists(new_artists):
                if title in covered:
                    found[rid] = (title, mbid)
        # New titles x all loaded artists: the albums with those titles (through the alias
        # index), kept if linked to a loaded artist (checked below, with their links).
        by_title: dict[int, tuple[str, Any]] = {}
        if titles and self._db_artists:
            for rid, title, mbid in read.albums_titled(titles):
                if rid not in found:
                    by_title[rid] = (title, mbid)
        own = self._own_albums
        candidates = [rid for rid in (*found, *by_title) if rid not in albums and rid not in own]
        if not candidates:
            return []
        links: dict[int, list[int]] = {}
        for aid, rid in read.album_artists(candidates):
            links.setdefault(rid, []).append(aid)
        db_artists = self._db_artists
        loaded: list[int] = []
        index = self._album_by_title
        for rid in candidates:
            if rid in found:
                title, mbid = found[rid]
            else:
                if not any(aid in db_artists for aid in links.get(rid, ())):
                    continue
                title, mbid = by_title[rid]
            album = albums[rid] = _AlbumRow(title, stored_mbid(mbid))
            self._db_albums.add(rid)
            loaded.append(rid)
            if mbid is not None:
                self._album_by_mbid[str(mbid)] = rid
            album.links = tuple(links.get(rid, ()))
            for aid in album.links:
                key = (title, aid)
                if index.get(key, rid + 1) > rid:
                    index[key] = rid
        return loaded

    def _load_tracks(self, titles: set[str], mbids: set[str], new_albums: list[int]) -> None:
        tracks = self._tracks
        read = self._read
        found: dict[int, tuple[str, int, Any, int]] = {}
        if mbids:
            for tid, *row in read.tracks_by_mbid(mbids):
                found[tid] = tuple(row)  # type: ignore[assignment]
        # Covered titles x newly loaded albums: the new albums' tracks, kept by title.
        covered = self._cov.track_titles
        if new_albums and covered:
            for tid, *row in read.tracks_of_albums(new_albums):
                if row[0] in covered:
                    found[tid] = tuple(row)  # type: ignore[assignment]
        # New titles x all loaded albums: the tracks with those titles (through the alias
        # index), kept if on a loaded album.
        db_albums = self._db_albums
        if titles and db_albums:
            for tid, *row in read.tracks_titled(titles):
                if row[1] in db_albums:
                    found[tid] = tuple(row)  # type: ignore[assignment]
        loaded: list[int] = []
        own = self._own_tracks
        for tid, (title, rid, mbid, duration) in found.items():
            if tid in tracks or tid in own:
                continue  # memory wins: it may hold this batch's changes
            tracks[tid] = _TrackRow(title, rid, stored_mbid(mbid), duration)
            loaded.append(tid)
            if mbid is not None:
                self._track_by_mbid[str(mbid)] = tid
            self._index_track((title, rid), tid)
        if loaded:
            linked: dict[int, list[int]] = {}
            for aid, tid in read.track_artists(loaded):
                linked.setdefault(tid, []).append(aid)
            for tid, aids in linked.items():
                tracks[tid].artists = tuple(dict.fromkeys(aids))

    def _index_track(self, key: tuple[str, int], tid: int) -> None:
        """Add a track to ``_tracks_by_title`` (one id, or ascending ids when several)."""
        held = self._tracks_by_title.get(key)
        if held is None:
            self._tracks_by_title[key] = tid
        elif isinstance(held, int):
            self._tracks_by_title[key] = sorted((held, tid))
        else:
            held.append(tid)
            held.sort()

    def _cover(self, **kw: str) -> None:
        """Load what one lookup outside the covered slice needs (should be rare)."""
        needs = Needs()
        for attr, value in kw.items():
            getattr(needs, attr).add(value)
        self.lazy_loads += 1
        self.ensure(needs)

    def listens_at(self, times: set[int], user_id: int) -> list[tuple[int, int]]:
        """(unix second, track id) of the user's stored listens at these seconds (after
        the writes queued so far)."""
        return self._read.listens_at(times, user_id)

    # --- artists -------------------------------------------------------------------------

    def _artist(self, artist_id: int | None) -> Artist | None:
        if artist_id is None:
            return None
        row = self._artists[artist_id]
        if row.primary is None:
            # Koito's queries only see artists that have a primary alias. The resolver
            # then creates an artist, which this lookup will not find next time either:
            # every listen of this key creates one, so its resolution is not reusable.
            self.volatile = True
            return None
        # The artist's MBID is part of what the resolver reads (it compares it).
        self._reads.append(artist_id)
        return Artist(artist_id, row.primary, row.mbid, list(row.aliases))

    def artist_by_mbid(self, mbid: str) -> Artist | None:
        if mbid not in self._cov.artist_mbids:
            self._cover(artist_mbids=mbid)
        self._reads.append(("am", mbid))
        return self._artist(self._artist_by_mbid.get(mbid))

    def artist_by_name(self, name: str) -> Artist | None:
        # No token for the name itself: aliases appear during a run only with a new
        # artist (the highest id), so an answer changes only from None, and a resolution
        # that got None created the artist itself.
        if name not in self._cov.names:
            self._cover(names=name)
        return self._artist(self._artist_by_alias.get(name))

    def create_artist(
        self, name: str, mbid: str = "", aliases: Sequence[str] = (), image_url: str = ""
    ) -> Artist:
        aid = self.new_artists.stop
        self.new_artists = range(PROVISIONAL_BASE, aid + 1)
        all_aliases = unique([name, *aliases]) if aliases else [name]
        row = _ArtistRow(name, mbid or None, all_aliases)
        row.db_mbid = None
        row.image, row.image_source = image_columns(image_url)
        row.new_aliases = alias_rows(name, aliases, MUSICBRAINZ)
        self._artists[aid] = row
        by_alias = self._artist_by_alias
        for alias in all_aliases:
            by_alias.setdefault(alias, aid)  # any existing entry has a lower id
        if mbid:
            self._artist_by_mbid[mbid] = aid
            self._touch(("am", mbid))
        self.changes += 1
        return Artist(aid, name, mbid or None, list(all_aliases))

    def set_artist_mbid(self, artist: Artist, mbid: str) -> None:
        row = self._artists[artist.id]
        if row.mbid is not None:
            if self._artist_by_mbid.get(row.mbid) == artist.id:
                del self._artist_by_mbid[row.mbid]
            self._replace(("am", row.mbid))
        self._replace(("am", mbid))
        self._replace(artist.id)
        row.mbid = mbid
        self._artist_by_mbid[mbid] = artist.id
        artist.mbid = mbid
        self._dirty_artists.add(artist.id)
        self.changes += 1

    # --- albums --------------------------------------------------------------------------

    def _album(self, album_id: int | None) -> Album | None:
        if album_id is None:
            return None
        row = self._albums[album_id]
        return Album(album_id, row.title, row.mbid)

    def album_by_mbid(self, mbid: str) -> Album | None:
        if mbid not in self._cov.release_mbids:
            self._cover(release_mbids=mbid)
        self._reads.append(("rm", mbid))
        return self._album(self._album_by_mbid.get(mbid))

    def album_by_title(self, title: str, artist_id: int) -> Album | None:
        if title not in self._cov.album_titles:
            self._cover(album_titles=title)
        key = (title, artist_id)
        self._reads.append(key)
        return self._album(self._album_by_title.get(key))

    def create_album(
        self,
        title: str,
        artist_ids: Sequence[int],
        mbid: str = "",
        aliases: Sequence[str] = (),
        various_artists: bool = False,
        image_url: str = "",
    ) -> Album:
        rid = self.new_albums.stop
        self.new_albums = range(PROVISIONAL_BASE, rid + 1)
        row = _AlbumRow(title, mbid or None)
        row.db_mbid = None
        row.various = bool(various_artists)
        row.image, row.image_source = image_columns(image_url)
        row.new_aliases = album_alias_rows(title, aliases, self._dialect)
        self._albums[rid] = row
        if mbid:
            self._album_by_mbid[mbid] = rid
            self._touch(("rm", mbid))
        self.changes += 1
        for i, aid in enumerate(artist_ids):
            self._link(rid, row, aid, i == 0)
        return Album(rid, title, mbid or None)

    def _link(self, rid: int, album: _AlbumRow, artist_id: int, primary: bool) -> None:
        """INSERT INTO artist_releases ... ON CONFLICT DO NOTHING: the first link wins."""
        if artist_id in album.links:
            return
        album.links += (artist_id,)
        self.new_album_links.append((artist_id, rid, primary))
        key = (album.title, artist_id)
        held = self._album_by_title.get(key)
        if held is None or held > rid:
            # The lowest-id album of this title linked to this artist changed: what
            # album_by_title answered for it before is out of date.
            self._album_by_title[key] = rid
            if held is None:
                self._touch(key)
            else:
                self._replace(key)
        self.changes += 1

    def set_album_mbid(self, album: Album, mbid: str) -> None:
        row = self._albums[album.id]
        if row.mbid is not None:
            if self._album_by_mbid.get(row.mbid) == album.id:
                del self._album_by_mbid[row.mbid]
            self._replace(("rm", row.mbid))
        self._replace(("rm", mbid))
        row.mbid = mbid
        self._album_by_mbid[mbid] = album.id
        album.mbid = mbid
        self._dirty_albums.add(album.id)
        self.changes += 1

    def link_album_artists(self, album_id: int, artist_ids: Sequence[int]) -> None:
        row = self._albums[album_id]
        for aid in artist_ids:
            self._link(album_id, row, aid, False)

    # --- tracks --------------------------------------------------------------------------

    def _track(self, track_id: int | None) -> Track | None:
        if track_id is None:
            return None
        row = self._tracks[track_id]
        return Track(track_id, row.title, row.album_id, row.mbid, row.duration)

    def track_by_mbid(self, mbid: str) -> Track | None:
        if mbid not in self._cov.recording_mbids:
            self._cover(recording_mbids=mbid)
        self._reads.append(("tm", mbid))
        return self._track(self._track_by_mbid.get(mbid))

    def track_by_info(self, title: str, album_id: int, artist_ids: Sequence[int]) -> Track | None:
        if title not in self._cov.track_titles:
            self._cover(track_titles=title)
        # No token: tracks gain artist links only when created (the highest id), so a
        # found track stays the answer and a None was followed by this resolution's
        # own new track.
        wanted = set(artist_ids)
        if len(wanted) != len(artist_ids):
            # count(DISTINCT artist_id) can never reach len(ids) with a repeated id, so
            # every listen of this key creates a new track: nothing to reuse.
            self.volatile = True
            return None
        held = self._tracks_by_title.get((title, album_id))
        if held is None:
            return None
        tracks = self._tracks
        for tid in (held,) if isinstance(held, int) else held:
            linked = tracks[tid].artists
            if all(aid in linked for aid in wanted):
                return self._track(tid)
        return None

    def create_track(
        self,
        title: str,
        album_id: int,
        artist_ids: Sequence[int],
        mbid: str = "",
        duration: int = 0,
        aliases: Sequence[str] = (),
    ) -> Track:
        tid = self.new_tracks.stop
        self.new_tracks = range(PROVISIONAL_BASE, tid + 1)
        row = _TrackRow(title, album_id, mbid or None, duration)
        row.db_mbid = None
        row.new_aliases = track_alias_rows(title, aliases)
        self._tracks[tid] = row
        if mbid:
            self._track_by_mbid[mbid] = tid
            self._touch(("tm", mbid))
        self._index_track((title, album_id), tid)
        # INSERT INTO artist_tracks ... ON CONFLICT DO NOTHING: a repeated id keeps its
        # first row (and is_primary only for the very first one).
        linked = dict.fromkeys(artist_ids)
        row.artists = tuple(linked)
        row.new_links = [(aid, aid == artist_ids[0]) for aid in linked]
        self.changes += 1
        self.link_album_artists(album_id, artist_ids)
        return Track(tid, title, album_id, mbid or None, duration)

    def set_track_mbid(self, track: Track, mbid: str) -> None:
        row = self._tracks[track.id]
        if row.mbid is not None:
            if self._track_by_mbid.get(row.mbid) == track.id:
                del self._track_by_mbid[row.mbid]
            self._replace(("tm", row.mbid))
        self._replace(("tm", mbid))
        row.mbid = mbid
        self._track_by_mbid[mbid] = track.id
        track.mbid = mbid
        self._dirty_tracks.add(track.id)
        self.changes += 1

    def set_track_duration(self, track: Track, duration: int) -> None:
        self._tracks[track.id].duration = duration
        track.duration = duration
        self._dirty_tracks.add(track.id)
        self.changes += 1

    # --- watching resolutions (the bulk path's memo) -----------------------------------

    def start_reads(self) -> None:
        """Begin recording what the next resolution reads."""
        self._reads = []
        self.volatile = False

    def watch(self, watcher: int) -> None:
        """Report ``watcher`` through ``take_stale`` once anything read since
        ``start_reads`` changes.

        A resolution's result can change only through what it read: the artists it got
        (their MBIDs), the MBIDs it looked up, and the (album title, artist) pairs it
        looked up; every mutation below that changes one of those answers touches it.
        Name lookups and track lookups need no token (see there). Changes made by the
        watched resolution itself come before the watch: a creation only turns its own
        "not found" into what it created, which re-resolving would find; a change that
        replaced an answer it had read makes it ``volatile`` (``_replace``), and the
        bulk path then matches the key's next listen again, as Koito would.
        """
        watchers = self._watchers
        for token in self._reads:
            bucket = watchers.get(token)
            if bucket is None:
                watchers[token] = watcher
            elif isinstance(bucket, int):
                watchers[token] = [bucket, watcher]
            else:
                bucket.append(watcher)
        self._reads = []

    def take_stale(self) -> list[int]:
        """Watchers whose reads changed since the previous call (may repeat, may be old)."""
        stale, self._stale = self._stale, []
        return stale

    def _replace(self, token: object) -> None:
        """``_touch`` for a change that replaces an answer, not one that creates it.

        When the resolution under way read that answer itself, running it again would
        read the new one and may take another path, or make the change back (an MBID
        moved away and back within one resolution): not a fixed point, so not reused.
        This is deliberately broad (an MBID set on an artist found by name also counts):
        such a key costs one more resolution, at its next listen, and no proof is needed
        of which replacements are harmless.
        """
        if token in self._reads:
            self.volatile = True
        self._touch(token)

    def _touch(self, token: object) -> None:
        bucket = self._watchers.pop(token, None)
        if bucket is None:
            return
        if isinstance(bucket, int):
            self._stale.append(bucket)
        else:
            self._stale += bucket

    # --- what to write -------------------------------------------------------------------

    def real_track(self, track_id: int) -> int:
        """The database id of a track: a provisional id handed over, or a stored id."""
        if track_id >= PROVISIONAL_BASE:
            return self.real_tracks[track_id - PROVISIONAL_BASE]
        return track_id

    def stored_track(self, track_id: int) -> int | None:
        """The database id of a track, or None for a new track not handed over yet."""
        if track_id < PROVISIONAL_BASE:
            return track_id
        index = track_id - PROVISIONAL_BASE
        real = self.real_tracks
        return real[index] if index < len(real) else None

    def take_changes(self, allocate: Callable[[str, int], list[int]]) -> ChangeSet:
        """What to write since the previous call, with real ids; new entities get theirs
        from ``allocate`` (table, count), in creation order.

        From here on the rows handed over count as stored: a later MBID or duration
        change to them is reported as a change of a stored row (an UPDATE).
        """
        a0, r0, t0 = len(self.real_artists), len(self.real_albums), len(self.real_tracks)
        artists, albums, tracks = self.new_artists[a0:], self.new_albums[r0:], self.new_tracks[t0:]
        for table, new, real, own in (
            ("artists", artists, self.real_artists, self._own_artists),
            ("releases", albums, self.real_albums, self._own_albums),
            ("tracks", tracks, self.real_tracks, self._own_tracks),
        ):
            ids = allocate(table, len(new))
            real.extend(ids)
            own.update(ids)
        base = PROVISIONAL_BASE
        real_artists, real_albums, real_tracks = (
            self.real_artists,
            self.real_albums,
            self.real_tracks,
        )

        def a_(i: int) -> int:
            return real_artists[i - base] if i >= base else i

        def r_(i: int) -> int:
            return real_albums[i - base] if i >= base else i

        ch = ChangeSet()
        for prov in artists:
            artist = self._artists[prov]
            real = a_(prov)
            ch.artists.append((real, artist.mbid, artist.image, artist.image_source))
            ch.artist_aliases += [(real, a, s, p) for a, s, p in artist.new_aliases]
            artist.new_aliases = _NONE
        for prov in albums:
            album = self._albums[prov]
            real = r_(prov)
            ch.albums.append((real, album.mbid, album.image, album.image_source, album.various))
            ch.album_aliases += [(real, a, s, p) for a, s, p in album.new_aliases]
            album.new_aliases = _NONE
        for aid, rid, primary in self.new_album_links:
            link = (a_(aid), r_(rid), primary)
            (ch.new_album_artists if aid >= base or rid >= base else ch.album_artists).append(link)
        self.new_album_links = []
        for prov in tracks:
            track = self._tracks[prov]
            real = real_tracks[prov - base]
            ch.tracks.append((real, track.mbid, r_(track.album_id), track.duration))
            ch.track_aliases += [(real, a, s, p) for a, s, p in track.new_aliases]
            ch.track_artists += [(a_(aid), real, p) for aid, p in track.new_links]
            track.new_aliases = track.new_links = _NONE

        # Rows created before this call and changed since: UPDATEs of stored rows (rows
        # created since the previous call were inserted with their values above).
        a_new, r_new, t_new = base + a0, base + r0, base + t0
        for aid in sorted(self._dirty_artists):
            arow = self._artists[aid]
            if aid < a_new and arow.mbid != arow.db_mbid:
                ch.artist_mbids.append((a_(aid), arow.db_mbid, arow.mbid))
                arow.db_mbid = arow.mbid
        for rid in sorted(self._dirty_albums):
            rrow = self._albums[rid]
            if rid < r_new and rrow.mbid != rrow.db_mbid:
                ch.album_mbids.append((r_(rid), rrow.db_mbid, rrow.mbid))
                rrow.db_mbid = rrow.mbid
        for tid in sorted(self._dirty_tracks):
            trow = self._tracks[tid]
            if tid >= t_new:
                continue
            if trow.mbid != trow.db_mbid:
                ch.track_mbids.append((self.real_track(tid), trow.db_mbid, trow.mbid))
                trow.db_mbid = trow.mbid
            if trow.duration != trow.db_duration:
                ch.track_durations.append((self.real_track(tid), trow.duration))
                trow.db_duration = trow.duration
        self._dirty_artists.clear()
        self._dirty_albums.clear()
        self._dirty_tracks.clear()
        for aid in artists:
            arow = self._artists[aid]
            arow.db_mbid = arow.mbid
        for rid in albums:
            rrow = self._albums[rid]
            rrow.db_mbid = rrow.mbid
        for tid in tracks:
            trow = self._tracks[tid]
            trow.db_mbid, trow.db_duration = trow.mbid, trow.duration
        return ch
