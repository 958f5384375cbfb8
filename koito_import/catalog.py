"""The small catalog interface Koito's matching rules are written against.

The resolver only ever asks these questions and makes these changes. The per-listen
path answers them with SQL against Koito's tables; the bulk path answers them from an
in-memory slice of the catalog and writes the changes in bulk afterwards. Both therefore
run the very same rules.

Lookups follow Koito's queries: names and titles compare exactly (case-sensitive) and
against *any* alias for artists but only the *primary* title for albums and tracks;
where several rows match, the lowest id wins.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from koito_import import _normalize

#: Alias sources Koito writes: the primary alias of an entity made from a scrobble, the
#: other aliases of an imported artist or album, those of an imported track.
CANONICAL = "Canonical"
MUSICBRAINZ = "MusicBrainz"
IMPORT = "Import"


@dataclass(slots=True)
class Artist:
    id: int
    name: str
    mbid: str | None = None
    #: Every alias, primary included (Koito's "already in the list" check uses them all).
    aliases: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Album:
    id: int
    title: str
    mbid: str | None = None


@dataclass(slots=True)
class Track:
    id: int
    title: str
    album_id: int
    mbid: str | None = None
    duration: int = 0


@dataclass(frozen=True, slots=True)
class Resolved:
    """What one listen resolved to; ``artist_ids[0]`` is the primary artist."""

    artist_ids: tuple[int, ...]
    album_id: int
    track_id: int


class Catalog(Protocol):
    """Questions and changes the matching rules need, and nothing else."""

    def artist_by_mbid(self, mbid: str) -> Artist | None: ...

    def artist_by_name(self, name: str) -> Artist | None: ...

    def create_artist(
        self, name: str, mbid: str = "", aliases: Sequence[str] = (), image_url: str = ""
    ) -> Artist:
        """New artist, primary alias ``name`` ("Canonical"), others as "MusicBrainz"."""
        ...

    def set_artist_mbid(self, artist: Artist, mbid: str) -> None: ...

    def album_by_mbid(self, mbid: str) -> Album | None: ...

    def album_by_title(self, title: str, artist_id: int) -> Album | None: ...

    def create_album(
        self,
        title: str,
        artist_ids: Sequence[int],
        mbid: str = "",
        aliases: Sequence[str] = (),
        various_artists: bool = False,
        image_url: str = "",
    ) -> Album:
        """New album linked to ``artist_ids`` (the first as primary)."""
        ...

    def set_album_mbid(self, album: Album, mbid: str) -> None: ...

    def link_album_artists(self, album_id: int, artist_ids: Sequence[int]) -> None:
        """Link artists to an album (not primary), ignoring links that exist."""
        ...

    def track_by_mbid(self, mbid: str) -> Track | None: ...

    def track_by_info(self, title: str, album_id: int, artist_ids: Sequence[int]) -> Track | None:
        """Track with this primary title on this album linked to *every* given artist.

        Koito compares the count of distinct linked artists with the length of the list,
        so a list with a repeated id never matches; implementations must keep that.
        """
        ...

    def create_track(
        self,
        title: str,
        album_id: int,
        artist_ids: Sequence[int],
        mbid: str = "",
        duration: int = 0,
        aliases: Sequence[str] = (),
    ) -> Track:
        """New track linked to its artists (first primary) and them to its album."""
        ...

    def set_track_mbid(self, track: Track, mbid: str) -> None: ...

    def set_track_duration(self, track: Track, duration: int) -> None: ...


# --- how Koito stores what it creates (shared by every Catalog implementation) ----------


def unique(values: Iterable[str]) -> list[str]:
    """First occurrence of each value, in order."""
    return list(dict.fromkeys(values))


def stored_mbid(value: Any) -> str | None:
    """MBIDs come back as str (SQLite) or uuid.UUID (PostgreSQL); compare them as str."""
    return None if value is None else str(value)


def image_columns(url: str) -> tuple[str | None, str | None]:
    """(image, image_source): a fresh image id for an http(s) URL; any URL kept as source."""
    return (str(uuid.uuid4()) if url.startswith("http") else None), (url or None)


def alias_rows(primary: str, others: Sequence[str], source: str) -> list[tuple[str, str, bool]]:
    """(alias, source, is_primary) rows of a new artist: the primary as "Canonical", each
    other alias once with ``source``; Koito's insert-or-ignore drops a repeat of the primary."""
    rows = [(primary, CANONICAL, True)]
    rows += [(a, source, False) for a in unique(others) if a != primary]
    return rows


def album_alias_rows(
    title: str, others: Sequence[str], dialect: str
) -> list[tuple[str, str, bool]]:
    """Alias rows of a new album, as Koito's SaveAlbum writes them.

    The title is the primary alias as it is (never trimmed). Then Koito saves the other
    aliases: the title and the given ones, each trimmed, as "MusicBrainz" — on
    PostgreSQL always, on SQLite only when the album comes with aliases (a Koito
    export). That happens in one transaction, so a single blank alias (``""`` in
    ``others``, kept there by prepare) leaves the album with its primary alias alone.
    """
    rows = [(title, CANONICAL, True)]
    if not others and dialect != "postgresql":
        return rows
    extras = [_normalize.clean(title), *others]
    if not all(extras):
        return rows
    rows += [(a, MUSICBRAINZ, False) for a in unique(extras) if a != title]
    return rows


def track_alias_rows(title: str, others: Sequence[str]) -> list[tuple[str, str, bool]]:
    """Alias rows of a new track: the title verbatim as primary; for a Koito export (the
    only source of ``others``) also the trimmed title and the other aliases, as "Import".

    A blank alias would make Koito abort the whole import; it is left out instead.
    """
    rows = [(title, CANONICAL, True)]
    if others:
        extras = [_normalize.clean(title), *others]
        rows += [(a, IMPORT, False) for a in unique(extras) if a and a != title]
    return rows
