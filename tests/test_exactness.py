"""Exact under every history: the bulk memo never changes a result, titles stay verbatim.

Koito's answer for the same listen changes as the catalog grows (every listen links its
artists to the album; MBIDs get assigned late), and Koito's own server writes the
catalog between imports. The references here are Koito's rules applied listen by listen
from scratch (``submit.replay``: no cache of any kind), and the facts Koito's source
gives for each case.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from koito_import.bulk import BulkSubmitter
from koito_import.cli import main
from koito_import.listen import EntityRecord, KoitoEntities, Listen
from koito_import.stores import Store, open_store
from koito_import.submit import replay, submit_listen
from tests.snapshot import table_rows

if TYPE_CHECKING:
    from conftest import PostgresFactory, SqliteFactory

R1 = "11111111-1111-4111-8111-111111111111"
R2 = "22222222-2222-4222-8222-222222222222"
R3 = "33333333-3333-4333-8333-333333333333"


@pytest.fixture
def store(db_target: str) -> Iterator[Store]:
    with open_store(db_target) as s:
        yield s


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(list(args))
    out, err = capsys.readouterr()
    return int(done.value.code or 0), out, err


def listens_by_time(store: Store) -> list[tuple[int, int, int, tuple[int, ...]]]:
    """(second, track, album, the track's artists) per listen, in time order."""
    rows = store.execute(
        f"SELECT {store.listen_epoch_sql}, l.track_id, t.release_id FROM listens l "
        "JOIN tracks t ON t.id = l.track_id ORDER BY 1"
    ).fetchall()
    out = []
    for t, track, album in rows:
        artists = store.execute(
            "SELECT artist_id FROM artist_tracks WHERE track_id = ? ORDER BY artist_id", (track,)
        ).fetchall()
        out.append((int(t), track, album, tuple(a[0] for a in artists)))
    return out


# --- the repros ---------------------------------------------------------------------------

REPRO = {
    "scrobbles": [
        {"time": 1, "track": {"artists": ["A"], "title": "x", "album": {"albumtitle": "Live"}}},
        {
            "time": 2,
            "track": {"artists": ["B"], "title": "Desert", "album": {"albumtitle": "Live"}},
        },
        {
            "time": 3,
            "track": {"artists": ["A", "B"], "title": "x", "album": {"albumtitle": "Live"}},
        },
        {
            "time": 4,
            "track": {"artists": ["B"], "title": "Desert", "album": {"albumtitle": "Live"}},
        },
    ]
}


@pytest.mark.parametrize("mode", ["bulk", "per-listen"])
def test_an_album_that_gains_an_artist_answers_anew(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, db_target: str, mode: str
) -> None:
    """Listen 3 links B to A's "Live"; listen 4 (same input as 2) then lands there."""
    path = tmp_path / "f.json"
    path.write_text(json.dumps(REPRO))
    code, _, err = run_cli(
        capsys, "run", "--plugin", "maloja", "--db", db_target, "--mode", mode, "--quiet", str(path)
    )
    assert code == 0, err
    with open_store(db_target) as store:
        rows = listens_by_time(store)
        assert store.execute("SELECT count(*) FROM releases").fetchone()[0] == 2
    a, b = 1, 2
    assert rows == [
        (1, 1, 1, (a,)),
        (2, 2, 2, (b,)),
        (3, 3, 1, (a, b)),
        # B now has two "Live" albums; the lowest id wins: a new "Desert" on album 1.
        (4, 4, 1, (b,)),
    ]


def _both_paths(make: Store, ref: Store, listens: list[Listen]) -> None:
    BulkSubmitter(make).run(listens)
    replay(ref, listens)
    a, b = table_rows(ref), table_rows(make)
    for table in a:
        assert b[table] == a[table], table


@pytest.fixture
def two_stores(db_target: str, request: pytest.FixtureRequest) -> Iterator[tuple[Store, Store]]:
    """Two empty databases of one kind: bulk goes to the first, the reference to the second."""
    if db_target.startswith("postgresql"):
        from koito_import.testing import fresh_database

        with (
            fresh_database(request.getfixturevalue("pg_server_url")) as other,
            open_store(db_target) as a,
            open_store(other) as b,
        ):
            yield a, b
    else:
        with open_store(db_target) as a, open_store(db_target + ".ref") as b:
            yield a, b


def test_a_release_mbid_found_later_on_another_artists_album(
    two_stores: tuple[Store, Store],
) -> None:
    """Last.fm: A/Alb/R1, A/Alb/R2, B/Alb/R2, A/Alb/R2 - the last finds R2 on B's album."""
    blk, ref = two_stores

    def lfm(artist: str, mbid: str, t: int) -> Listen:
        return Listen(artist=artist, title="T", time=t, album="Alb", release_mbid=mbid)

    listens = [lfm("A", R1, 1), lfm("A", R2, 2), lfm("B", R2, 3), lfm("A", R2, 4)]
    _both_paths(blk, ref, listens)
    rows = listens_by_time(blk)
    assert [r[2] for r in rows] == [1, 1, 2, 2]
    assert rows[3][1] == 3  # a new track on B's album, linked to A
    links = blk.execute("SELECT artist_id FROM artist_releases WHERE release_id = 2 ORDER BY 1")
    assert [r[0] for r in links.fetchall()] == [1, 2]


def _koito(artists: list[str], album: str, title: str, t: int) -> Listen:
    def rec(name: str) -> EntityRecord:
        return EntityRecord(name, (name,))

    ent = KoitoEntities(tuple(rec(a) for a in artists), rec(album), rec(title))
    return Listen(artist=artists[0], title=title, time=t, entities=ent)


def test_koito_export_of_the_same_shape(two_stores: tuple[Store, Store]) -> None:
    blk, ref = two_stores
    listens = [
        _koito(["A"], "Live", "x", 1),
        _koito(["B"], "Live", "Desert", 2),
        _koito(["A", "B"], "Live", "x", 3),
        _koito(["B"], "Live", "Desert", 4),
    ]
    _both_paths(blk, ref, listens)
    rows = listens_by_time(blk)
    # Listen 3's new track links B to album 1 (Koito's SaveTrack links a track's artists
    # to its album), so listen 4 finds album 1 first and gets a new track there.
    assert [(r[1], r[2]) for r in rows] == [(1, 1), (2, 2), (3, 1), (4, 1)]


def test_a_repeated_artist_never_matches_a_track(two_stores: tuple[Store, Store]) -> None:
    """Koito export with one artist listed twice: every listen makes a new track."""
    blk, ref = two_stores
    listens = [_koito(["A", "A"], "Alb", "T", t) for t in (1, 2, 3)]
    _both_paths(blk, ref, listens)
    assert blk.execute("SELECT count(*) FROM tracks").fetchone()[0] == 3
    assert blk.execute("SELECT count(*) FROM artists").fetchone()[0] == 1


# --- titles verbatim ----------------------------------------------------------------------


def _aliases(store: Store, table: str, column: str) -> list[tuple[int, str, str, bool]]:
    rows = store.execute(f"SELECT {column}, alias, source, is_primary FROM {table}").fetchall()
    return sorted((r[0], r[1], r[2], bool(r[3])) for r in rows)


def test_padded_titles_are_other_albums_and_tracks(two_stores: tuple[Store, Store]) -> None:
    blk, ref = two_stores
    listens = [
        Listen(artist="A", title="T", album="Live", time=1),
        Listen(artist=" A ", title=" T ", album=" Live ", time=2),
        Listen(artist="A", title=" T ", album=" Live ", time=3),
    ]
    _both_paths(blk, ref, listens)
    assert blk.execute("SELECT count(*) FROM artists").fetchone()[0] == 1
    assert [r[1] for r in listens_by_time(blk)] == [1, 2, 2]
    tracks = _aliases(blk, "track_aliases", "track_id")
    assert tracks == [(1, "T", "Canonical", True), (2, " T ", "Canonical", True)]
    albums = _aliases(blk, "release_aliases", "release_id")
    if blk.dialect == "postgresql":
        # Koito's PostgreSQL SaveAlbum always saves aliases: the trimmed title too.
        assert albums == [
            (1, "Live", "Canonical", True),
            (2, " Live ", "Canonical", True),
            (2, "Live", "MusicBrainz", False),
        ]
    else:
        assert albums == [(1, "Live", "Canonical", True), (2, " Live ", "Canonical", True)]


def test_koito_export_keeps_padded_titles_and_adds_trimmed_aliases(
    two_stores: tuple[Store, Store],
) -> None:
    blk, ref = two_stores
    ent = KoitoEntities(
        (EntityRecord(" A ", (" A ", "Other A")),),
        EntityRecord(" Live ", (" Live ", "Concert")),
        EntityRecord(" T ", (" T ",)),
    )
    blank = KoitoEntities(
        (EntityRecord("A", ("A",)),),
        EntityRecord("Blank", ("Blank", " ", "Kept?")),
        EntityRecord("U", ("U", "U2")),
    )
    listens = [
        Listen(artist="A", title=" T ", time=1, entities=ent),
        Listen(artist="A", title="U", time=2, entities=blank),
    ]
    _both_paths(blk, ref, listens)
    assert _aliases(blk, "artist_aliases", "artist_id") == [
        (1, "A", "Canonical", True),
        (1, "Other A", "MusicBrainz", False),
    ]
    assert _aliases(blk, "release_aliases", "release_id") == [
        (1, " Live ", "Canonical", True),
        (1, "Concert", "MusicBrainz", False),
        (1, "Live", "MusicBrainz", False),
        # One blank alias fails Koito's whole alias transaction: no other alias.
        (2, "Blank", "Canonical", True),
    ]
    assert _aliases(blk, "track_aliases", "track_id") == [
        (1, " T ", "Canonical", True),
        (1, "T", "Import", False),
        (2, "U", "Canonical", True),
        (2, "U2", "Import", False),
    ]


# --- what "already present" means ---------------------------------------------------------


def test_reimport_after_koito_wrote_adds_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, db_target: str
) -> None:
    """Importing the file again, after Koito received listens and was edited, is a no-op."""
    path = tmp_path / "f.json"
    path.write_text(json.dumps(REPRO))
    args = ("run", "--plugin", "maloja", "--db", db_target, "--json", str(path))
    code, out, err = run_cli(capsys, *args)
    assert code == 0, err
    with open_store(db_target) as store:
        # Koito meanwhile: a live scrobble, an MBID from enrichment, a rename in its UI.
        submit_listen(store, Listen(artist="B", title="Desert", album="Live", time=50))
        store.execute("UPDATE artists SET musicbrainz_id = ? WHERE id = 2", (R3,))
        store.execute(
            "INSERT INTO track_aliases (track_id, alias, source, is_primary) "
            "VALUES (1, 'x (live)', 'Manual', ?)",
            (False,),
        )
        store.execute(
            "UPDATE track_aliases SET is_primary = (alias = 'x (live)') WHERE track_id = 1"
        )
        before = table_rows(store)
    for mode in ("bulk", "per-listen"):
        code, out, err = run_cli(capsys, *args, "--mode", mode)
        assert code == 0, err
        summary = json.loads(out)
        assert (summary["inserted"], summary["already_present"]) == (0, 4)
        assert summary["new_artists"] == summary["new_albums"] == summary["new_tracks"] == 0
        with open_store(db_target) as store:
            assert table_rows(store) == before


# --- the property -------------------------------------------------------------------------

ARTISTS = ("A", "B", "C")
TITLES = ("x", "Desert", " x")
ALBUMS = ("Live", " Live", "")
MBIDS = ("", "", R1, R2)


@st.composite
def scrobble(draw: st.DrawFn) -> Listen:
    names = tuple(draw(st.lists(st.sampled_from(ARTISTS), min_size=1, max_size=2, unique=True)))
    return Listen(
        artist=names[0],
        title=draw(st.sampled_from(TITLES)),
        time=draw(st.integers(0, 40)),
        artist_names=names,
        album=draw(st.sampled_from(ALBUMS)),
        mbid_mappings=tuple((n, R3) for n in names[:1] if draw(st.integers(0, 5)) == 0),
        release_mbid=draw(st.sampled_from(MBIDS)),
        recording_mbid=draw(st.sampled_from(("", "", "", R1))),
        duration=draw(st.sampled_from((0, 120))),
    )


def koito_listen(draw: st.DrawFn) -> Listen:
    names = draw(st.lists(st.sampled_from(ARTISTS), min_size=1, max_size=2))
    album = draw(st.sampled_from(ALBUMS[:2]))
    return _koito(names, album, draw(st.sampled_from(TITLES)), draw(st.integers(0, 40)))


listen = st.one_of(scrobble(), scrobble(), scrobble(), st.composite(koito_listen)())

#: What Koito's server may do between two imports, without ever touching our tables:
#: (kind, a number choosing the entity among those present).
koito_write = st.tuples(
    st.sampled_from(("link", "mbid", "alias", "merge", "scrobble")),
    st.integers(0, 50),
    st.integers(0, 50),
)


def apply_koito_write(store: Store, write: tuple[str, int, int], extra: Listen) -> None:
    kind, i, j = write
    ids = lambda table: [r[0] for r in store.execute(f"SELECT id FROM {table} ORDER BY id")]  # noqa: E731
    artists, albums = ids("artists"), ids("releases")
    if not artists or not albums:
        return
    a, b = artists[i % len(artists)], artists[j % len(artists)]
    r = albums[j % len(albums)]
    with store.transaction():
        if kind == "link":  # AddArtistsToAlbum from a live scrobble
            store.execute(
                "INSERT INTO artist_releases (artist_id, release_id, is_primary) VALUES (?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                (a, r, False),
            )
        elif kind == "mbid":  # MusicBrainz enrichment gives an MBID to an album without one
            store.execute(
                "UPDATE releases SET musicbrainz_id = ? WHERE id = ? AND musicbrainz_id IS NULL "
                "AND NOT EXISTS (SELECT 1 FROM releases WHERE musicbrainz_id = ?)",
                (R2, r, R2),
            )
        elif kind == "alias":  # an alias added in Koito's UI
            store.execute(
                "INSERT INTO artist_aliases (artist_id, alias, source, is_primary) "
                "VALUES (?, ?, 'Manual', ?) ON CONFLICT DO NOTHING",
                (a, ARTISTS[j % len(ARTISTS)], False),
            )
        elif kind == "merge" and a != b:  # Koito's merge: b's links move to a, b goes
            for table, col in (("artist_tracks", "track_id"), ("artist_releases", "release_id")):
                store.execute(
                    f"INSERT INTO {table} (artist_id, {col}, is_primary) "
                    f"SELECT ?, {col}, is_primary FROM {table} WHERE artist_id = ? "
                    "ON CONFLICT DO NOTHING",
                    (a, b),
                )
            store.execute("DELETE FROM artists WHERE id = ?", (b,))
    if kind == "scrobble":
        submit_listen(store, extra)


def check_history(
    factory: SqliteFactory | PostgresFactory,
    parts: list[list[Listen]],
    writes: list[tuple[str, int, int]],
    extras: list[Listen],
    batch: int,
) -> None:
    blk, ref = factory.new(), factory.new()
    try:
        for n, part in enumerate(parts):
            if n:
                w = writes[(n - 1) % len(writes)]
                e = extras[(n - 1) % len(extras)]
                apply_koito_write(blk, w, e)
                apply_koito_write(ref, w, e)
            BulkSubmitter(blk, batch_size=batch, chunk_size=min(batch, 3)).run(part)
            replay(ref, part)
            a, b = table_rows(ref), table_rows(blk)
            for table in a:
                assert b[table] == a[table], (n, table)
        # Re-importing everything is a no-op on both paths.
        before = table_rows(blk)
        for part in parts:
            result = BulkSubmitter(blk).run(part)
            assert result.inserted == 0
            assert result.new_artists == result.new_albums == result.new_tracks == 0
        assert table_rows(blk) == before
    finally:
        factory.drop(blk)
        factory.drop(ref)


history = {
    "parts": st.lists(st.lists(listen, min_size=1, max_size=14), min_size=1, max_size=3),
    "writes": st.lists(koito_write, min_size=1, max_size=3),
    "extras": st.lists(scrobble(), min_size=1, max_size=2),
    "batch": st.sampled_from((1, 2, 50_000)),
}
_common = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
}


@settings(max_examples=40, **_common)
@given(**history)
def test_history_sqlite(sqlite_factory: SqliteFactory, **kw) -> None:
    check_history(sqlite_factory, **kw)


@settings(max_examples=15, **_common)
@given(**history)
def test_history_postgresql(pg_factory: PostgresFactory, **kw) -> None:
    check_history(pg_factory, **kw)


# --- titles verbatim in every built-in format ---------------------------------------------

_FILES = {
    "maloja": (
        "maloja_pad.json",
        {
            "scrobbles": [
                {
                    "time": 1700000000,
                    "track": {
                        "artists": [" Pad "],
                        "title": " T ",
                        "album": {"albumtitle": " Live "},
                    },
                }
            ]
        },
    ),
    "spotify": (
        "Streaming_History_Audio_pad.json",
        [
            {
                "ts": "2023-11-14T22:13:20Z",
                "ms_played": 1000,
                "reason_end": "trackdone",
                "master_metadata_track_name": " T ",
                "master_metadata_album_artist_name": " Pad ",
                "master_metadata_album_album_name": " Live ",
            }
        ],
    ),
    "lastfm": (
        "recenttracks-pad-1.json",
        [
            {
                "track": [
                    {
                        "artist": {"mbid": "", "#text": " Pad "},
                        "mbid": "",
                        "name": " T ",
                        "album": {"mbid": "", "#text": " Live "},
                        "date": {"uts": "1700000000", "#text": ""},
                    }
                ]
            }
        ],
    ),
    "listenbrainz": (
        "pad.jsonl",
        {
            "listened_at": 1700000000,
            "track_metadata": {
                "artist_name": " Pad ",
                "track_name": " T ",
                "release_name": " Live ",
            },
        },
    ),
    "koito": (
        "koito_pad.json",
        {
            "version": "1",
            "exported_at": "2025-06-18T12:56:53Z",
            "user": "u",
            "listens": [
                {
                    "listened_at": "2023-11-14T22:13:20Z",
                    "client": "c",
                    "track": {
                        "mbid": None,
                        "duration": 1,
                        "aliases": [{"alias": " T ", "source": "Canonical", "is_primary": True}],
                    },
                    "album": {
                        "image_url": "",
                        "mbid": None,
                        "various_artists": False,
                        "aliases": [{"alias": " Live ", "source": "Canonical", "is_primary": True}],
                    },
                    "artists": [
                        {
                            "image_url": "",
                            "mbid": None,
                            "is_primary": True,
                            "aliases": [
                                {"alias": " Pad ", "source": "Canonical", "is_primary": True}
                            ],
                        }
                    ],
                }
            ],
        },
    ),
}


@pytest.mark.parametrize("plugin", sorted(_FILES))
def test_titles_stay_verbatim_in_every_format(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, plugin: str
) -> None:
    name, content = _FILES[plugin]
    path = tmp_path / name
    path.write_text(json.dumps(content) + "\n")
    db = str(tmp_path / "k.db")
    code, _, err = run_cli(capsys, "run", "--plugin", plugin, "--db", db, "--quiet", str(path))
    assert code == 0, err
    with open_store(db) as store:
        one = lambda sql: store.execute(sql).fetchone()[0]  # noqa: E731
        assert one("SELECT alias FROM artist_aliases WHERE is_primary") == "Pad"
        assert one("SELECT alias FROM release_aliases WHERE is_primary") == " Live "
        assert one("SELECT alias FROM track_aliases WHERE is_primary") == " T "


# --- times a database cannot hold ----------------------------------------------------------


@pytest.mark.parametrize("mode", ["bulk", "per-listen"])
def test_unrepresentable_times_are_counted_skips_on_both_backends(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, db_target: str, mode: str
) -> None:
    def item(t: int) -> dict:
        return {"time": t, "track": {"artists": ["A"], "title": "T", "album": None}}

    path = tmp_path / "maloja_times.json"
    bad = [32503680000000, 9007199254740993, -(2**63)]
    path.write_text(json.dumps({"scrobbles": [item(1700000000), *map(item, bad)]}))
    code, out, err = run_cli(
        capsys, "run", "--plugin", "maloja", "--db", db_target, "--mode", mode, "--json", str(path)
    )
    assert code == 0, err
    summary = json.loads(out)
    assert summary["inserted"] == 1 and summary["skipped"] == {"bad_timestamp": 3}


def test_submit_with_an_unrepresentable_time_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db = str(tmp_path / "k.db")
    code, _, err = run_cli(
        capsys, "submit", "--artist", "A", "--track", "T", "--time", "9" * 23, "--db", db
    )
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and "bad_timestamp" in err
