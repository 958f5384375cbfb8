"""The Koito-export importer: entities with aliases and MBIDs, versions, bad listens."""

from __future__ import annotations

from pathlib import Path

import pytest

from koito_import import plugins
from koito_import.errors import InputError
from koito_import.listen import EntityRecord, KoitoEntities, Listen
from koito_import.plugins import Skip

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "koito"

AMERICAN_FOOTBALL = EntityRecord(
    name="American Football",
    aliases=("American Football",),
    mbid="4ebb5ad3-9018-407d-8c24-c03011ab9ac6",
    image_url="https://example.org/af.jpg",
)
ELIZABETH_POWELL = EntityRecord(name="Elizabeth Powell", aliases=("Liz Powell", "Elizabeth Powell"))
FIRST = Listen(
    artist="American Football",
    title="Every Wave",
    time=1641681128,
    artist_names=("American Football", "Elizabeth Powell"),
    album="LP3",
    duration=354,
    client="test client",
    entities=KoitoEntities(
        artists=(AMERICAN_FOOTBALL, ELIZABETH_POWELL),
        album=EntityRecord(
            name="LP3",
            aliases=("LP3",),
            mbid="d0ec30bd-7cdc-417c-979d-5a0631b8a161",
            image_url="https://example.org/lp3.jpg",
        ),
        track=EntityRecord(name="Every Wave", aliases=("Every Wave", "Every Wave (Remaster)")),
        various_artists=False,
    ),
)
SECOND = Listen(
    artist="Somebody",
    title="Compilation Song",
    time=1641715200,
    artist_names=("Somebody",),
    album="Various Hits",
    duration=0,
    client="",
    entities=KoitoEntities(
        artists=(EntityRecord(name="Somebody", aliases=("Somebody",)),),
        # An MBID that is not a UUID counts as none.
        album=EntityRecord(
            name="Various Hits",
            aliases=("Various Hits", "Various Hits"),
            image_url="/images/uploaded.png",
        ),
        track=EntityRecord(
            name="Compilation Song",
            aliases=("Compilation Song",),
            mbid="a4f26836-3894-46c1-acac-227808308687",
        ),
        various_artists=True,
    ),
)


def read(path: Path) -> list[Listen | Skip]:
    return list(plugins.parse(path, "koito"))


def test_every_listen() -> None:
    assert read(FIXTURES / "koito_export_v1.json") == [
        FIRST,
        SECOND,
        Skip("missing_artist", "item 3"),
        Skip("missing_title", "item 4"),
        Skip("bad_timestamp", "item 5 (listened_at)"),
        Skip("wrong_type", "item 6 (track.duration)"),
        Skip("wrong_type", "item 7 (artists.mbid)"),
    ]


def test_version_after_the_listens() -> None:
    assert read(FIXTURES / "koito_version_last.json") == [FIRST, SECOND]


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("koito_version_2.json", "unsupported Koito export version '2'"),
        ("koito_version_number_last.json", "unsupported Koito export version 1"),
        ("koito_no_version.json", "not a Koito export: it has no version"),
    ],
)
def test_other_versions_are_refused_before_any_listen(name: str, reason: str) -> None:
    with pytest.raises(InputError) as info:
        plugins.parse(FIXTURES / name, "koito")
    assert info.value.reason.startswith(reason)
    assert info.value.where == "version"


def test_koito_sample(shared_assets: Path) -> None:
    """Koito's own test: 13 listens, clients kept, aliases and MBIDs carried."""
    records = read(shared_assets / "koito_export_test.json")
    listens = [r for r in records if isinstance(r, Listen)]
    assert len(listens) == len(records) == 13
    assert any(r.client for r in listens)
    artist_names = {a.name for r in listens for a in r.entities.artists}
    assert {
        "American Football",
        "Rachel Goswell",
        "Elizabeth Powell",
        "鈴木雅之",
        "すぅ",
        "NELKE",
    } <= artist_names
    suzuki = next(
        a
        for r in listens
        for a in r.entities.artists
        if a.mbid == "30f851bb-dba3-4e9b-811c-5f27f595c86a"
    )
    assert suzuki.name == "鈴木雅之" and "Masayuki Suzuki" in suzuki.aliases
    nijino = next(
        r for r in listens if r.entities.track.mbid == "a4f26836-3894-46c1-acac-227808308687"
    )
    assert nijino.title == "虹の色よ鮮やかであれ (NELKE ver.)"
    assert nijino.duration == 218
    assert "Nijinoiroyo Azayakadeare (NELKE ver.)" in nijino.entities.track.aliases
    assert len({r.entities.track.name for r in listens}) == 4
    assert len({r.entities.album.name for r in listens}) == 3


def test_alias_typing_follows_go() -> None:
    convert = plugins.import_builtin("koito_import.importers.koito").listen_to_listen
    base = {
        "listened_at": "2022-01-10T10:00:00Z",
        "track": {
            "aliases": [
                None,
                {"alias": "T", "is_primary": True},
                {"alias": "T2", "is_primary": True},
            ]
        },
        "album": {"aliases": [{"alias": "A", "source": None, "is_primary": None}]},
        "artists": [{"aliases": [{"alias": "X", "is_primary": True}]}],
    }
    listen = convert(base, "item 1")
    assert isinstance(listen, Listen)
    # A null alias is Go's zero Alias; the first primary one names the entity.
    assert listen.entities.track == EntityRecord(name="T", aliases=("", "T", "T2"))
    assert listen.entities.album == EntityRecord(name="", aliases=("A",))
    assert listen.album == ""
    bad = {**base, "artists": [{"aliases": [{"alias": "X", "is_primary": "yes"}]}]}
    assert convert(bad, "item 2") == Skip("wrong_type", "item 2 (artists.aliases.is_primary)")
    bad = {**base, "album": {"aliases": "A"}}
    assert convert(bad, "item 3") == Skip("wrong_type", "item 3 (album.aliases)")
    bad = {**base, "artists": ["X"]}
    assert convert(bad, "item 4") == Skip("wrong_type", "item 4 (artists)")
    assert convert([], "item 5") == Skip("not_an_object", "item 5")
