"""What both storage backends share: the store interface and the SQL-backed catalog.

SQL here is written once, in the common subset of SQLite and PostgreSQL (``?``
placeholders are rewritten to ``%s`` for psycopg; ``ON CONFLICT DO NOTHING`` and
``RETURNING`` exist in both). The few real differences — how a listen's timestamp is
stored, how a MBID comes back — are the dialect's job.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from koito_import.catalog import (
    CANONICAL,
    IMPORT,
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

if TYPE_CHECKING:
    from koito_import.stores.bulkwrite import BulkWriter

__all__ = [
    "ALBUM_SELECT",
    "CANONICAL",
    "IMPORT",
    "MUSICBRAINZ",
    "TRACK_SELECT",
    "CatalogCounts",
    "SqlCatalog",
    "Store",
]

#: An album as the catalog reads it: id, primary title, MBID (Koito's view).
ALBUM_SELECT = "SELECT r.id, r.title, r.musicbrainz_id FROM releases_with_title r "
#: A track as the catalog reads it: id, primary title, album, MBID, duration.
TRACK_SELECT = (
    "SELECT t.id, t.title, t.release_id, t.musicbrainz_id, t.duration FROM tracks_with_title t "
)


@dataclass(frozen=True, slots=True)
class CatalogCounts:
    artists: int
    albums: int
    tracks: int
    listens: int


class Store(ABC):
    """A Koito database: its connection, transactions and the listen/lookup tables."""

    #: "sqlite" or "postgresql".
    dialect: str
    #: How to name the database in messages (a path, or a URL without password).
    display_name: str
    #: True when this run created Koito's schema in an empty database.
    created: bool = False
    #: Seconds a bulk run may hold the database's write lock before it commits what it
    #: has and lets other writers in; None: a file is one transaction (see ``bulk``).
    commit_every: float | None = None
    #: Seconds between such commits with no lock held (see ``SqliteStore``).
    commit_gap: float = 0.0

    @abstractmethod
    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement (``?`` placeholders) and return the cursor."""

    @abstractmethod
    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        """Run one statement for many parameter rows."""

    @abstractmethod
    def transaction(self) -> AbstractContextManager[None]:
        """All-or-nothing: commit on success, roll back on any exception."""

    @classmethod
    @abstractmethod
    def open(cls, location: str, *, read_only: bool = False) -> Store:
        """Open (or create) the database at ``location``, as the backend registry gives it."""

    @staticmethod
    def redact(location: str) -> str:
        """How to name ``location`` in messages (a URL loses its password)."""
        return location

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def bulk_writer(self) -> BulkWriter:
        """The bulk path's writer and dialect for this store (``stores.bulkwrite``)."""

    @property
    def in_transaction(self) -> bool:
        """True inside ``transaction()`` (a bulk run then cannot commit in pieces)."""
        return False

    def second_connection(self) -> Any:
        """Another connection to the database, for a run's reads beside its writes, or
        None where the store has none to offer."""
        return None

    def wrote_in_transaction(self) -> bool:
        """Whether the open transaction may hold writes of its own, which no other
        connection sees (True where that is not known)."""
        return self.in_transaction

    def exclusive(self) -> AbstractContextManager[None]:
        """Keep other koito-import writers out across several transactions.

        Transactions of other koito-import processes wait until this ends; writers that
        are not koito-import (Koito itself) do not. Re-entrant.
        """
        return nullcontext()

    def data_version(self) -> int | None:
        """A number that changes when another connection commits; None when unknown."""
        return None

    #: SQL for a listen's time parameter (SQLite stores unix seconds, PostgreSQL timestamptz).
    listen_time_sql = "?"
    #: SQL reading ``listens.listened_at`` back as unix seconds.
    listen_epoch_sql = "listened_at"
    #: The same for any expression of that column's type (``{}``: the expression).
    epoch_sql = "{}"

    @staticmethod
    def client_value(client: str) -> str | None:
        """How an empty client is stored: '' on SQLite (NOT NULL DEFAULT ''), NULL on
        PostgreSQL (Koito's PostgreSQL backend wrote NULL for it)."""
        return client

    def catalog(self) -> SqlCatalog:
        return SqlCatalog(self)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- listens and the lookup cache -------------------------------------------------

    def insert_listen(self, track_id: int, time: int, client: str, user_id: int) -> bool:
        """Insert one listen; False when it already exists (same track and second)."""
        cur = self.execute(
            "INSERT INTO listens (track_id, listened_at, user_id, client) "
            f"VALUES (?, {self.listen_time_sql}, ?, ?) ON CONFLICT DO NOTHING",
            (track_id, time, user_id, self.client_value(client)),
        )
        return cur.rowcount == 1

    def has_user(self, user_id: int) -> bool:
        """Whether the user the listens belong to exists (Koito creates it on first start)."""
        return self.execute("SELECT 1 FROM users WHERE id = ?", (user_id,)).fetchone() is not None

    def listen_span(self, user_id: int) -> tuple[int, int] | None:
        """(first, last) unix second of the user's listens; None when there are none."""
        lo, hi = (self.epoch_sql.format(f"{f}(listened_at)") for f in ("min", "max"))
        row = self.execute(
            f"SELECT {lo}, {hi} FROM listens WHERE user_id = ?", (user_id,)
        ).fetchone()
        return None if row is None or row[0] is None else (int(row[0]), int(row[1]))

    def tracks_heard_at(self, time: int, user_id: int) -> list[int]:
        """Tracks with a listen of the user at this second."""
        rows = self.execute(
            "SELECT track_id FROM listens "
            # ``+user_id`` keeps the planner on the listened_at index (see stores.sqlite).
            f"WHERE +user_id = ? AND listened_at = {self.listen_time_sql}",
            (user_id, time),
        ).fetchall()
        return [r[0] for r in rows]

    def counts(self) -> CatalogCounts:
        one = lambda sql: self.execute(sql).fetchone()[0]  # noqa: E731
        return CatalogCounts(
            artists=one("SELECT count(*) FROM artists"),
            albums=one("SELECT count(*) FROM releases"),
            tracks=one("SELECT count(*) FROM tracks"),
            listens=one("SELECT count(*) FROM listens"),
        )


class SqlCatalog:
    """The resolver's ``Catalog`` answered with queries: the per-listen path."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._q = store.execute

    # artists

    def _artist(self, artist_id: int | None) -> Artist | None:
        if artist_id is None:
            return None
        rows = self._q(
            "SELECT a.musicbrainz_id, aa.alias, aa.is_primary FROM artists a "
            "JOIN artist_aliases aa ON aa.artist_id = a.id WHERE a.id = ?",
            (artist_id,),
        ).fetchall()
        primary = [r[1] for r in rows if r[2]]
        if not primary:
            return None  # Koito's queries only see artists that have a primary alias
        return Artist(artist_id, primary[0], stored_mbid(rows[0][0]), [r[1] for r in rows])

    def artist_by_mbid(self, mbid: str) -> Artist | None:
        row = self._q("SELECT min(id) FROM artists WHERE musicbrainz_id = ?", (mbid,)).fetchone()
        return self._artist(row[0])

    def artist_by_name(self, name: str) -> Artist | None:
        row = self._q(
            "SELECT min(artist_id) FROM artist_aliases WHERE alias = ?", (name,)
        ).fetchone()
        return self._artist(row[0])

    def create_artist(
        self, name: str, mbid: str = "", aliases: Sequence[str] = (), image_url: str = ""
    ) -> Artist:
        image, source = image_columns(image_url)
        (artist_id,) = self._q(
            "INSERT INTO artists (musicbrainz_id, image, image_source) VALUES (?, ?, ?) "
            "RETURNING id",
            (mbid or None, image, source),
        ).fetchone()
        self._aliases(
            "artist_aliases", "artist_id", artist_id, alias_rows(name, aliases, MUSICBRAINZ)
        )
        return Artist(artist_id, name, mbid or None, unique([name, *aliases]))

    def set_artist_mbid(self, artist: Artist, mbid: str) -> None:
        self._q("UPDATE artists SET musicbrainz_id = ? WHERE id = ?", (mbid, artist.id))
        artist.mbid = mbid

    # albums

    def album_by_mbid(self, mbid: str) -> Album | None:
        row = self._q(
            ALBUM_SELECT + "WHERE r.musicbrainz_id = ? ORDER BY r.id LIMIT 1", (mbid,)
        ).fetchone()
        return None if row is None else Album(row[0], row[1], stored_mbid(row[2]))

    def album_by_title(self, title: str, artist_id: int) -> Album | None:
        row = self._q(
            ALBUM_SELECT + "JOIN artist_releases ar ON ar.release_id = r.id "
            "WHERE r.title = ? AND ar.artist_id = ? ORDER BY r.id LIMIT 1",
            (title, artist_id),
        ).fetchone()
        return None if row is None else Album(row[0], row[1], stored_mbid(row[2]))

    def create_album(
        self,
        title: str,
        artist_ids: Sequence[int],
        mbid: str = "",
        aliases: Sequence[str] = (),
        various_artists: bool = False,
        image_url: str = "",
    ) -> Album:
        image, source = image_columns(image_url)
        (album_id,) = self._q(
            "INSERT INTO releases (musicbrainz_id, various_artists, image, image_source) "
            "VALUES (?, ?, ?, ?) RETURNING id",
            (mbid or None, various_artists, image, source),
        ).fetchone()
        self._album_links([(a, album_id, i == 0) for i, a in enumerate(artist_ids)])
        rows = album_alias_rows(title, aliases, self._store.dialect)
        self._aliases("release_aliases", "release_id", album_id, rows)
        return Album(album_id, title, mbid or None)

    def set_album_mbid(self, album: Album, mbid: str) -> None:
        self._q("UPDATE releases SET musicbrainz_id = ? WHERE id = ?", (mbid, album.id))
        album.mbid = mbid

    def link_album_artists(self, album_id: int, artist_ids: Sequence[int]) -> None:
        self._album_links([(a, album_id, False) for a in artist_ids])

    def _album_links(self, rows: list[tuple[int, int, bool]]) -> None:
        """(artist, album, is_primary) links; an existing link keeps its is_primary."""
        self._store.executemany(
            "INSERT INTO artist_releases (artist_id, release_id, is_primary) VALUES (?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            rows,
        )

    # tracks

    @staticmethod
    def _track(row: Sequence[Any] | None) -> Track | None:
        return None if row is None else Track(row[0], row[1], row[2], stored_mbid(row[3]), row[4])

    def track_by_mbid(self, mbid: str) -> Track | None:
        return self._track(
            self._q(
                TRACK_SELECT + "WHERE t.musicbrainz_id = ? ORDER BY t.id LIMIT 1", (mbid,)
            ).fetchone()
        )

    def track_by_info(self, title: str, album_id: int, artist_ids: Sequence[int]) -> Track | None:
        marks = ", ".join("?" * len(artist_ids))
        return self._track(
            self._q(
                TRACK_SELECT + "JOIN artist_tracks at2 ON at2.track_id = t.id "
                f"WHERE t.title = ? AND t.release_id = ? AND at2.artist_id IN ({marks}) "
                "GROUP BY t.id, t.title, t.release_id, t.musicbrainz_id, t.duration "
                "HAVING count(DISTINCT at2.artist_id) = ? ORDER BY t.id LIMIT 1",
                (title, album_id, *artist_ids, len(artist_ids)),
            ).fetchone()
        )

    def create_track(
        self,
        title: str,
        album_id: int,
        artist_ids: Sequence[int],
        mbid: str = "",
        duration: int = 0,
        aliases: Sequence[str] = (),
    ) -> Track:
        (track_id,) = self._q(
            "INSERT INTO tracks (musicbrainz_id, release_id, duration) VALUES (?, ?, ?) "
            "RETURNING id",
            (mbid or None, album_id, duration),
        ).fetchone()
        self._store.executemany(
            "INSERT INTO artist_tracks (artist_id, track_id, is_primary) VALUES (?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            [(a, track_id, i == 0) for i, a in enumerate(artist_ids)],
        )
        self.link_album_artists(album_id, artist_ids)
        self._aliases("track_aliases", "track_id", track_id, track_alias_rows(title, aliases))
        return Track(track_id, title, album_id, mbid or None, duration)

    def set_track_mbid(self, track: Track, mbid: str) -> None:
        self._q("UPDATE tracks SET musicbrainz_id = ? WHERE id = ?", (mbid, track.id))
        track.mbid = mbid

    def set_track_duration(self, track: Track, duration: int) -> None:
        self._q("UPDATE tracks SET duration = ? WHERE id = ?", (duration, track.id))
        track.duration = duration

    # shared

    def _aliases(
        self,
        table: str,
        id_column: str,
        entity_id: int,
        aliases: list[tuple[str, str, bool]],
    ) -> None:
        rows = [(entity_id, *row) for row in aliases]
        self._store.executemany(
            f"INSERT INTO {table} ({id_column}, alias, source, is_primary) VALUES (?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING",
            rows,
        )
