"""The listen record: what an importer produces and what the resolver consumes.

Importers only parse; every field here carries the meaning Koito's own
``SubmitListenOpts`` gives it, so a plugin author can map a format onto it without
knowing anything about the database. Strings are kept as the source gives them;
``koito_import._normalize`` trims and validates them before matching.

MBIDs are canonical lower-case UUID strings; ``""`` means "none" (Koito's uuid.Nil).
Times are whole Unix seconds (UTC); Koito truncates sub-second precision.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

#: Koito's importers write every listen as the first user.
DEFAULT_USER_ID = 1


@dataclass(frozen=True, slots=True)
class EntityRecord:
    """An artist, album or track as a Koito export describes it (already resolved there)."""

    #: The primary alias: the entity's name or title.
    name: str
    #: Every alias the export lists (may include the primary one), in file order.
    aliases: tuple[str, ...] = ()
    mbid: str = ""
    #: Artists and albums only: the image URL Koito exported.
    image_url: str = ""


@dataclass(frozen=True, slots=True)
class KoitoEntities:
    """The pre-resolved catalog entries of one listen from a Koito export.

    Koito imports such a listen by matching each entity by MBID (or, without one, by
    its primary alias) instead of running the scrobble matching rules.
    """

    artists: tuple[EntityRecord, ...]
    album: EntityRecord
    track: EntityRecord
    various_artists: bool = False


@dataclass(slots=True, unsafe_hash=True)
class Listen:
    """One scrobble, in the vocabulary of Koito's matching rules.

    Treat it as immutable. It is not a frozen dataclass only because a frozen one costs
    five times as much to construct, and an import builds millions of them.
    """

    #: The artist string as submitted (Koito's ``Artist``): parsed for "feat." and
    #: separators only when nothing else identifies the artists.
    artist: str
    #: The track title.
    title: str
    #: Unix seconds, UTC.
    time: int
    #: The listen's artist names in order (Koito's ``ArtistNames``), may be empty.
    artist_names: tuple[str, ...] = ()
    #: The release (album) title; empty means "use the track title".
    album: str = ""
    #: Artist MBIDs in order (Koito's ``ArtistMbzIDs``); ``""`` entries stand for uuid.Nil.
    artist_mbids: tuple[str, ...] = ()
    #: (artist name, artist MBID) pairs (Koito's ``ArtistMbidMappings``).
    mbid_mappings: tuple[tuple[str, str], ...] = ()
    release_mbid: str = ""
    recording_mbid: str = ""
    #: Track length in whole seconds, 0 when unknown.
    duration: int = 0
    #: The listening client, e.g. "maloja", "spotify".
    client: str = ""
    #: Set only by the Koito-export importer: the entities to match directly.
    entities: KoitoEntities | None = None


#: Listen's fields in constructor order: the one place that order is written down for
#: code that builds or takes apart listens positionally (the parse workers' pickling).
LISTEN_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Listen))


#: A listen is *heard before* when, before the run that imports it, the user already had
#: a listen at the same second (any track: one person plays one track at a time, and
#: Maloja keys its scrobbles the same way). Such a listen is neither matched nor written,
#: so importing a file twice, or a file whose listens Koito received live meanwhile
#: (whatever titles MusicBrainz gave them), adds nothing. Listens of one run at the same
#: second are all imported, as Koito would (docs/decisions.md).
