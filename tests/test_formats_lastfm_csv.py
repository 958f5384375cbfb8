"""The Last.fm/Libre.fm CSV importer: lastfm-to-csv's quirks, CSV quoting, headers, detection."""

from __future__ import annotations

import csv
import json
import sqlite3
import tracemalloc
from pathlib import Path

import pytest

from koito_import import plugins
from koito_import.cli import main
from koito_import.errors import InputError
from koito_import.jsonstream import read_head
from koito_import.listen import Listen
from koito_import.plugins import Skip
from koito_import.records import ParseOptions

FIXTURES = Path(__file__).resolve().parent / "fixtures"
HERE = FIXTURES / "lastfm_csv"
TESTER = HERE / "tester.csv"
RESAVED = HERE / "resaved.csv"
LIBREFM = HERE / "librefm-tester.csv"
ZALGO_ARTIST = "Z\u0334\u0321a\u0337l\u0338g\u0335o\u0336 Choir"
ZALGO_TITLE = "H\u0338e\u0335 C\u0336o\u0334m\u0335e\u0338s\u0337"
MBID = "4b00640f-3be6-43f8-9b34-ff81bd89320a"

plugin = plugins.import_builtin("koito_import.importers.lastfm_csv")
lastfm_json = plugins.import_builtin("koito_import.importers.lastfm")


def read(path: Path) -> list[Listen | Skip]:
    return list(plugins.parse(path, "lastfm_csv"))


def fm(artist: str, title: str, time: int, album: str = "") -> Listen:
    """A listen as the lastfm plugin makes it: no MBIDs, album defaulting to the title."""
    return Listen(
        artist=artist,
        title=title,
        time=time,
        album=album or title,
        artist_mbids=("",),
        client="lastfm",
    )


def skips(records: list[Listen | Skip]) -> list[tuple[str, str, object]]:
    return [(r.reason, r.where, r.raw) for r in records if isinstance(r, Skip)]


def write(tmp_path: Path, content: str | bytes, name: str = "export.data") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


# --- lastfm-to-csv -------------------------------------------------------------------------


def test_lastfm_to_csv_every_row() -> None:
    assert read(TESTER) == [
        Skip("now_playing", "line 1"),
        fm("Marrow Lights", "Tidal Engine", 1612111740, "Sodium Coast"),
        fm("Marrow Lights", "Harbour Static", 1612111500, "Sodium Coast"),
        # "#" and "+" start names, not comments; an empty album is the track title.
        fm("# Hollow Ferns", "Burnt Tape Loop", 1612111080),
        fm("+61 Tape", "Lycra Magpie", 1612110840, "Kettle Drum Years"),
        fm("Oona Varga", "Night Ferry", 1612110600),
        fm(ZALGO_ARTIST, ZALGO_TITLE, 1612110300, "Unquiet Hymnal"),
        fm("Kestrel & Moth", "Blue Hour (Reprise)", 1612110000, "Paper Satellites"),
        Skip("missing_artist", "line 9"),
        Skip("missing_title", "line 10"),
        Skip("bad_timestamp", "line 11"),  # 30 Feb
        fm("Dune Relay", "Beacon", 1612109040, "Signal Fires"),
        fm("Ana Sólveig", "Ljós í myrkri", 1612108740, "Þögn"),
        Skip("wrong_field_count", "line 14"),
        fm("Oona Varga", "Night Ferry", 1612108260),
        fm("+61 Tape", "Kettle Drum", 1612108020),
        # The next page starts with the now-playing track again.
        Skip("now_playing", "line 17"),
        fm("Nine Lanterns", "Pilot", 1609459380, "Cold Open"),
        fm("Nine Lanterns", "Pilot", 1609459140, "Cold Open"),
        fm("Nine Lanterns", "Second Act", 1609458900, "Cold Open"),
        fm("# Hollow Ferns", "#2", 1609458600, "Moss Tapes"),
        fm("Ilse Marr", "Quiet Arithmetic", 1582977600),  # 29 Feb 2020
        fm("Ilse Marr", "Seven", 1582977360, "Counting Rooms"),
        fm("Kestrel & Moth", "Blue Hour", 1551596700, "Paper Satellites"),
        fm("Zeta Paloma", "Río Abajo", 1551596460),
        fm("Zeta Paloma", "Calor", 1551596220, "Siesta Eléctrica"),
        fm("Marrow Lights", "Harbour Static", 1531603800, "Sodium Coast"),
        fm("Ana Sólveig", "Vetur", 1531603560),
        fm("Oona Varga", "Lighthouse Keeper", 1244189700, "Salt Years"),
        fm("Velvet Tarn", "Lantern Song", 1244189460, "Glass Orchard"),
    ]


def test_skips_carry_the_line_as_read() -> None:
    assert skips(read(TESTER)) == [
        ("now_playing", "line 1", "Marrow Lights,Sodium Coast,Tidal Engine,"),
        ("missing_artist", "line 9", ",Orphan Album,No Artist Here,31 Jan 2021 16:16"),
        ("missing_title", "line 10", "Dune Relay,Signal Fires,,31 Jan 2021 16:12"),
        ("bad_timestamp", "line 11", "Dune Relay,Signal Fires,Beacon,30 Feb 2021 16:08"),
        (
            "wrong_field_count",
            "line 14",
            "Kestrel & Moth,Paper Satellites,Static Bloom,Live,31 Jan 2021 15:55",
        ),
        ("now_playing", "line 17", "Marrow Lights,Sodium Coast,Tidal Engine,"),
    ]


def test_zalgo_passes_through_byte_for_byte() -> None:
    [listen] = [r for r in read(TESTER) if isinstance(r, Listen) and r.album == "Unquiet Hymnal"]
    assert listen.artist.encode() == ZALGO_ARTIST.encode()
    assert listen.title.encode() == ZALGO_TITLE.encode()


def test_same_records_as_the_json_plugin_for_the_same_scrobbles() -> None:
    """Each 4-field row, written as the Last.fm API item it came from, reads alike."""
    rows = TESTER.read_text(encoding="utf-8").splitlines()
    records = read(TESTER)
    for number, (line, record) in enumerate(zip(rows, records, strict=True), 1):
        fields = line.split(",")
        if len(fields) != 4:
            continue
        artist, album, name, date = fields
        track: dict[str, object] = {
            "artist": {"mbid": "", "#text": artist},
            "album": {"mbid": "", "#text": album},
            "name": name,
            "mbid": "",
        }
        if date:
            day, _, hour = date.rpartition(" ")
            track["date"] = {"uts": "", "#text": f"{day}, {hour}"}
        else:
            track["@attr"] = {"nowplaying": "true"}
        expected = lastfm_json.track_to_listen(track, f"line {number}")
        assert record == expected, line


def test_fast_path_agrees_with_the_careful_reader() -> None:
    for path in (TESTER, RESAVED):
        with open(path, "rb") as fp:
            for row in plugin.RowReader(fp, str(path)):
                fast = plugin._fast(row)
                if fast is not None:
                    assert fast == plugin.row_to_listen(plugin.HEADERLESS, row), row


def test_a_line_without_quotes_splits_as_the_csv_module_splits_it() -> None:
    for line in TESTER.read_text(encoding="utf-8").splitlines():
        assert next(csv.reader([line])) == line.split(",")


# --- CSV quoting, encodings, line ends -----------------------------------------------------


def test_a_file_resaved_by_a_spreadsheet() -> None:
    """BOM, CRLF, quoted fields, a blank line, a line break inside quotes, a stray quote."""
    records = read(RESAVED)
    assert records == [
        fm("Velvet Tarn", "Lantern Song", 1612111740, "Glass Orchard"),
        fm("Kestrel, Moth & Co", "Blue Hour", 1612111500, 'Paper "Satellites"'),
        fm("Oona Varga", "Night Ferry", 1612111200),
        fm("Line\nBreak", "Folded", 1612110960, "Two-Line Album"),
        fm('12" Singles', "Side A", 1612110600, "Vinyl Cuts"),  # a quote inside: literal
        # An opening quote never closed: that line alone is skipped, the next ones read.
        Skip("invalid_csv", "line 8"),
        fm("Velvet Tarn", "Lantern Song", 1612110000, "Glass Orchard"),  # "31 Jan 2021, 16:20"
        fm("Velvet Tarn", "Lantern Song", 1612109760, "Glass Orchard"),
    ]
    assert skips(records) == [
        ("invalid_csv", "line 8", '"Unclosed,Quote Album,Lost,31 Jan 2021 16:26'),
    ]


def test_a_row_spanning_lines_has_its_lines_as_raw(tmp_path: Path) -> None:
    path = write(tmp_path, 'A,B,C,01 Feb 2021 10:00\n"Two\nLines",,T,"not a date"\n')
    assert skips(read(path)) == [("bad_timestamp", "line 2", '"Two\nLines",,T,"not a date"')]


def test_a_stray_quote_does_not_swallow_the_rows_after_it(tmp_path: Path) -> None:
    # The quote opened on line 2 closes on line 3, but that makes no 4-field row.
    text = 'A,B,C,01 Feb 2021 10:00\n"Stray,B,C,01 Feb 2021 09:00\nD,E,"F",01 Feb 2021 08:00\n'
    assert read(write(tmp_path, text)) == [
        fm("A", "C", 1612173600, "B"),
        Skip("invalid_csv", "line 2"),
        fm("D", "F", 1612166400, "E"),
    ]


def test_invalid_utf8_reads_as_replacement_characters(tmp_path: Path) -> None:
    path = write(tmp_path, b"Caf\xe9 Noir,,Cr\xc3\xa8me,01 Feb 2021 10:00\n\xff,,T,\n")
    records = read(path)
    assert records == [fm("Caf\ufffd Noir", "Crème", 1612173600), Skip("now_playing", "line 2")]
    assert skips(records) == [("now_playing", "line 2", "\ufffd,,T,")]


def test_no_final_newline_and_a_bom(tmp_path: Path) -> None:
    path = write(tmp_path, b"\xef\xbb\xbfA,B,C,01 Feb 2021 10:00\r\nD,E,F,01 Feb 2021 9:05")
    assert read(path) == [fm("A", "C", 1612173600, "B"), fm("D", "F", 1612170300, "E")]


def test_an_over_long_line_is_skipped_without_being_held(tmp_path: Path) -> None:
    long_name = "x" * (plugin.MAX_LINE_BYTES + 10)
    text = f"A,B,C,01 Feb 2021 10:00\n{long_name},B,C,01 Feb 2021 09:00\nD,E,F,01 Feb 2021 08:00\n"
    records = read(write(tmp_path, text))
    assert records == [
        fm("A", "C", 1612173600, "B"),
        Skip("invalid_csv", "line 2"),
        fm("D", "F", 1612166400, "E"),
    ]
    assert records[1].raw == "x" * plugin.MAX_LINE_BYTES


def test_streams_with_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    with path.open("w") as fp:
        for i in range(100_000):
            fp.write(
                f"Artist {i % 700},Album {i % 300},Track number {i},0{1 + i % 9} Mar 2020 12:00\n"
            )
    assert path.stat().st_size > 5_000_000
    tracemalloc.start()
    try:
        count = sum(1 for r in plugins.parse(path, "lastfm_csv") if isinstance(r, Listen))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert count == 100_000
    assert peak < 2_000_000


# --- headers -----------------------------------------------------------------------------


def test_librefm_every_row() -> None:
    records = read(LIBREFM)
    assert records == [
        fm("Velvet Tarn", "Lantern Song", 1612111740, "Glass Orchard"),
        fm("Oona Varga", "Night Ferry", 1612111200),
        fm("Kestrel, Moth", "Blue Hour", 1612110000, "Paper Satellites"),
        fm("# Hollow Ferns", "Burnt Tape Loop", 1612109000),
        Skip("bad_timestamp", "line 6"),
        # Libre.fm has no now-playing rows: an empty time is a bad one.
        Skip("bad_timestamp", "line 7"),
        Skip("missing_artist", "line 8"),
        Skip("wrong_field_count", "line 9"),
        fm("Ilse Marr", "Seven", 1612106000, "Counting Rooms"),
    ]
    assert skips(records) == [
        ("bad_timestamp", "line 6", "Dune Relay,Beacon,Signal Fires,yesterday"),
        ("bad_timestamp", "line 7", "Dune Relay,Beacon,Signal Fires,"),
        ("missing_artist", "line 8", ",No Artist Here,Orphan Album,1612108000"),
        ("wrong_field_count", "line 9", "Ilse Marr,Seven,Counting Rooms,1612107000,extra"),
    ]


def test_a_header_with_lastfm_to_csv_names(tmp_path: Path) -> None:
    text = "artist,album,track,date\nA,,T,\nA,Al,T,01 Feb 2021 10:00\nA,Al,T,1612170000\n"
    path = write(tmp_path, text)
    assert plugin.koito_import_detect(path, read_head(path)) == 90
    assert read(path) == [
        Skip("now_playing", "line 2"),
        fm("A", "T", 1612173600, "Al"),
        fm("A", "T", 1612170000, "Al"),  # under a header, a time column may hold seconds
    ]


def test_a_header_in_another_order_and_case_with_mbids(tmp_path: Path) -> None:
    text = (
        "UTS,utc_time,Artist,artist_mbid,Album,album_mbid,Track,track_mbid\n"
        f'1612173600,"01 Feb 2021, 10:00",OurR,{MBID},ZOO!!,,Desert,nope\n'
        ',"01 Feb 2021, 09:00",B,,,,T,\n'
        ",,B,,,,T,\n"
    )
    assert read(write(tmp_path, text)) == [
        Listen(
            artist="OurR",
            title="Desert",
            time=1612173600,
            album="ZOO!!",
            artist_mbids=(MBID,),
            mbid_mappings=(("OurR", MBID),),
            client="lastfm",
        ),
        fm("B", "T", 1612170000),  # no uts: the next time column
        Skip("now_playing", "line 4"),
    ]


def test_a_header_only_file_has_no_rows(tmp_path: Path) -> None:
    assert read(write(tmp_path, "Artist,Track,Album,Time\n")) == []


# --- the file as a whole ----------------------------------------------------------------


@pytest.mark.parametrize("content", [b"", b"\n\n  \r\n", b"\xef\xbb\xbf"])
def test_an_empty_file_is_an_input_error(content: bytes, tmp_path: Path) -> None:
    path = write(tmp_path, content)
    with pytest.raises(InputError) as info:
        read(path)
    assert (info.value.path, info.value.where) == (str(path), "")
    assert info.value.reason.startswith("is empty")


@pytest.mark.parametrize(
    "sample",
    [
        "maloja/maloja_export.json",
        "listenbrainz/listens.jsonl",
        "rockbox/scrobbler.log",
    ],
)
def test_another_format_is_an_input_error(sample: str) -> None:
    with pytest.raises(InputError) as info:
        read(FIXTURES / sample)
    assert info.value.where == "line 1"
    assert info.value.reason.startswith("not a Last.fm/Libre.fm CSV export")
    assert "\n" not in str(info.value)


def test_a_csv_of_another_shape_is_an_input_error(tmp_path: Path) -> None:
    path = write(tmp_path, "name,age,city,country\nBob,42,Oslo,Norway\n", "people.csv")
    # Nothing recognises the content; the name points here, and the parser refuses it.
    assert plugins.detect(path) == ("lastfm_csv", plugins.NAME_ONLY_CONFIDENCE)
    with pytest.raises(InputError, match=r"not a Last\.fm/Libre\.fm CSV export"):
        read(path)


def test_now_playing_rows_only_is_still_an_export(tmp_path: Path) -> None:
    assert read(write(tmp_path, "A,B,C,\n")) == [Skip("now_playing", "line 1")]


def test_a_few_bad_rows_first_do_not_refuse_the_file(tmp_path: Path) -> None:
    text = "A,B\n,B,C,01 Feb 2021 10:00\nA,B,C,01 Feb 2021 09:00\n"
    assert read(write(tmp_path, text)) == [
        Skip("wrong_field_count", "line 1"),
        Skip("missing_artist", "line 2"),
        fm("A", "C", 1612170000, "B"),
    ]


# --- detection -----------------------------------------------------------------------------


def detect(content: str | bytes) -> int | None:
    head = content.encode() if isinstance(content, str) else content
    return plugin.koito_import_detect(Path("x"), head)


def test_detects_its_fixtures() -> None:
    assert detect(TESTER.read_bytes()) == 90
    assert detect(RESAVED.read_bytes()) == 90
    assert detect(LIBREFM.read_bytes()) == 100
    assert detect("ARTIST , track,Album,TIME\n") == 100


def test_detects_a_head_cut_in_the_middle_of_a_line() -> None:
    line = "Marrow Lights,Sodium Coast,Tidal Engine,31 Jan 2021 16:49\n"
    head = (line * (70_000 // len(line))).encode()[: 64 << 10]
    assert not head.endswith(b"\n")
    assert detect(head) == 90


def test_never_claims_the_other_formats() -> None:
    others = [p for p in FIXTURES.rglob("*") if p.is_file() and "lastfm_csv" not in p.parts]
    assert len(others) > 10
    for path in others:
        assert plugin.koito_import_detect(path, read_head(path)) is None, path


@pytest.mark.parametrize(
    "content",
    [
        "",
        "Marrow Lights,Sodium Coast,Tidal Engine,\n",  # now playing only: no proof
        "a,b,c,d\ne,f,g,h\n",
        "name,age,city,country\nBob,42,Oslo,Norway\n",
        "artist,song,when\nA,S,31 Jan 2021 16:49\n",  # no track and time column names
        "A,B,C,2021-01-31 16:49\n",
        "A,B,C,31 Jan 2021 16:49,extra\n",
        "A,B,C,31 Jan 2021 16:49\nA,B,C,31 January 2021 16:49\n",
        "A,B,C,1612111740\n",  # seconds without a header: not lastfm-to-csv
        "A\tB\tC\t31 Jan 2021 16:49\n",
        '{"listened_at": 1, "track_metadata": {"a, b, c": "31 Jan 2021 16:49"}}\n',
        "[\n",
        "#AUDIOSCROBBLER/1.1\n#TZ/UTC\nA\tAl\tT\t1\t200\tL\t1700000000\t\n",
        b"\x89PNG\r\n\x1a\n\x00\x00",
    ],
)
def test_does_not_claim_other_text(content: str | bytes) -> None:
    assert detect(content) is None


def test_a_known_header_over_misfit_rows_is_only_plausible() -> None:
    assert detect("artist,album,track,date\nA,B,C,31 Jan 2021 16:49\n") == 90
    assert detect("artist,album,track,date\nA,B,C\n") == 50


def test_describe() -> None:
    info = plugin.koito_import_describe()
    assert info.name == "lastfm_csv"
    assert info.patterns == ("*.csv",)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("31 Jan 2021 16:49", 1612111740),
        ("31 Jan 2021, 16:49", 1612111740),
        ("31 JAN 2021 6:49", 1612075740),
        (" 31 Jan 2021 16:49 ", 1612111740),
        ("29 Feb 2020 12:00", 1582977600),
        ("29 Feb 2021 12:00", None),
        ("1 Feb 2021 16:49", None),
        ("31 Jan 2021 24:00", None),
        ("31 Jan 2021 16:60", None),
        ("31 Jab 2021 16:49", None),
        ("31 Jan 2021  16:49", None),
        ("３１ Jan 2021 16:49", None),
        ("", None),
    ],
)
def test_parse_date(text: str, expected: int | None) -> None:
    assert plugin.parse_date(text) == expected


# --- end to end ----------------------------------------------------------------------------


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict, str]:
    with pytest.raises(SystemExit) as done:
        main(list(args))
    out, err = capsys.readouterr()
    return int(done.value.code or 0), json.loads(out) if out.strip() else {}, err


def counts(db: Path) -> dict[str, int]:
    with sqlite3.connect(db) as conn:
        return {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("listens", "artists", "releases", "tracks")
        }


def test_import_into_a_sqlite_database(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db = tmp_path / "koito.db"
    code, summary, err = run_cli(capsys, "run", str(TESTER), "--db", str(db), "--json")
    assert code == 0, err
    [file] = summary["files"]
    assert file["plugin"] == "lastfm_csv"
    assert summary["read"] == 30
    assert summary["skipped"] == {
        "now_playing": 2,
        "missing_artist": 1,
        "missing_title": 1,
        "bad_timestamp": 1,
        "wrong_field_count": 1,
    }
    assert summary["inserted"] == 24
    assert counts(db) == {"listens": 24, "artists": 12, "releases": 18, "tracks": 21}
    with sqlite3.connect(db) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM artists_with_name")}
        albums = {r[0] for r in conn.execute("SELECT title FROM releases_with_title")}
        clients = {r[0] for r in conn.execute("SELECT DISTINCT client FROM listens")}
    assert {ZALGO_ARTIST, "# Hollow Ferns", "+61 Tape"} <= names
    assert {"Night Ferry", "Vetur", "Sodium Coast"} <= albums  # empty album: the track title
    assert clients == {"lastfm"}

    # Again: every listen was heard before.
    code, again, err = run_cli(capsys, "run", str(TESTER), "--db", str(db), "--json")
    assert code == 0, err
    assert (again["inserted"], again["already_present"]) == (0, 24)
    assert counts(db)["listens"] == 24


def test_import_librefm_into_a_sqlite_database(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db = tmp_path / "koito.db"
    code, summary, err = run_cli(capsys, "run", str(LIBREFM), "--db", str(db), "--json")
    assert code == 0, err
    assert summary["read"] == 9
    assert summary["skipped"] == {"bad_timestamp": 2, "missing_artist": 1, "wrong_field_count": 1}
    assert counts(db) == {"listens": 5, "artists": 5, "releases": 5, "tracks": 5}


def test_the_hook_streams_lazily() -> None:
    records = plugin.koito_import_parse(TESTER, ParseOptions())
    assert next(records) == Skip("now_playing", "line 1")
    assert sum(isinstance(r, Listen) for r in records) == 24
