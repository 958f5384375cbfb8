"""Koito's matching rules, run through the live path on real SQLite and PostgreSQL.

Each test submits listens and then reads the database: the observable outcome is the
catalog Koito would hold after the same listens in the same order.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from koito_import.errors import InvalidListen
from koito_import.listen import EntityRecord, KoitoEntities, Listen
from koito_import.settings import MatchSettings
from koito_import.stores import Store, open_store
from koito_import.submit import submit_listen

M1 = "11111111-1111-4111-8111-111111111111"
M2 = "22222222-2222-4222-8222-222222222222"
M3 = "33333333-3333-4333-8333-333333333333"


@pytest.fixture
def store(db_target: str) -> Iterator[Store]:
    with open_store(db_target) as s:
        yield s


def send(store: Store, artist: str = "A", title: str = "T", time: int = 1_000, **kw) -> None:
    submit_listen(store, Listen(artist=artist, title=title, time=time, **kw))


def artist_names(store: Store) -> list[str]:
    return [
        r[0] for r in store.execute("SELECT name FROM artists_with_name ORDER BY id").fetchall()
    ]


def tracks(store: Store) -> list[tuple[str, str, tuple[str, ...]]]:
    """(title, album title, artist names primary first) per track, in id order."""
    out = []
    for tid, title, album in store.execute(
        "SELECT t.id, t.title, r.title FROM tracks_with_title t "
        "JOIN releases_with_title r ON r.id = t.release_id ORDER BY t.id"
    ).fetchall():
        names = store.execute(
            "SELECT a.name FROM artist_tracks at2 JOIN artists_with_name a ON a.id = at2.artist_id "
            "WHERE at2.track_id = ? ORDER BY at2.is_primary DESC, a.id",
            (tid,),
        ).fetchall()
        out.append((title, album, tuple(n[0] for n in names)))
    return out


def one(store: Store, sql: str, params: tuple = ()) -> object:
    return store.execute(sql, params).fetchone()[0]


# --- artists -------------------------------------------------------------------------


def test_track_seen_with_a_then_with_a_and_b_becomes_two_tracks(store: Store) -> None:
    send(store, artist_names=("A",), time=1)
    send(store, artist_names=("A", "B"), time=2)
    assert tracks(store) == [("T", "T", ("A",)), ("T", "T", ("A", "B"))]


def test_track_seen_with_a_and_b_then_with_a_stays_one_track(store: Store) -> None:
    send(store, artist_names=("A", "B"), time=1)
    send(store, artist_names=("A",), time=2)
    assert tracks(store) == [("T", "T", ("A", "B"))]
    assert one(store, "SELECT count(*) FROM listens") == 2


def test_names_match_case_sensitively_across_listens(store: Store) -> None:
    send(store, artist="Foo", artist_names=("Foo",), time=1)
    send(store, artist="foo", artist_names=("foo",), time=2)
    assert artist_names(store) == ["Foo", "foo"]


def test_case_variants_within_one_listen_are_one_artist(store: Store) -> None:
    send(store, artist_names=("Foo", "FOO", "Bar"))
    assert artist_names(store) == ["Foo", "Bar"]


def test_artist_names_are_trimmed_titles_are_not(store: Store) -> None:
    send(store, artist="A", artist_names=("A",), time=1)
    send(store, artist="  A \t", artist_names=("  A ",), title=" T ", time=2)
    assert artist_names(store) == ["A"]
    # Koito stores and compares titles exactly: " T " is another track (and album).
    assert tracks(store) == [("T", "T", ("A",)), (" T ", " T ", ("A",))]


def test_feat_in_artist_string_and_title(store: Store) -> None:
    # Koito lists featured artists first: the primary artist of "A feat. B" is B.
    send(store, artist="A feat. B", title="Song (feat. C & D)")
    assert tracks(store) == [("Song (feat. C & D)", "Song (feat. C & D)", ("B", "A", "C", "D"))]


def test_default_separator_splits_artist_string(store: Store) -> None:
    send(store, artist="A · B", title="T")
    assert artist_names(store) == ["A", "B"]


def test_custom_separator_setting(store: Store) -> None:
    settings = MatchSettings.from_value(r"\s*(?:&|/)\s*")
    submit_listen(store, Listen(artist="A & B / C", title="T", time=1), settings)
    assert artist_names(store) == ["A", "B", "C"]


def test_each_separator_pattern_splits_the_whole_string(store: Store) -> None:
    # Koito applies every ';;'-separated pattern to the full artist string on its own.
    settings = MatchSettings.from_value(r"\s*&\s*;;\s*/\s*")
    submit_listen(store, Listen(artist="A & B / C", title="T", time=1), settings)
    assert artist_names(store) == ["A", "B / C", "A & B", "C"]


def test_artist_found_by_any_alias_lowest_id_wins(store: Store) -> None:
    send(store, artist="X", artist_names=("X",), title="one", time=1)
    send(store, artist="Y", artist_names=("Y",), title="two", time=2)
    for alias in ("X", "Z"):
        store.execute(
            "INSERT INTO artist_aliases (artist_id, alias, source, is_primary) "
            "VALUES (2, ?, 'Manual', ?)",
            (alias, False),
        )
    send(store, artist="X", artist_names=("X",), title="three", time=3)
    send(store, artist="Z", artist_names=("Z",), title="four", time=4)
    assert [t[2] for t in tracks(store)] == [("X",), ("Y",), ("X",), ("Y",)]


def test_mbid_mapping_creates_artist_with_mbid_and_matches_by_it(store: Store) -> None:
    send(store, artist="A", mbid_mappings=(("A", M1),), time=1)
    send(store, artist="A renamed", mbid_mappings=(("A renamed", M1),), time=2)
    assert artist_names(store) == ["A"]
    assert one(store, "SELECT musicbrainz_id FROM artists WHERE id = 1") is not None


def test_mbid_mapping_gives_name_matched_artist_its_mbid(store: Store) -> None:
    send(store, artist="A", artist_names=("A",), time=1)
    send(store, artist="A", mbid_mappings=(("A", M1),), time=2)
    assert str(one(store, "SELECT musicbrainz_id FROM artists WHERE id = 1")) == M1
    # Koito's source replaces an existing MBID too (it updates unconditionally).
    send(store, artist="A", mbid_mappings=(("A", M2),), time=3)
    assert str(one(store, "SELECT musicbrainz_id FROM artists WHERE id = 1")) == M2
    assert artist_names(store) == ["A"]


def test_unknown_artist_mbid_falls_back_to_names(store: Store) -> None:
    send(store, artist="A", artist_names=("A", "B"), artist_mbids=(M1, M2))
    assert artist_names(store) == ["A", "B"]
    assert one(store, "SELECT count(*) FROM artists WHERE musicbrainz_id IS NOT NULL") == 0


def test_mbid_list_quirk_drops_earlier_mbid_matches(store: Store) -> None:
    # B gets MBID M2 through a mapping; then a listen lists MBIDs [M2, unknown]:
    # Koito finds B by M2, falls back to names for the unknown one and returns only the
    # name matches, so B is re-added by the final name pass — after A.
    send(store, artist="B", mbid_mappings=(("B", M2),), title="x", time=1)
    send(store, artist="A", artist_names=("B", "A"), artist_mbids=(M2, M3), title="y", time=2)
    assert tracks(store)[1] == ("y", "y", ("A", "B"))


def test_nil_artist_mbid_means_match_by_names(store: Store) -> None:
    send(store, artist="A", artist_names=("A", "B"), artist_mbids=("",))
    assert artist_names(store) == ["A", "B"]


# --- albums ----------------------------------------------------------------------------


def test_empty_album_title_uses_track_title(store: Store) -> None:
    send(store, title="Song", album="")
    assert tracks(store) == [("Song", "Song", ("A",))]


def test_album_matched_by_title_on_primary_artist_only(store: Store) -> None:
    send(store, artist="A", artist_names=("A",), album="Al", title="t1", time=1)
    send(store, artist="B", artist_names=("B",), album="Al", title="t2", time=2)
    send(store, artist="A", artist_names=("A", "C"), album="Al", title="t3", time=3)
    assert one(store, "SELECT count(*) FROM releases") == 2
    linked = store.execute(
        "SELECT a.name, ar.is_primary FROM artist_releases ar JOIN artists_with_name a "
        "ON a.id = ar.artist_id WHERE ar.release_id = 1 ORDER BY a.name"
    ).fetchall()
    assert [(n, bool(p)) for n, p in linked] == [("A", True), ("C", False)]


def test_release_mbid_attached_to_album_found_by_title(store: Store) -> None:
    send(store, album="Al", title="t1", time=1)
    send(store, album="Al", title="t2", release_mbid=M1, time=2)
    assert str(one(store, "SELECT musicbrainz_id FROM releases")) == M1
    # Now found by MBID, whatever the title says.
    send(store, album="Other title", title="t3", release_mbid=M1, time=3)
    assert one(store, "SELECT count(*) FROM releases") == 1


def test_album_with_mbid_keeps_it_and_new_album_gets_release_mbid(store: Store) -> None:
    send(store, album="Al", release_mbid=M1, time=1)
    send(store, album="Al", release_mbid=M2, time=2)
    assert [str(r[0]) for r in store.execute("SELECT musicbrainz_id FROM releases").fetchall()] == [
        M1
    ]


# --- tracks ----------------------------------------------------------------------------


def test_recording_mbid_attached_then_used(store: Store) -> None:
    send(store, title="T", time=1)
    send(store, title="T", recording_mbid=M1, time=2)
    assert str(one(store, "SELECT musicbrainz_id FROM tracks")) == M1
    send(store, artist="Someone else", title="Other", recording_mbid=M1, time=3)
    assert one(store, "SELECT count(*) FROM tracks") == 1
    assert one(store, "SELECT count(*) FROM listens") == 3


def test_track_title_is_case_sensitive(store: Store) -> None:
    send(store, title="Song", time=1)
    send(store, title="song", time=2)
    assert [t[0] for t in tracks(store)] == ["Song", "song"]


def test_duration_filled_once(store: Store) -> None:
    send(store, time=1)
    assert one(store, "SELECT duration FROM tracks") == 0
    send(store, duration=181, time=2)
    assert one(store, "SELECT duration FROM tracks") == 181
    send(store, duration=200, time=3)
    assert one(store, "SELECT duration FROM tracks") == 181


# --- listens ----------------------------------------------------------------------------


def test_duplicate_listen_is_left_alone(store: Store) -> None:
    first = submit_listen(store, Listen(artist="A", title="T", time=5, client="one"))
    again = submit_listen(store, Listen(artist="A", title="T", time=5, client="two"))
    assert first.inserted and not again.inserted
    assert store.execute("SELECT client FROM listens").fetchall() == [("one",)]


def test_listen_written_as_user_one_with_client(store: Store) -> None:
    send(store, time=1_700_000_000, client="maloja")
    row = store.execute(f"SELECT {store.listen_epoch_sql}, user_id, client FROM listens").fetchone()
    assert tuple(row) == (1_700_000_000, 1, "maloja")


@pytest.mark.parametrize(
    ("listen", "reason"),
    [
        (Listen(artist=" ", title="T", time=1), "missing_artist"),
        (Listen(artist="A", title="\x00", time=1), "missing_title"),
        (Listen(artist="A", title="x" * 601, time=1), "field_too_long"),
        (Listen(artist="(feat. )", title="T", time=1), "no_artist_found"),
    ],
)
def test_unimportable_listen_raises_and_writes_nothing(
    store: Store, listen: Listen, reason: str
) -> None:
    with pytest.raises(InvalidListen) as err:
        submit_listen(store, listen)
    assert err.value.reason == reason
    assert one(store, "SELECT count(*) FROM artists") == 0
    assert one(store, "SELECT count(*) FROM listens") == 0


def test_nul_bytes_removed_and_images_left_null(store: Store) -> None:
    send(store, artist="A\x00B", title="T\x00")
    assert artist_names(store) == ["AB"]
    assert one(store, "SELECT count(*) FROM artists WHERE image IS NOT NULL") == 0
    assert one(store, "SELECT count(*) FROM releases WHERE image IS NOT NULL") == 0


# --- Koito exports ------------------------------------------------------------------------


def koito_listen(time: int, artist_mbid: str = "", image: str = "") -> Listen:
    ents = KoitoEntities(
        artists=(EntityRecord("A", ("A", "A alias"), artist_mbid, image),),
        album=EntityRecord("Al", ("Al", "Al (Deluxe)"), "", image),
        track=EntityRecord("T", ("T", "T (Remastered)")),
        various_artists=True,
    )
    return Listen(
        artist="A", title="T", album="Al", time=time, duration=90, client="koito", entities=ents
    )


def test_koito_export_entities_created_with_aliases_and_sources(store: Store) -> None:
    submit_listen(store, koito_listen(1, M1, "https://img.example/a.jpg"))
    submit_listen(store, koito_listen(2, M1, "https://img.example/a.jpg"))
    rows = store.execute(
        "SELECT alias, source, is_primary FROM artist_aliases ORDER BY alias"
    ).fetchall()
    assert [(a, s, bool(p)) for a, s, p in rows] == [
        ("A", "Canonical", True),
        ("A alias", "MusicBrainz", False),
    ]
    rows = store.execute("SELECT alias, source FROM track_aliases ORDER BY alias").fetchall()
    assert [tuple(r) for r in rows] == [("T", "Canonical"), ("T (Remastered)", "Import")]
    assert one(store, "SELECT count(*) FROM releases WHERE various_artists = ?", (True,)) == 1
    assert one(store, "SELECT image_source FROM artists") == "https://img.example/a.jpg"
    assert one(store, "SELECT count(*) FROM artists WHERE image IS NOT NULL") == 1
    assert one(store, "SELECT duration FROM tracks") == 90
    assert one(store, "SELECT count(*) FROM listens") == 2


def test_koito_export_matches_artist_by_mbid_only(store: Store) -> None:
    send(store, artist="A", artist_names=("A",), time=1)  # an "A" without MBID exists
    submit_listen(store, koito_listen(2, M1))
    assert artist_names(store) == ["A", "A"]
    submit_listen(store, koito_listen(3))  # no MBID: matched by primary alias, lowest id
    assert one(store, "SELECT count(*) FROM artists") == 2
