"""The Spotify importer: extended history (Koito's rules), account-data history, options."""

from __future__ import annotations

from pathlib import Path

from koito_import import plugins
from koito_import.listen import Listen
from koito_import.plugins import ParseOptions, Skip

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "spotify"
EXTENDED = FIXTURES / "Streaming_History_Audio_2023.json"
ACCOUNT = FIXTURES / "StreamingHistory_music_0.json"


def read(path: Path, options: ParseOptions | None = None) -> list[Listen | Skip]:
    return list(plugins.parse(path, "spotify", options))


def min_seconds(seconds: int) -> ParseOptions:
    """The spotify plugin's option, as ``-o spotify.min_seconds=N`` sets it."""
    return ParseOptions(plugin_options={"spotify": {"min_seconds": seconds}})


def spotify(artist: str, title: str, time: int, album: str, duration: int) -> Listen:
    return Listen(
        artist=artist, title=title, time=time, album=album, duration=duration, client="spotify"
    )


def test_extended_history_koito_rule() -> None:
    assert read(EXTENDED) == [
        # 181999 ms -> 181 s: Go's integer division truncates.
        spotify("The Story So Far", "Clairvoyant", 1677664800, "Split", 181),
        Skip("not_trackdone", "item 2"),
        Skip("podcast_or_audiobook", "item 3"),
        Skip("podcast_or_audiobook", "item 4"),
        Skip("missing_title", "item 5"),
        Skip("bad_timestamp", "item 6 (ts)"),
        Skip("wrong_type", "item 7 (ms_played)"),
        # Sub-second precision is dropped.
        spotify("Band", "Fraction", 1677669300, "LP", 59),
        Skip("not_trackdone", "item 9"),
        Skip("not_an_object", "item 10"),
    ]


def test_extended_history_minimum_play_option() -> None:
    """spotify.min_seconds replaces the trackdone rule: any play of at least that long counts."""
    records = read(EXTENDED, min_seconds(30))
    assert records[1] == Skip("too_short", "item 2")
    # An "endplay" of 45 s now counts; its +02:00 offset is applied.
    assert records[8] == spotify("Band", "Offset", 1677669600, "LP", 45)
    assert [type(r).__name__ for r in records] == [
        "Listen",
        "Skip",
        "Skip",
        "Skip",
        "Skip",
        "Skip",
        "Skip",
        "Listen",
        "Listen",
        "Skip",
    ]


def test_account_data_history_thirty_seconds_by_default() -> None:
    assert read(ACCOUNT) == [
        Listen(
            artist="Old Band", title="Old Song", time=1549492860, duration=215, client="spotify"
        ),
        Skip("too_short", "item 2"),
        Listen(
            artist="Old Band",
            title="Exactly Thirty",
            time=1549493100,
            duration=30,
            client="spotify",
        ),
        Skip("bad_timestamp", "item 4 (endTime)"),
        Skip("missing_artist", "item 5"),
    ]


def test_account_data_history_option() -> None:
    records = read(ACCOUNT, min_seconds(10))
    assert records[1] == Listen(
        artist="Old Band", title="Skipped", time=1549492920, duration=29, client="spotify"
    )


def test_min_seconds_may_be_fractional_from_the_library() -> None:
    """The CLI takes whole seconds; a library caller may give a fraction, which means what
    it says (29.999 s keeps a play of 29,999 ms)."""
    fraction = ParseOptions(plugin_options={"spotify": {"min_seconds": 29.999}})
    assert isinstance(read(ACCOUNT, fraction)[1], Listen)  # 29,999 ms
    assert read(ACCOUNT, min_seconds(30))[1] == Skip("too_short", "item 2")


def test_account_data_podcasts_are_skipped() -> None:
    assert read(FIXTURES / "StreamingHistory_podcast_0.json") == [
        Skip("podcast_or_audiobook", "item 1")
    ]


def test_koito_sample_clairvoyant(shared_assets: Path) -> None:
    """Koito's own test: only the one trackdone play is imported, with duration 181."""
    records = read(shared_assets / "Streaming_History_Audio_spotify_import_test.json")
    listens = [r for r in records if isinstance(r, Listen)]
    assert listens == [
        spotify(
            "The Story So Far",
            "Clairvoyant",
            listens[0].time,
            "The Story So Far / Stick To Your Guns Split",
            181,
        )
    ]
    assert {r.reason for r in records if isinstance(r, Skip)} == {"not_trackdone"}


def test_extended_history_audiobook_chapters_are_skipped_as_such() -> None:
    """Audiobook plays: track, artist and album null, the four audiobook_* keys set."""
    records = read(FIXTURES / "Streaming_History_Audio_2024_audiobooks.json")
    assert records == [
        Skip("podcast_or_audiobook", "item 1"),
        spotify("Marrow Lights", "Sodium Coast", 1707600030, "Tidal Engine", 201),
        # Koito's trackdone rule comes first, as for every other play.
        Skip("not_trackdone", "item 3"),
    ]
    with_min = read(
        FIXTURES / "Streaming_History_Audio_2024_audiobooks.json",
        min_seconds(30),
    )
    assert with_min[2] == Skip("podcast_or_audiobook", "item 3")


def test_account_data_audiobooks_are_skipped_as_such() -> None:
    """StreamingHistory_audiobook_*.json: audiobookName and chapterName, no trackName."""
    path = FIXTURES / "StreamingHistory_audiobook_0.json"
    assert plugins.detect(path) == ("spotify", 95)
    assert read(path) == [
        Skip("podcast_or_audiobook", "item 1"),
        Skip("podcast_or_audiobook", "item 2"),
        # Shorter than 30 s: the account-data play rule comes first, as for podcasts.
        Skip("too_short", "item 3"),
    ]
    assert read(path, min_seconds(0))[2] == Skip("podcast_or_audiobook", "item 3")


def test_a_mixed_account_data_file_keeps_its_music(tmp_path: Path) -> None:
    path = tmp_path / "StreamingHistory_music_3.json"
    path.write_text(
        '[{"endTime": "2024-02-10 21:15", "audiobookName": "B", "chapterName": "C",'
        ' "msPlayed": 1800000},'
        ' {"endTime": "2024-02-10 21:20", "artistName": "A", "trackName": "T",'
        ' "msPlayed": 200000},'
        ' {"endTime": "2024-02-10 21:25", "artistName": "A", "trackName": "",'
        ' "msPlayed": 200000}]'
    )
    assert read(path) == [
        Skip("podcast_or_audiobook", "item 1"),
        Listen(artist="A", title="T", time=1707600000, duration=200, client="spotify"),
        Skip("missing_title", "item 3"),
    ]
