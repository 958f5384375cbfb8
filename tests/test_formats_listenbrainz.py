"""The ListenBrainz importer: zip export, JSON Lines, JSON array; every MBID fallback."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from koito_import import plugins
from koito_import.errors import InputError
from koito_import.listen import Listen
from koito_import.plugins import Skip

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "listenbrainz"
OURR = "4b00640f-3be6-43f8-9b34-ff81bd89320a"
CRJ = "09887aa7-226e-4ecc-9a0c-02d2ae5777e1"
RW = "78e46ae5-9bfd-433b-be3f-19e993d67ecc"


def read(path: Path) -> list[Listen | Skip]:
    return list(plugins.parse(path, "listenbrainz"))


def test_jsonl_every_line() -> None:
    assert read(FIXTURES / "listens.jsonl") == [
        Listen(
            artist="OurR",
            title="Desert",
            time=1749780612,
            artist_names=("OurR",),
            album="Desert",
            artist_mbids=(OURR,),
            mbid_mappings=(("OurR", OURR),),
            release_mbid="20d0530f-2176-447f-abf4-a9307f7d1c3f",
            recording_mbid="08e8f55b-f1a4-46b8-b2d1-fab4c592165c",
            duration=245,
            client="listenbrainz web",
        ),
        # mbid_mapping null; invalid artist MBIDs dropped, the nil one kept as "";
        # duration wins over duration_ms; media_player wins over submission_client.
        Listen(
            artist="Carly Rae Jepsen feat. Rufus Wainwright",
            title="The Loneliest Time",
            time=1749780795,
            artist_names=("Carly Rae Jepsen", "Rufus Wainwright"),
            album="The Loneliest Time",
            artist_mbids=(CRJ, ""),
            duration=300,
            client="Rhythmbox",
        ),
        # Koito never falls back to mbid_mapping.artist_mbids (it drops the result); the
        # release falls back (additional_info's is invalid), the recording does not (its
        # additional_info value is a valid nil UUID); a mapping with an unparseable MBID
        # is kept with "" and the ones with an empty name or MBID are not.
        Listen(
            artist="Rufus Wainwright",
            title="Fallbacks",
            time=1749781000,
            mbid_mappings=(("Bad Mbid", ""), ("Rufus", RW)),
            release_mbid="47ad8968-7060-4d29-90fd-7463dfb7ed1b",
            duration=1,
        ),
        Skip("invalid_json", "line 5"),
        Skip("not_an_object", "line 6"),
        Skip("not_an_object", "line 7"),
        Skip("wrong_type", "line 8 (track_metadata.additional_info.duration)"),
        Skip("wrong_type", "line 9 (track_metadata.additional_info.tags)"),
        Skip("bad_timestamp", "line 10 (listened_at)"),
        Skip("bad_timestamp", "line 11 (listened_at)"),
        Skip("missing_artist", "line 12"),
        Skip("missing_title", "line 13"),
        # Invalid UTF-8 and a lone surrogate escape become U+FFFD, as in Go.
        Listen(artist="Latin-1", title="Caf\ufffd", time=1749782500),
        Listen(artist="Lone \ufffd Half", title="Surrogate", time=1749782600),
        Skip("bad_timestamp", "line 16 (listened_at)"),
    ]


def test_older_json_array_export() -> None:
    assert read(FIXTURES / "listens_array.json") == [
        Listen(
            artist="Old Export",
            title="Array One",
            time=1600000000,
            album="Old",
            client="Simple Scrobbler",
        ),
        Listen(artist="Old Export", title="Array Two", time=1600000300, duration=180),
        Skip("not_an_object", "item 3"),
    ]


def make_zip(path: Path, members: list[str]) -> Path:
    """The export's members, written in the given (not sorted) order."""
    export = FIXTURES / "export"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name in members:
            if name.endswith("/"):
                zf.writestr(zipfile.ZipInfo(name), b"")
            elif (export / name).exists():
                zf.write(export / name, name)
            else:
                zf.writestr(
                    name,
                    b'{"listened_at": 1, "track_metadata": '
                    b'{"artist_name": "Not", "track_name": "Listens"}}\n',
                )
    return path


def test_zip_export_reads_listens_members_in_zip_order(tmp_path: Path) -> None:
    path = make_zip(
        tmp_path / "listenbrainz_tester_1.zip",
        [
            "user.json",
            "listens/",
            "listens/2025/",
            "listens/2025/6.jsonl",
            "feedback.jsonl",
            "listens/2025/10.jsonl",
            "listens/2025/2.jsonl",
            "listens/notes.txt",
        ],
    )
    assert read(path) == [
        Listen(artist="June", title="Six", time=1749000600),
        Listen(artist="October", title="Ten", time=1760000000),
        Skip("invalid_json", "listens/2025/10.jsonl line 2"),
        Listen(artist="February", title="Two", time=1738400000),
    ]


def test_zip_without_listens_is_empty(tmp_path: Path) -> None:
    assert read(make_zip(tmp_path / "listenbrainz_empty.zip", ["user.json"])) == []


def test_corrupt_zip_is_an_input_error(tmp_path: Path) -> None:
    good = make_zip(tmp_path / "good.zip", ["user.json", "listens/2025/6.jsonl"])
    broken = tmp_path / "listenbrainz_broken.zip"
    broken.write_bytes(good.read_bytes()[:60])
    with pytest.raises(InputError) as info:
        read(broken)
    assert "zip" in info.value.reason


def test_corrupt_zip_member_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "listenbrainz_crc.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("listens/2025/1.jsonl", b'{"listened_at": 1, "track_metadata": {}}\n' * 50)
    data = bytearray(path.read_bytes())
    offset = data.index(b"listened_at") + 3
    data[offset] ^= 0x01  # a flipped bit inside the member: CRC mismatch
    path.write_bytes(bytes(data))
    with pytest.raises(InputError) as info:
        read(path)
    assert info.value.where == "listens/2025/1.jsonl"


def test_koito_samples(shared_assets: Path) -> None:
    """Koito's own tests: OurR's "Desert" with its MBIDs; The Cranberries' "Zombie"."""
    records = read(shared_assets / "listenbrainz_shoko1_1749780844.zip")
    assert len(records) == 5 and all(isinstance(r, Listen) for r in records)
    desert = next(r for r in records if r.title == "Desert")
    assert desert.time == 1749780612
    assert desert.recording_mbid == "08e8f55b-f1a4-46b8-b2d1-fab4c592165c"
    assert desert.artist_mbids == (OURR,)
    carly = next(r for r in records if r.artist.startswith("Carly Rae Jepsen"))
    assert carly.mbid_mappings == (("Carly Rae Jepsen", CRJ), ("Rufus Wainwright", RW))

    records = read(shared_assets / "listenbrainz_shoko1_123456789.zip")
    assert len(records) == 19 and all(isinstance(r, Listen) for r in records)
    zombie = next(r for r in records if r.title == "Zombie")
    assert zombie.artist == "The Cranberries"
    assert zombie.release_mbid == "177ebc28-0115-3897-8eb3-ebf74ce23790"
    assert zombie.recording_mbid == "3bbeb4e3-ab6d-460d-bfc5-de49e4251061"
    assert zombie.mbid_mappings == (("The Cranberries", "c98d40fd-f6cf-4b26-883e-eaa515ee2851"),)


def test_not_json_lines_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "listens.jsonl"
    path.write_bytes(b"\x7fELF\x02\x01\x01\x00garbage\n")
    with pytest.raises(InputError, match="not a ListenBrainz export"):
        read(path)
    path.write_bytes(b"")
    assert read(path) == []


PANO = Path(__file__).resolve().parent / "fixtures" / "unsupported" / "pano_scrobbler.jsonl"


def lb_detect(head: bytes) -> int | None:
    module = plugins.import_builtin("koito_import.importers.listenbrainz")
    return module.koito_import_detect(Path("listens.jsonl"), head)


@pytest.mark.parametrize(
    ("head", "confidence"),
    [
        (b'{"listened_at": 1, "track_metadata": {"artist_name": "A"}}\n', 100),
        (b'\xef\xbb\xbf\n{"listened_at": 1, "track_metadata": {}}\r\n{"listened', 100),
        (b'{"track_metadata": {"artist_name": "A"}}\n', 90),
        # Another JSON Lines format: "not mine", whatever the file is called.
        (PANO.read_bytes(), 0),
        (b'{"timeMs": 1741027320512, "artist": "A", "track": "T"}\n{"timeMs": 17', 0),
        # Cannot tell: the name may still decide.
        (b'{"listened_at": 1, "track_metadata": null}\n', None),
        (b'{"listened_at": 1}\n', None),
        (b'{"artist": "A"}\n{"listened_at": 1, "track_metadata": {}}\n', None),
        (b"{}\n", None),
        (b"{not json\n", None),
    ],
)
def test_json_lines_detection_looks_at_the_shape(head: bytes, confidence: int | None) -> None:
    assert lb_detect(head) == confidence


def test_pano_scrobbler_json_lines_are_not_taken(tmp_path: Path) -> None:
    """Read as ListenBrainz, every row would be bad_timestamp: detection must not pick it."""
    assert {type(r) for r in read(PANO)} == {Skip}  # what --plugin listenbrainz would give
    with pytest.raises(InputError, match=r"no plugin reads it \(formats: .*listenbrainz"):
        plugins.detect(PANO)
