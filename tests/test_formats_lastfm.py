"""The Last.fm importer: pages of tracks, dates, MBIDs, now-playing entries, bad items."""

from __future__ import annotations

from pathlib import Path

from koito_import import plugins
from koito_import.listen import Listen
from koito_import.plugins import Skip

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "lastfm"
EXPORT = FIXTURES / "recenttracks-tester-1700000000.json"
OURR = "4b00640f-3be6-43f8-9b34-ff81bd89320a"


def read(path: Path) -> list[Listen | Skip]:
    return list(plugins.parse(path, "lastfm"))


def test_every_item() -> None:
    assert read(EXPORT) == [
        Skip("now_playing", "page 1, item 1"),
        Listen(
            artist="OurR",
            title="Desert",
            time=1700000100,
            album="ZOO!!",
            artist_mbids=(OURR,),
            mbid_mappings=(("OurR", OURR),),
            release_mbid="e9e78802-0bf8-4ca3-9655-1d943d2d2fa0",
            client="lastfm",
        ),
        # No album: the track name is the album title; no artist MBID is uuid.Nil ("").
        Listen(
            artist="CHUU",
            title="Empty Album",
            time=1700000200,
            album="Empty Album",
            artist_mbids=("",),
            recording_mbid="08e8f55b-f1a4-46b8-b2d1-fab4c592165c",
            client="lastfm",
        ),
        # No uts: the "#text" date, read in UTC.
        Listen(
            artist="Text Date",
            title="From Text",
            time=1136214240,
            album="A",
            artist_mbids=("",),
            client="lastfm",
        ),
        Listen(
            artist="Text Date",
            title="Lower Month",
            time=946634340,
            album="A",
            artist_mbids=("",),
            client="lastfm",
        ),
        Skip("bad_timestamp", "page 1, item 6"),
        Skip("missing_artist", "page 1, item 7"),
        Skip("missing_title", "page 1, item 8"),
        Skip("wrong_type", "page 1, item 9 (artist)"),
        # Go's uuid.Parse also takes braced, urn: and 32-hex-digit spellings.
        Listen(
            artist="Braced",
            title="Spellings",
            time=1700000600,
            album="Compact",
            artist_mbids=("09887aa7-226e-4ecc-9a0c-02d2ae5777e1",),
            mbid_mappings=(("Braced", "09887aa7-226e-4ecc-9a0c-02d2ae5777e1"),),
            release_mbid="47ad8968-7060-4d29-90fd-7463dfb7ed1b",
            recording_mbid="5b3abc4a-668b-4f39-a78b-c7366dd0593d",
            client="lastfm",
        ),
        # The nil UUID is "no MBID": no mapping.
        Listen(
            artist="Nil",
            title="Nil Artist MBID",
            time=1700000700,
            album="Nil Album",
            artist_mbids=("",),
            client="lastfm",
        ),
        Skip("not_an_object", "page 2, item 3"),
    ]


def test_koito_sample(shared_assets: Path) -> None:
    """Koito's own test: "放課後の記憶" by Necry Talkie on ZOO!! (with its MBID) at 1749774900."""
    records = read(shared_assets / "recenttracks-shoko2-1749776100.json")
    assert all(isinstance(r, Listen) for r in records)
    (listen,) = [r for r in records if r.title == "放課後の記憶"]
    assert listen.artist == "Necry Talkie"
    assert listen.album == "ZOO!!"
    assert listen.release_mbid == "e9e78802-0bf8-4ca3-9655-1d943d2d2fa0"
    assert listen.time == 1749774900
    assert any(r.mbid_mappings == (("OurR", OURR),) for r in records if isinstance(r, Listen))
