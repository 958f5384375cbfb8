"""Koito's own sample exports, imported into real databases, checked as Koito checks them.

The facts asserted are those of Koito's own import tests (engine/import_test.go, with
MusicBrainz unreachable), on both backends and through both paths; and the bulk path
must leave exactly the per-listen path's catalog. Skipped when Koito's sample assets are
absent.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from koito_import.pipeline import ImportOptions, run_import
from koito_import.stores import Store, open_store
from tests.snapshot import catalog_snapshot

SAMPLES = [
    "maloja_import_test.json",
    "Streaming_History_Audio_spotify_import_test.json",
    "recenttracks-shoko2-1749776100.json",
    "listenbrainz_shoko1_1749780844.zip",
    "listenbrainz_shoko1_123456789.zip",
    "koito_export_test.json",
]


def value(store: Store, sql: str, params: tuple = ()) -> object:
    row = store.execute(sql, params).fetchone()
    return None if row is None else row[0]


def artist_listens(store: Store, name: str) -> int:
    return value(
        store,
        "SELECT count(*) FROM listens l JOIN artist_tracks at2 ON at2.track_id = l.track_id "
        "JOIN artists_with_name a ON a.id = at2.artist_id WHERE a.name = ?",
        (name,),
    )


def by_mbid(store: Store, view: str, column: str, mbid: str) -> object:
    return value(store, f"SELECT {column} FROM {view} WHERE musicbrainz_id = ?", (mbid,))


def listen_times(store: Store, track_title: str) -> list[int]:
    rows = store.execute(
        f"SELECT {store.listen_epoch_sql} FROM listens "
        "WHERE track_id IN (SELECT id FROM tracks_with_title WHERE title = ?)",
        (track_title,),
    ).fetchall()
    return sorted(r[0] for r in rows)


def check_maloja(store: Store) -> None:
    assert artist_listens(store, "Magnify Tokyo") == 38


def check_spotify(store: Store) -> None:
    row = store.execute(
        "SELECT t.duration FROM tracks_with_title t "
        "JOIN releases_with_title r ON r.id = t.release_id "
        "JOIN artist_tracks at2 ON at2.track_id = t.id "
        "JOIN artists_with_name a ON a.id = at2.artist_id "
        "WHERE t.title = 'Clairvoyant' AND a.name = 'The Story So Far' "
        "AND r.title = 'The Story So Far / Stick To Your Guns Split'"
    ).fetchone()
    assert row is not None and row[0] == 181


def check_lastfm(store: Store) -> None:
    assert (
        by_mbid(store, "releases_with_title", "title", "e9e78802-0bf8-4ca3-9655-1d943d2d2fa0")
        == "ZOO!!"
    )
    assert (
        by_mbid(store, "artists_with_name", "name", "4b00640f-3be6-43f8-9b34-ff81bd89320a")
        == "OurR"
    )
    assert value(store, "SELECT count(*) FROM artists_with_name WHERE name = 'Necry Talkie'") == 1
    assert listen_times(store, "放課後の記憶") == [1749774900]


def check_listenbrainz(store: Store) -> None:
    assert (
        by_mbid(store, "releases_with_title", "title", "ce330d67-9c46-4a3b-9d62-08406370f234")
        == "酸欠少女"
    )
    for mbid, name in [
        ("4b00640f-3be6-43f8-9b34-ff81bd89320a", "OurR"),
        ("09887aa7-226e-4ecc-9a0c-02d2ae5777e1", "Carly Rae Jepsen"),
        ("78e46ae5-9bfd-433b-be3f-19e993d67ecc", "Rufus Wainwright"),
    ]:
        assert by_mbid(store, "artists_with_name", "name", mbid) == name
    assert (
        by_mbid(store, "tracks_with_title", "title", "08e8f55b-f1a4-46b8-b2d1-fab4c592165c")
        == "Desert"
    )
    assert listen_times(store, "Desert") == [1749780612]


def check_listenbrainz_mapping(store: Store) -> None:
    assert (
        by_mbid(store, "releases_with_title", "title", "177ebc28-0115-3897-8eb3-ebf74ce23790")
        == "Zombie"
    )
    assert (
        by_mbid(store, "artists_with_name", "name", "c98d40fd-f6cf-4b26-883e-eaa515ee2851")
        == "The Cranberries"
    )
    assert (
        by_mbid(store, "tracks_with_title", "title", "3bbeb4e3-ab6d-460d-bfc5-de49e4251061")
        == "Zombie"
    )


def check_koito(store: Store) -> None:
    for name in ("American Football", "Rachel Goswell", "Elizabeth Powell", "すぅ"):
        assert value(store, "SELECT count(*) FROM artist_aliases WHERE alias = ?", (name,)) >= 1
    assert value(store, "SELECT count(*) FROM listens WHERE client <> ''") > 0
    suzuki = "30f851bb-dba3-4e9b-811c-5f27f595c86a"
    assert by_mbid(store, "artists_with_name", "name", suzuki) == "鈴木雅之"
    aliases = store.execute(
        "SELECT aa.alias FROM artist_aliases aa JOIN artists a ON a.id = aa.artist_id "
        "WHERE a.musicbrainz_id = ?",
        (suzuki,),
    ).fetchall()
    assert "Masayuki Suzuki" in {r[0] for r in aliases}
    assert (
        by_mbid(store, "releases_with_title", "title", "ac1f8da0-21d7-426e-83b0-befff06f0871")
        == "GIRI GIRI"
    )
    nelke = store.execute(
        "SELECT ra.alias FROM release_aliases ra "
        "JOIN releases_with_title r ON r.id = ra.release_id "
        "JOIN artist_releases ar ON ar.release_id = r.id "
        "JOIN artists_with_name a ON a.id = ar.artist_id "
        "WHERE a.name = 'NELKE' AND r.title = '虹の色よ鮮やかであれ (NELKE ver.)'"
    ).fetchall()
    assert "Nijinoiroyo Azayakadeare (NELKE ver.)" in {r[0] for r in nelke}


CHECKS: dict[str, Callable[[Store], None]] = {
    "maloja_import_test.json": check_maloja,
    "Streaming_History_Audio_spotify_import_test.json": check_spotify,
    "recenttracks-shoko2-1749776100.json": check_lastfm,
    "listenbrainz_shoko1_1749780844.zip": check_listenbrainz,
    "listenbrainz_shoko1_123456789.zip": check_listenbrainz_mapping,
    "koito_export_test.json": check_koito,
}


@pytest.mark.parametrize("mode", ["bulk", "per-listen"])
@pytest.mark.parametrize("sample", SAMPLES)
def test_sample_matches_koitos_own_test(
    shared_assets: Path, db_target: str, sample: str, mode: str
) -> None:
    with open_store(db_target) as store:
        summary = run_import(store, [shared_assets / sample], ImportOptions(mode=mode))
        assert summary.total("inserted") > 0
        CHECKS[sample](store)


@pytest.mark.parametrize("sample", SAMPLES)
def test_bulk_equals_per_listen_on_sample(shared_assets: Path, tmp_path: Path, sample: str) -> None:
    snapshots = []
    for mode in ("per-listen", "bulk"):
        with open_store(str(tmp_path / f"{mode}.db")) as store:
            run_import(store, [shared_assets / sample], ImportOptions(mode=mode))
            snapshots.append(catalog_snapshot(store))
    assert snapshots[0] == snapshots[1]


def test_all_samples_in_one_run_both_paths_agree(
    shared_assets: Path, db_target: str, tmp_path: Path
) -> None:
    files = [shared_assets / s for s in SAMPLES]
    with open_store(db_target) as bulk:
        run_import(bulk, files, ImportOptions(mode="bulk"))
        check_koito(bulk)  # the other samples' counts change when they share artists
        bulk_snapshot = catalog_snapshot(bulk)
    with open_store(str(tmp_path / "per-listen.db")) as reference:
        run_import(reference, files, ImportOptions(mode="per-listen"))
        assert catalog_snapshot(reference) == bulk_snapshot
