"""Normalization and the lookup key: the Python twin and the compiled one, side by side.

Every behaviour test runs against both implementations (the ``impl`` fixture); the
hypothesis tests check that the two agree on arbitrary input. The compiled twin is
skipped only when it cannot be imported at all; with ``KOITO_IMPORT_REQUIRE_EXTENSIONS=1``
(set by CI on its normal run) a missing extension fails instead, so a silently broken
build cannot pass.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import koito_import
from koito_import import _normalize_py
from koito_import.errors import InvalidListen
from koito_import.listen import EntityRecord, KoitoEntities, Listen

try:
    from koito_import import _normalize_c
except ImportError as exc:  # pragma: no cover - depends on the build
    _normalize_c = None
    _C_MISSING = f"the C extension koito_import._normalize_c is not built ({exc})"
else:
    _C_MISSING = ""

REQUIRE_EXTENSIONS = bool(os.environ.get("KOITO_IMPORT_REQUIRE_EXTENSIONS"))
NO_EXTENSIONS = bool(os.environ.get("KOITO_IMPORT_NO_EXTENSIONS"))


def _require_c() -> ModuleType:
    if _normalize_c is None:
        if REQUIRE_EXTENSIONS:
            pytest.fail(f"KOITO_IMPORT_REQUIRE_EXTENSIONS is set but {_C_MISSING}")
        pytest.skip(_C_MISSING)
    return _normalize_c


@pytest.fixture(params=["python", "c"])
def impl(request: pytest.FixtureRequest) -> ModuleType:
    """Each implementation of the normalization API."""
    if request.param == "c":
        return _require_c()
    return _normalize_py


@pytest.fixture(scope="module")
def c_impl() -> ModuleType:
    """The compiled twin (module-scoped: the hypothesis tests share it)."""
    return _require_c()


def _outcome(fn, *args):
    """A call's result, or the InvalidListen reason / exception type it raised."""
    try:
        return ("ok", fn(*args))
    except InvalidListen as exc:
        return ("invalid", exc.reason)
    except Exception as exc:  # the twins must fail alike, too
        return ("error", type(exc))


DEFAULT_SALT = ";;".join(_normalize_py.DEFAULT_SEPARATORS)
KOITO_TEST_SEPARATORS = (r"\s*//\s*", r"\s+·\s+")  # what Koito's own ParseArtists test uses

# --- the selector and the build -------------------------------------------------------


def test_extension_present_when_required() -> None:
    """CI sets KOITO_IMPORT_REQUIRE_EXTENSIONS=1 on its normal run: the build must work."""
    if not REQUIRE_EXTENSIONS:
        pytest.skip("KOITO_IMPORT_REQUIRE_EXTENSIONS is not set")
    assert _normalize_c is not None, _C_MISSING
    from koito_import import _normalize

    expected = "python" if NO_EXTENSIONS else "c"
    assert _normalize.__impl__ == expected


def _impl_in_subprocess(tmp_path: Path, **env_overrides: str) -> str:
    env = {k: v for k, v in os.environ.items() if k != "KOITO_IMPORT_NO_EXTENSIONS"}
    env.update(env_overrides)
    # Import the same koito_import this test process runs (source tree or installed).
    root = str(Path(koito_import.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    out = subprocess.run(
        [sys.executable, "-c", "import koito_import._normalize as n; print(n.__impl__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def test_selector_uses_the_extension_when_built(tmp_path: Path) -> None:
    _require_c()
    assert _impl_in_subprocess(tmp_path) == "c"


def test_selector_env_forces_python(tmp_path: Path) -> None:
    assert _impl_in_subprocess(tmp_path, KOITO_IMPORT_NO_EXTENSIONS="1") == "python"


def test_selector_in_this_process() -> None:
    from koito_import import _normalize

    if NO_EXTENSIONS or _normalize_c is None:
        assert _normalize.__impl__ == "python"
        chosen = _normalize_py
    else:
        assert _normalize.__impl__ == "c"
        chosen = _normalize_c
    assert _normalize.__all__ == [*chosen.__all__, "__impl__"]
    for name in chosen.__all__:
        assert getattr(_normalize, name) is getattr(chosen, name)


def test_twins_have_the_same_api(c_impl: ModuleType) -> None:
    assert c_impl.__all__ == _normalize_py.__all__
    assert "normalize_batch" in _normalize_py.__all__
    assert c_impl.DEFAULT_SEPARATORS == _normalize_py.DEFAULT_SEPARATORS
    assert c_impl.MAX_FIELD_CHARS == _normalize_py.MAX_FIELD_CHARS == 600
    for name in c_impl.__all__:
        assert hasattr(c_impl, name)


def test_extension_builds_records_through_slots(c_impl: ModuleType) -> None:
    """If Listen & co. change shape, the extension must still take its fast path."""
    assert c_impl._fast_paths() == {"Listen": True, "EntityRecord": True, "KoitoEntities": True}


@pytest.mark.parametrize("size", [0, 1, 2, 63, 64, 127, 128, 129, 200, 255, 256, 257, 1000])
def test_builtin_blake2b_matches_hashlib(c_impl: ModuleType, size: int) -> None:
    data = bytes((i * 131 + 7) % 256 for i in range(size))
    assert c_impl._blake2b_hex(data) == hashlib.blake2b(data, digest_size=16).hexdigest()


# --- clean ---------------------------------------------------------------------------------

#: Go's unicode.IsSpace, spelled out independently of the implementations.
GO_SPACES = (
    "\t\n\v\f\r \x85\xa0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("plain", "plain"),
        ("", ""),
        ("  Björk  ", "Björk"),
        (GO_SPACES + "x" + GO_SPACES, "x"),
        ("\u3000東京\u3000", "東京"),
        ("a  b\tc", "a  b\tc"),  # only the ends
        # Python's str.strip() also strips \x1c-\x1f; Go's TrimSpace does not.
        ("\x1cx\x1f", "\x1cx\x1f"),
        # Not White_Space in Go either: zero-width space, BOM, Mongolian vowel separator.
        ("\u200bx\ufeff", "\u200bx\ufeff"),
        ("\u180ex", "\u180ex"),
        (" ", ""),
        (GO_SPACES, ""),
    ],
)
def test_clean_trims_like_go(impl: ModuleType, raw: str, expected: str) -> None:
    assert impl.clean(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a\x00b", "ab"),
        ("\x00", ""),
        ("\x00 a \x00", "a"),  # removed first, then trimmed
        ("é\x00é", "éé"),
        ("東\x00京", "東京"),
        ("🎵\x00🎵", "🎵🎵"),
    ],
)
def test_clean_removes_nul(impl: ModuleType, raw: str, expected: str) -> None:
    assert impl.clean(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("a\ud800b", "a\ufffdb"),
        ("\udfff", "\ufffd"),
        ("\udc00\ud800", "\ufffd\ufffd"),
        (" \ud800 ", "\ufffd"),
        ("\ud800\x00", "\ufffd"),
        # A high+low pair given as two code points is joined into one character.
        ("\ud83c\udfb5", "🎵"),
    ],
)
def test_clean_replaces_lone_surrogates(impl: ModuleType, raw: str, expected: str) -> None:
    out = impl.clean(raw)
    assert out == expected
    out.encode("utf-8")  # storable


# --- prepare -------------------------------------------------------------------------------


def test_prepare_trims_artist_names_and_keeps_titles_verbatim(impl: ModuleType) -> None:
    """Koito trims artist names only: " Live " and "Live" are two albums there."""
    listen = Listen(
        artist=" Magnify Tokyo • Kanade Ishihara ",
        title="伊吹\u3000",
        time=1746434410,
        artist_names=(" Magnify Tokyo", "Kanade Ishihara\x00"),
        album="\tMagnify Tokyo\n",
        artist_mbids=("", "x"),
        mbid_mappings=((" A ", "m1"),),
        release_mbid="r",
        recording_mbid="t",
        duration=200,
        client=" maloja ",
    )
    assert impl.prepare(listen) == Listen(
        artist="Magnify Tokyo • Kanade Ishihara",
        title="伊吹\u3000",
        time=1746434410,
        artist_names=("Magnify Tokyo", "Kanade Ishihara"),
        album="\tMagnify Tokyo\n",
        artist_mbids=("", "x"),
        mbid_mappings=(("A", "m1"),),
        release_mbid="r",
        recording_mbid="t",
        duration=200,
        client="maloja",
    )


def test_prepare_keeps_blank_and_padded_titles(impl: ModuleType) -> None:
    out = impl.prepare(Listen("A", "\u3000", 0, album=" "))
    assert (out.title, out.album) == ("\u3000", " ")
    out = impl.prepare(Listen("A", " T\x00 ", 0))
    assert out.title == " T "  # storable (no NUL), still untrimmed


def test_prepare_koito_entities_trim_artists_only(impl: ModuleType) -> None:
    ent = KoitoEntities(
        (EntityRecord(" A ", (" A ", " Alias ", " ")),),
        EntityRecord(" Live ", (" Live ", "", " Other ")),
        EntityRecord(" T ", (" T ", " ", "Alt ")),
    )
    out = impl.prepare(Listen("A", " T ", 0, entities=ent)).entities
    assert out.artists[0] == EntityRecord("A", ("A", "Alias"))
    # An album keeps a blank alias as "": Koito then saves none of its other aliases.
    assert out.album == EntityRecord(" Live ", ("Live", "", "Other"))
    assert out.track == EntityRecord(" T ", ("T", "Alt"))


def test_prepare_whole_seconds_and_no_negative_duration(impl: ModuleType) -> None:
    out = impl.prepare(Listen("a", "t", 1700000000.9, duration=-5))
    assert out.time == 1700000000 and type(out.time) is int
    assert out.duration == 0 and type(out.duration) is int
    out = impl.prepare(Listen("a", "t", True, duration=181.7))
    assert out.time == 1 and type(out.time) is int
    assert out.duration == 181 and type(out.duration) is int


def test_prepare_drops_blank_names(impl: ModuleType) -> None:
    listen = Listen(
        "A",
        "T",
        0,
        artist_names=("A", "  ", "", "\x00", "B"),
        mbid_mappings=(("  ", "m1"), ("C", "m2"), ("\u3000", "m3")),
    )
    out = impl.prepare(listen)
    assert out.artist_names == ("A", "B")
    assert out.mbid_mappings == (("C", "m2"),)


def test_prepare_accepts_lists(impl: ModuleType) -> None:
    listen = Listen("A", "T", 0, artist_names=["A", " B"], mbid_mappings=[["C ", "m"]])  # type: ignore[arg-type]
    out = impl.prepare(listen)
    assert out.artist_names == ("A", "B")
    assert out.mbid_mappings == (("C", "m"),)


@pytest.mark.parametrize(
    ("listen", "reason"),
    [
        (Listen("", "T", 0), "missing_artist"),
        (Listen(" \t", "T", 0), "missing_artist"),
        (Listen("\x00", "T", 0), "missing_artist"),
        (Listen("A", "", 0), "missing_title"),
        (Listen("", "", 0), "missing_artist"),
        (Listen("a" * 601, "T", 0), "field_too_long"),
        (Listen("A", "t" * 601, 0), "field_too_long"),
        (Listen("A", "T", 0, album="b" * 601), "field_too_long"),
        (Listen("A", "T", 0, artist_names=("A", "n" * 601)), "field_too_long"),
        (Listen("A", "T", 0, mbid_mappings=(("n" * 601, "m"),)), "field_too_long"),
        (Listen("A", "T", 0, artist_names=("é" * 601,)), "field_too_long"),
        # Checked in the order of the fields: a too-long title before a blank artist.
        (Listen(" ", "t" * 601, 0), "field_too_long"),
        (Listen(" ", "T", 0, album="b" * 601), "missing_artist"),
    ],
)
def test_prepare_rejects(impl: ModuleType, listen: Listen, reason: str) -> None:
    with pytest.raises(InvalidListen) as info:
        impl.prepare(listen)
    assert info.value.reason == reason


def test_field_length_is_counted_after_cleaning(impl: ModuleType) -> None:
    ok = Listen("  " + "a" * 600 + "\x00  ", "é" * 600, 0, album="東" * 600, client="c" * 5000)
    out = impl.prepare(ok)
    assert len(out.artist) == 600 and len(out.title) == 600 and len(out.album) == 600
    assert len(out.client) == 5000  # the client is not a matched name


# --- Koito-export listens (entities) ---------------------------------------------------------


def _koito_listen(**changes) -> Listen:
    entities = KoitoEntities(
        artists=(
            EntityRecord(
                " American Football ",
                ("American Football", " AF ", "  "),
                "4ebb5ad3-9018-407d-8c24-c03011ab9ac6",
                "https://x/a.jpg",
            ),
            EntityRecord("Elizabeth Powell"),
        ),
        album=EntityRecord(
            "American Football (LP3)", (), "d0ec30bd-7cdc-417c-979d-5a0631b8a161", "https://x/b.jpg"
        ),
        track=EntityRecord("Every Wave To Ever Rise (feat. Elizabeth Powell)\x00"),
        various_artists=False,
    )
    fields = {
        "artist": "American Football",
        "title": "Every Wave To Ever Rise (feat. Elizabeth Powell)",
        "time": 1641681128,
        "album": "American Football (LP3)",
        "duration": 354,
        "client": "test client",
        "entities": entities,
    }
    fields.update(changes)
    return Listen(**fields)


def test_prepare_koito_entities(impl: ModuleType) -> None:
    out = impl.prepare(_koito_listen())
    assert out.entities is not None
    first = out.entities.artists[0]
    assert first == EntityRecord(
        "American Football",
        ("American Football", "AF"),
        "4ebb5ad3-9018-407d-8c24-c03011ab9ac6",
        "https://x/a.jpg",
    )
    assert out.entities.artists[1] == EntityRecord("Elizabeth Powell")
    assert out.entities.track.name == "Every Wave To Ever Rise (feat. Elizabeth Powell)"
    assert out.entities.album.image_url == "https://x/b.jpg"
    assert out == _normalize_py.prepare(_koito_listen())


@pytest.mark.parametrize(
    ("entities", "reason"),
    [
        (KoitoEntities((), EntityRecord("Al"), EntityRecord("Tr")), "missing_artist"),
        (
            KoitoEntities((EntityRecord(" "),), EntityRecord("Al"), EntityRecord("Tr")),
            "missing_primary_alias",
        ),
        (
            KoitoEntities((EntityRecord("A"),), EntityRecord(""), EntityRecord("Tr")),
            "missing_primary_alias",
        ),
        (
            KoitoEntities((EntityRecord("A"),), EntityRecord("Al"), EntityRecord("\x00")),
            "missing_primary_alias",
        ),
        (
            KoitoEntities(
                (EntityRecord("A", ("x" * 601,)),), EntityRecord("Al"), EntityRecord("Tr")
            ),
            "field_too_long",
        ),
        (
            KoitoEntities((EntityRecord("A"),), EntityRecord("Al"), EntityRecord("t" * 601)),
            "field_too_long",
        ),
        # Every artist is checked for length before any blank name is reported.
        (
            KoitoEntities(
                (EntityRecord(""), EntityRecord("a" * 601)), EntityRecord("Al"), EntityRecord("Tr")
            ),
            "field_too_long",
        ),
    ],
)
def test_prepare_koito_entities_rejects(
    impl: ModuleType, entities: KoitoEntities, reason: str
) -> None:
    with pytest.raises(InvalidListen) as info:
        impl.prepare(_koito_listen(entities=entities))
    assert info.value.reason == reason


def test_koito_key_covers_names_and_mbids_only(impl: ModuleType) -> None:
    base = impl.prepare(_koito_listen())
    key = impl.lookup_key(base, DEFAULT_SALT)
    ents = base.entities
    assert ents is not None
    same = [
        _koito_listen(artist="other", title="other", album="other", duration=0, client="x"),
        _koito_listen(
            entities=KoitoEntities(
                (
                    EntityRecord("American Football", (), "4ebb5ad3-9018-407d-8c24-c03011ab9ac6"),
                    ents.artists[1],
                ),
                EntityRecord(
                    "American Football (LP3)", ("LP3",), "d0ec30bd-7cdc-417c-979d-5a0631b8a161"
                ),
                ents.track,
                various_artists=True,
            )
        ),
    ]
    for listen in same:
        assert impl.lookup_key(impl.prepare(listen), DEFAULT_SALT) == key
    different = [
        KoitoEntities(ents.artists[:1], ents.album, ents.track),
        KoitoEntities(ents.artists[::-1], ents.album, ents.track),
        KoitoEntities(
            (ents.artists[0], EntityRecord("Elizabeth Powell", (), "m")), ents.album, ents.track
        ),
        KoitoEntities(
            ents.artists, EntityRecord("american football (LP3)", (), ents.album.mbid), ents.track
        ),
        KoitoEntities(ents.artists, EntityRecord(ents.album.name), ents.track),
        KoitoEntities(ents.artists, ents.album, EntityRecord(ents.track.name, (), "m")),
    ]
    for entities in different:
        assert impl.lookup_key(impl.prepare(_koito_listen(entities=entities)), DEFAULT_SALT) != key
    plain = impl.prepare(Listen(base.artist, base.title, base.time, album=base.album, duration=354))
    assert impl.lookup_key(plain, DEFAULT_SALT) != key


# --- equal_fold ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        ("abc", "abc", True),
        ("abc", "ABC", True),
        ("Hello, World", "hELLO, wORLD", True),
        ("abc", "abd", False),
        ("abc", "abcd", False),
        ("", "", True),
        ("a", "", False),
        ("@", "`", False),  # 0x40/0x60 differ by the case bit but are no letters
        ("[", "{", False),
        ("\u212a", "k", True),  # KELVIN SIGN
        ("\u212a", "K", True),
        ("\u212aelvin", "KELVIN", True),
        ("\u017f", "s", True),  # LATIN SMALL LETTER LONG S
        ("\u017f", "S", True),
        ("ß", "SS", False),  # Go folds simply: one rune to one rune
        ("ß", "ss", False),
        ("straße", "STRASSE", False),
        ("ß", "\u1e9e", True),  # LATIN CAPITAL LETTER SHARP S
        ("Σ", "σ", True),
        ("Σ", "ς", True),
        ("σ", "ς", True),
        ("ΟΔΟΣ", "οδος", True),
        ("Ёж", "ёЖ", True),
        ("Björk", "BJÖRK", True),
        ("İ", "i", False),
        ("ı", "I", False),
        ("\u2126", "ω", True),  # OHM SIGN
        ("\u212b", "å", True),  # ANGSTROM SIGN
        ("ǅ", "ǆ", True),
        ("Ǆ", "ǅ", True),
        ("ᏸ", "Ᏸ", True),  # Cherokee folds to upper case
        ("東京", "東京", True),
        ("東京", "東亰", False),
        ("🎵", "🎵", True),
    ],
)
def test_equal_fold(impl: ModuleType, a: str, b: str, equal: bool) -> None:
    assert impl.equal_fold(a, b) is equal
    assert impl.equal_fold(b, a) is equal


# --- parse_artists ---------------------------------------------------------------------------

# Koito's own TestArtistStringParse (internal/catalog/catalog_test.go), with the order our
# implementation gives (Koito's test compares as sets): featured names from the artist
# string first, then the artist string itself, then names featured in the title.
KOITO_CASES = [
    ("NELKE", "", ["NELKE"]),
    ("The Brook & The Bluff", "", ["The Brook & The Bluff"]),
    ("half·alive", "", ["half·alive"]),
    ("Earth, Wind & Fire", "The Very Best of Earth, Wind & Fire", ["Earth, Wind & Fire"]),
    ("Carly Rae Jepsen feat. Rufus Wainwright", "", ["Rufus Wainwright", "Carly Rae Jepsen"]),
    ("Mimi (feat. HATSUNE MIKU & KAFU)", "", ["HATSUNE MIKU", "KAFU", "Mimi"]),
    ("Magnify Tokyo · Kanade Ishihara", "", ["Magnify Tokyo", "Kanade Ishihara"]),
    ("Daft Punk [feat. Paul Williams]", "", ["Paul Williams", "Daft Punk"]),
    (
        "Tyler, The Creator",
        "CA (feat. Alice Smith, Leon Ware & Clem Creevy)",
        ["Tyler, The Creator", "Alice Smith", "Leon Ware", "Clem Creevy"],
    ),
    (
        "ONE OK ROCK",
        "C.U.R.I.O.S.I.T.Y. (feat. Paledusk and CHICO CARLITO)",
        ["ONE OK ROCK", "Paledusk", "CHICO CARLITO"],
    ),
    ("Rat Tally", "In My Car feat. Madeline Kenney", ["Rat Tally", "Madeline Kenney"]),
    (
        "Daft Punk feat. Julian Casablancas",
        "Instant Crush (feat. Julian Casablancas)",
        ["Julian Casablancas", "Daft Punk"],
    ),
    (
        "Paramore (feat. Joy Williams)",
        "Hate to See Your Heart Break feat. Joy Williams",
        ["Joy Williams", "Paramore"],
    ),
    ("MINSU", "오해 금지 (Feat. BIG Naughty)", ["MINSU", "BIG Naughty"]),
    ("MINSU", "오해 금지 [Feat. BIG Naughty]", ["MINSU", "BIG Naughty"]),
    ("MINSU", "오해 금지 Feat. BIG Naughty", ["MINSU", "BIG Naughty"]),
    ("MIMiNARI//楠木ともり", "眠れない", ["MIMiNARI", "楠木ともり"]),
]


@pytest.mark.parametrize(("artist", "title", "expected"), KOITO_CASES)
def test_parse_artists_koito_cases(
    impl: ModuleType, artist: str, title: str, expected: list[str]
) -> None:
    separators = impl.compile_separators(KOITO_TEST_SEPARATORS)
    assert impl.parse_artists(artist, title, separators) == expected


MORE_CASES = [
    # The feat. delimiters (",", "&", "and", "·") match inside words too: Koito's quirk.
    ("Lil Nas X feat. Brandon", "", ["Br", "on", "Lil Nas X"]),
    ("A feat. Alexander", "", ["Alex", "er", "A"]),
    ("A", "T (feat. Sandy)", ["A", "S", "y"]),
    ("A feat. B, C & D and E · F", "", ["B", "C", "D", "E", "F", "A"]),
    ("A feat. B AND C", "", ["B", "C", "A"]),
    ("A (feat. B·C)", "", ["B", "C", "A"]),
    # Case-insensitive "feat.", but the dot and the space are required.
    ("A FEAT. B", "", ["B", "A"]),
    ("A (FeAt. B)", "", ["B", "A"]),
    ("A feat.B", "", ["A feat.B"]),
    ("A ft. B", "", ["A ft. B"]),
    # Both bracket kinds, then a trailing one.
    ("A (feat. B) [feat. C]", "", ["B", "C", "A"]),
    ("A (feat. B) feat. C", "", ["B", "C", "A"]),
    ("A", "T (feat. B) [feat. C] feat. D", ["A", "B", "C", "D"]),
    # A trailing feat. must not contain brackets; an unclosed bracket is no bracket feat.
    ("A feat. B (Live)", "", ["A feat. B (Live)"]),
    ("A (feat. B", "", ["B", "A ("]),
    ("A (feat. )", "", ["A"]),
    # Duplicates (exact) and blanks are dropped.
    ("A feat. A", "", ["A"]),
    ("A feat. B", "T feat. B", ["B", "A"]),
    ("A feat. , B", "", ["B", "A"]),
    ("A feat. b", "T feat. B", ["b", "A", "B"]),
    # The default separator needs Go-\s whitespace on both sides.
    ("A · B · C", "", ["A", "B", "C"]),
    ("A  ·\tB", "", ["A", "B"]),
    ("A·B", "", ["A·B"]),
    ("A \u00a0· B", "", ["A \u00a0· B"]),
    ("A ·B", "", ["A ·B"]),
    (" · A", "", ["A"]),
    ("A · ", "", ["A"]),
    ("A ·", "", ["A ·"]),
    ("", "", []),
    ("  ", "", []),
]


@pytest.mark.parametrize(("artist", "title", "expected"), MORE_CASES)
def test_parse_artists_rules(
    impl: ModuleType, artist: str, title: str, expected: list[str]
) -> None:
    separators = impl.compile_separators(impl.DEFAULT_SEPARATORS)
    assert impl.parse_artists(artist, title, separators) == expected


@pytest.mark.parametrize(
    ("patterns", "artist", "expected"),
    [
        ((), "A · B", ["A · B"]),
        ((r";",), "A;B; C ;", ["A", "B", "C"]),
        ((r"\s*&\s*", r"\s*,\s*"), "A & B, C", ["A", "B, C", "A & B", "C"]),
        ((r"\s*//\s*",), "MIMiNARI//楠木ともり", ["MIMiNARI", "楠木ともり"]),
        ((r"\s*//\s*",), "A · B", ["A · B"]),
        ((r"(?i)\s+x\s+",), "A X B x C", ["A", "B", "C"]),
    ],
)
def test_parse_artists_custom_separators(
    impl: ModuleType, patterns: tuple[str, ...], artist: str, expected: list[str]
) -> None:
    assert impl.parse_artists(artist, "", impl.compile_separators(patterns)) == expected


def test_compile_separators(impl: ModuleType) -> None:
    compiled = impl.compile_separators([r"\s*//\s*", "x"])
    assert isinstance(compiled, tuple)
    assert [p.pattern for p in compiled] == [r"\s*//\s*", "x"]
    with pytest.raises(re.error):
        impl.compile_separators(["("])


# --- lookup_key ------------------------------------------------------------------------------

MALOJA = Listen(
    artist="Magnify Tokyo • Kanade Ishihara",
    title="伊吹",
    time=1746434410,
    artist_names=("Magnify Tokyo", "Kanade Ishihara"),
    album="Magnify Tokyo",
    client="maloja",
)
LISTENBRAINZ = Listen(
    artist="Carly Rae Jepsen feat. Rufus Wainwright",
    title="The Loneliest Time",
    time=1749780795,
    album="The Loneliest Time",
    artist_mbids=("09887aa7-226e-4ecc-9a0c-02d2ae5777e1", "78e46ae5-9bfd-433b-be3f-19e993d67ecc"),
    mbid_mappings=(
        ("Carly Rae Jepsen", "09887aa7-226e-4ecc-9a0c-02d2ae5777e1"),
        ("Rufus Wainwright", "78e46ae5-9bfd-433b-be3f-19e993d67ecc"),
    ),
    release_mbid="47ad8968-7060-4d29-90fd-7463dfb7ed1b",
    recording_mbid="5b3abc4a-668b-4f39-a78b-c7366dd0593d",
    duration=274,
    client="listenbrainz web",
)


def test_lookup_key_layout_never_changes(impl: ModuleType) -> None:
    """The key is stored in databases: its layout and digest are fixed forever."""
    layout = (
        "25:[\\t\\n\\f\\r ]+·[\\t\\n\\f\\r ]+"  # the salt
        "S"
        "31:Magnify Tokyo • Kanade Ishihara"
        "2:伊吹"
        "13:Magnify Tokyo"
        "2"
        "13:Magnify Tokyo"
        "15:Kanade Ishihara"
        "0"  # artist MBIDs
        "0"  # artist-MBID mappings
        "0:"
        "0:"  # release, recording MBIDs
        "-"  # no duration
    )
    expected = hashlib.blake2b(layout.encode("utf-8"), digest_size=16).hexdigest()
    assert expected == "bdfdceea94cac55eeca0bd7d74608fc2"
    assert impl.lookup_key(impl.prepare(MALOJA), DEFAULT_SALT) == expected
    assert impl.lookup_key(impl.prepare(LISTENBRAINZ)) == "fecb6a6b77bbbdb0554189dd8b14897a"
    entities_key = "1a041b5b882f35e7a1ad851bab3a344a"
    assert impl.lookup_key(impl.prepare(_koito_listen()), DEFAULT_SALT) == entities_key


def test_lookup_key_is_storable_hex(impl: ModuleType) -> None:
    key = impl.lookup_key(impl.prepare(MALOJA), DEFAULT_SALT)
    assert re.fullmatch(r"[0-9a-f]{32}", key)
    assert impl.lookup_key(impl.prepare(MALOJA), DEFAULT_SALT) == key  # stable


def _variants(listen: Listen) -> list[Listen]:
    """One change to every field the matching depends on."""
    from dataclasses import replace

    variants = [
        replace(listen, artist=listen.artist.lower()),  # case matters: Koito is case-sensitive
        replace(listen, artist=listen.artist + "x"),
        replace(listen, album=listen.album.upper()),
        replace(listen, title=listen.title + "x"),
        replace(listen, album=listen.album + "x"),
        replace(listen, album=""),
        replace(listen, artist_names=listen.artist_names[::-1]),
        replace(listen, artist_names=(*listen.artist_names, "Other")),
        replace(listen, artist_names=listen.artist_names[:1]),
        replace(listen, artist_mbids=(*listen.artist_mbids, "")),
        replace(listen, artist_mbids=listen.artist_mbids[::-1]),
        replace(listen, mbid_mappings=(*listen.mbid_mappings, ("N", "m"))),
        replace(listen, mbid_mappings=listen.mbid_mappings[::-1]),
        replace(listen, release_mbid=listen.release_mbid + "0"),
        replace(listen, recording_mbid=listen.recording_mbid + "0"),
        replace(listen, duration=0 if listen.duration else 100),
    ]
    unique: list[Listen] = []
    for v in variants:  # some changes are no change for some listens (reversing one name)
        if v != listen and v not in unique:
            unique.append(v)
    assert len(unique) >= 12
    return unique


@pytest.mark.parametrize("listen", [MALOJA, LISTENBRAINZ], ids=["maloja", "listenbrainz"])
def test_lookup_key_sensitivity(impl: ModuleType, listen: Listen) -> None:
    from dataclasses import replace

    base = impl.lookup_key(impl.prepare(listen), DEFAULT_SALT)
    keys = [impl.lookup_key(impl.prepare(v), DEFAULT_SALT) for v in _variants(listen)]
    assert base not in keys
    assert len(set(keys)) == len(keys)
    # The salt (the separator settings) is part of the key.
    assert impl.lookup_key(impl.prepare(listen), r"\s*//\s*") != base
    assert impl.lookup_key(impl.prepare(listen), "") != base
    # Not part of it: the time, the client, the exact duration (only whether there is one).
    same = [
        replace(listen, time=listen.time + 1),
        replace(listen, client="other"),
        replace(listen, duration=listen.duration * 2),
        replace(listen, artist=" " + listen.artist + " "),  # keys are of prepared listens
    ]
    for v in same:
        assert impl.lookup_key(impl.prepare(v), DEFAULT_SALT) == base


def test_lookup_key_fields_are_unambiguous(impl: ModuleType) -> None:
    a = Listen("ab", "c", 0)
    b = Listen("a", "bc", 0)
    c = Listen("A", "T", 0, artist_names=("x", "y"))
    d = Listen("A", "T", 0, artist_names=("x",), artist_mbids=("y",))
    keys = {impl.lookup_key(x) for x in (a, b, c, d)}
    assert len(keys) == 4


def test_lookup_key_rejects_unstorable_text(impl: ModuleType) -> None:
    with pytest.raises(UnicodeEncodeError):
        impl.lookup_key(Listen("a\ud800", "t", 0))


# --- normalize_batch -------------------------------------------------------------------------


def test_normalize_batch(impl: ModuleType) -> None:
    listens = [
        MALOJA,
        Listen(" ", "T", 1),
        Listen(" A ", "T ", 2, artist_names=(" A",)),
        Listen("A", "", 3),
        LISTENBRAINZ,
        Listen("x" * 601, "T", 4),
        _koito_listen(),
    ]
    prepared, keys, rejected = impl.normalize_batch(listens, DEFAULT_SALT)
    assert rejected == [(1, "missing_artist"), (3, "missing_title"), (5, "field_too_long")]
    expected = [impl.prepare(listens[i]) for i in (0, 2, 4, 6)]
    assert prepared == expected
    assert keys == [impl.lookup_key(p, DEFAULT_SALT) for p in expected]
    assert prepared[1] == Listen("A", "T ", 2, artist_names=("A",))
    assert impl.normalize_batch([], "") == ([], [], [])
    assert impl.normalize_batch(iter(listens[:2]), "") == (
        [impl.prepare(MALOJA)],
        [impl.lookup_key(impl.prepare(MALOJA))],
        [(1, "missing_artist")],
    )


def test_batch_matches_python_on_generated_history(c_impl: ModuleType) -> None:
    """The benchmark's data, in the three flavors importers produce."""
    generate = pytest.importorskip("benchmarks.generate")
    for flavor in ("maloja", "listenbrainz", "koito"):
        listens = generate.generate_listens(3000, seed=7, flavor=flavor)
        expected = _normalize_py.normalize_batch(listens, DEFAULT_SALT)
        assert c_impl.normalize_batch(listens, DEFAULT_SALT) == expected


def test_compiled_prepare_does_not_copy_a_clean_listen(c_impl: ModuleType) -> None:
    clean = c_impl.prepare(Listen(" A ", "T", 0, artist_names=("A",)))
    assert c_impl.prepare(clean) is clean  # Listen is immutable: no copy needed
    entities = c_impl.prepare(_koito_listen())
    assert c_impl.prepare(entities) is entities


# --- the twins agree on anything (hypothesis) --------------------------------------------------

_SPECIAL = [
    "\x00",
    " ",
    "\t",
    "\n",
    "\v",
    "\x1f",
    "\x85",
    "\xa0",
    "\u3000",
    "\u2028",
    "\u200b",
    "\ud800",
    "\udbff",
    "\udc00",
    "\udfff",
    "\u0301",
    "·",
    "&",
    ",",
    "(",
    ")",
    "[",
    "]",
    "\u212a",
    "\u017f",
    "ß",
    "\u1e9e",
    "Σ",
    "σ",
    "ς",
    "İ",
    "ı",
    "é",
    "東",
    "🎵",
    "a",
    "A",
    "d",
    "n",
]
_TOKENS = [
    "feat. ",
    "Feat. ",
    "FEAT. ",
    "(feat. ",
    "[feat. ",
    ")",
    "]",
    " and ",
    "and",
    "AND",
    " · ",
    " ·\t",
    "·",
    ", ",
    " & ",
    "//",
    " // ",
    "  ",
    "x",
    "Björk",
    "東京",
    "🎵",
]
_chars = st.one_of(
    st.characters(exclude_categories=()),  # everything, surrogates included
    st.sampled_from(_SPECIAL),
)
texts = st.lists(st.one_of(st.text(_chars, max_size=6), st.sampled_from(_TOKENS)), max_size=8).map(
    "".join
)
_long = st.builds(
    lambda pad, n, ch: pad + ch * n + pad,
    st.sampled_from(["", " ", "\x00", "\u3000"]),
    st.sampled_from([599, 600, 601]),
    st.sampled_from(["a", "é", "東", "🎵"]),
)
names = st.one_of(texts, texts, texts, _long)
mbids = st.one_of(st.just(""), st.uuids().map(str), texts)
numbers = st.one_of(
    st.integers(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False, min_value=-1e15, max_value=1e15),
    st.booleans(),
)
records = st.builds(
    EntityRecord,
    name=names,
    aliases=st.lists(names, max_size=3).map(tuple),
    mbid=mbids,
    image_url=st.sampled_from(["", "https://x/y.jpg"]),
)
entities = st.builds(
    KoitoEntities,
    artists=st.lists(records, max_size=3).map(tuple),
    album=records,
    track=records,
    various_artists=st.booleans(),
)
listens = st.builds(
    Listen,
    artist=names,
    title=names,
    time=numbers,
    artist_names=st.one_of(st.lists(names, max_size=4).map(tuple), st.lists(names, max_size=2)),
    album=names,
    artist_mbids=st.lists(mbids, max_size=3).map(tuple),
    mbid_mappings=st.lists(st.tuples(names, mbids), max_size=3).map(tuple),
    release_mbid=mbids,
    recording_mbid=mbids,
    duration=numbers,
    client=names,
    entities=st.one_of(st.none(), st.none(), entities),
)
SEPARATOR_SETS = [
    _normalize_py.DEFAULT_SEPARATORS,
    KOITO_TEST_SEPARATORS,
    (r";", r"\s*&\s*"),
    (r"x*",),  # can match empty
    (),
]
separator_sets = st.sampled_from(SEPARATOR_SETS)
salts = st.one_of(st.just(DEFAULT_SALT), texts)

#: KOITO_IMPORT_HYPOTHESIS_EXAMPLES=20000 for a long hunt after changing either twin.
HYPOTHESIS = settings(
    max_examples=int(os.environ.get("KOITO_IMPORT_HYPOTHESIS_EXAMPLES", "300")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@HYPOTHESIS
@given(value=st.one_of(texts, st.text(_chars)))
def test_twins_clean(c_impl: ModuleType, value: str) -> None:
    assert _outcome(c_impl.clean, value) == _outcome(_normalize_py.clean, value)


@HYPOTHESIS
@given(
    pair=st.one_of(
        st.tuples(texts, texts),
        texts.map(lambda s: (s, s.upper())),
        texts.map(lambda s: (s, s.swapcase())),
        texts.map(lambda s: (s, s.casefold())),
        texts.map(lambda s: (s.lower(), s.title())),
    )
)
def test_twins_equal_fold(c_impl: ModuleType, pair: tuple[str, str]) -> None:
    a, b = pair
    assert c_impl.equal_fold(a, b) == _normalize_py.equal_fold(a, b)
    assert c_impl.equal_fold(b, a) == _normalize_py.equal_fold(b, a)


@HYPOTHESIS
@given(artist=texts, title=texts, patterns=separator_sets)
def test_twins_parse_artists(
    c_impl: ModuleType, artist: str, title: str, patterns: tuple[str, ...]
) -> None:
    py_out = _outcome(
        _normalize_py.parse_artists, artist, title, _normalize_py.compile_separators(patterns)
    )
    c_out = _outcome(c_impl.parse_artists, artist, title, c_impl.compile_separators(patterns))
    assert c_out == py_out


@HYPOTHESIS
@given(listen=listens, salt=salts)
def test_twins_prepare_and_key(c_impl: ModuleType, listen: Listen, salt: str) -> None:
    py_out = _outcome(_normalize_py.prepare, listen)
    c_out = _outcome(c_impl.prepare, listen)
    assert c_out == py_out
    if py_out[0] == "ok":
        prepared = py_out[1]  # MBIDs are not cleaned: this may still fail, alike
        assert _outcome(c_impl.lookup_key, prepared, salt) == _outcome(
            _normalize_py.lookup_key, prepared, salt
        )
    # On unprepared listens too (surrogates fail to encode in both).
    assert _outcome(c_impl.lookup_key, listen, salt) == _outcome(
        _normalize_py.lookup_key, listen, salt
    )


@HYPOTHESIS
@given(batch=st.lists(listens, max_size=6), salt=salts)
def test_twins_normalize_batch(c_impl: ModuleType, batch: list[Listen], salt: str) -> None:
    assert _outcome(c_impl.normalize_batch, batch, salt) == _outcome(
        _normalize_py.normalize_batch, batch, salt
    )


# --- ListenMap: the bulk path's (track, second) -> key map ----------------------------


def test_listen_map_stores_replaces_and_grows(impl: ModuleType) -> None:
    m = impl.ListenMap()
    assert len(m) == 0 and m.get(1, 0) is None
    m.set(1, 0, 7)
    m.set(1, 0, -8)  # replaced, not added
    m.set(0, 1, 9)  # (0, 1) is not (1, 0)
    assert (len(m), m.get(1, 0), m.get(0, 1), m.get(1, 1)) == (2, -8, 9, None)
    # Past many growths, with dense ids and seconds (the shape a run writes).
    for i in range(50_000):
        m.set(i // 7 + 2, 1_700_000_000 + i, i * 3)
    assert len(m) == 50_002
    assert all(m.get(i // 7 + 2, 1_700_000_000 + i) == i * 3 for i in range(50_000))
    assert m.get(2, 1_699_999_999) is None


def test_listen_map_reserves_room_without_changing_what_it_holds(impl: ModuleType) -> None:
    m = impl.ListenMap()
    m.set(5, 1, 11)
    m.reserve(100_000)
    for i in range(100_000):
        m.set(i + 6, i, -i)
    assert len(m) == 100_001 and m.get(5, 1) == 11
    assert all(m.get(i + 6, i) == -i for i in range(0, 100_000, 7))


def test_compiled_listen_map_reserves_once(c_impl: ModuleType) -> None:
    m = c_impl.ListenMap()
    m.reserve(100_000)
    cap = m._capacity()
    # Sized to the count, not to the next power of two.
    assert 100_000 * 4 <= cap * 3 <= 100_000 * 4 + 8
    for i in range(100_000):
        m.set(i, i, i)
    assert m._capacity() == cap


int64s = st.integers(-(2**63), 2**63 - 1)


def test_compiled_listen_map_grows_in_place(c_impl: ModuleType) -> None:
    """Growing must not hold the old arrays beside the new ones: at a million listens
    that was 26 + 52 MB at once, the peak of a whole run into PostgreSQL."""
    import tracemalloc

    tracemalloc.start()
    try:
        m = c_impl.ListenMap()
        for i in range(600_000):
            m.set(i // 3, 1_700_000_000 + i, i)
        cap = m._capacity()
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        for i in range(600_000, 900_000):
            m.set(i // 3, 1_700_000_000 + i, i)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    grown = m._capacity()
    assert grown > cap
    # 25 bytes a slot; what it grew by, not old + new.
    assert peak - before <= (grown - cap) * 25 * 1.05
    assert all(m.get(i // 3, 1_700_000_000 + i) == i for i in range(0, 900_000, 11))
    assert len(m) == 900_000


@HYPOTHESIS
@given(
    count=st.integers(800, 5000),
    tracks=st.integers(1, 400),
    seconds=st.integers(1, 40),
    seed=st.integers(0, 2**32),
)
def test_compiled_listen_map_through_growth(
    c_impl: ModuleType, count: int, tracks: int, seconds: int, seed: int
) -> None:
    """Dense, colliding keys, replaced values, past the first growths (1024 slots at the
    start; a list of ops this long is too large an example for hypothesis itself)."""
    rnd = random.Random(seed)
    c_map, model = c_impl.ListenMap(), {}
    for _ in range(count):
        track, time = rnd.randrange(tracks), rnd.randrange(seconds)
        value = rnd.randrange(-(2**63), 2**63)
        c_map.set(track, time, value)
        model[(track, time)] = value
    assert len(c_map) == len(model)
    for track in range(tracks + 1):
        for time in range(seconds + 1):
            assert c_map.get(track, time) == model.get((track, time))


def test_listen_map_rejects_what_int64_cannot_hold(impl: ModuleType) -> None:
    m = impl.ListenMap()
    with pytest.raises(OverflowError):
        m.set(1, 2**63, 0)
    with pytest.raises(TypeError):
        m.set(1, "2", 0)
    assert len(m) == 0


map_ops = st.lists(
    st.tuples(st.integers(-3, 40), st.one_of(st.integers(-3, 40), int64s), int64s), max_size=300
)


@HYPOTHESIS
@given(ops=map_ops)
def test_twins_listen_map(c_impl: ModuleType, ops: list[tuple[int, int, int]]) -> None:
    c_map, py_map, model = c_impl.ListenMap(), _normalize_py.ListenMap(), {}
    for track, time, value in ops:
        c_map.set(track, time, value)
        py_map.set(track, time, value)
        model[(track, time)] = value
    assert len(c_map) == len(py_map) == len(model)
    for track, time, _ in ops:
        assert c_map.get(track, time) == py_map.get(track, time) == model[(track, time)]
        assert c_map.get(track, time ^ 1) == py_map.get(track, time ^ 1)


@pytest.mark.parametrize(
    "time", [32503680000000, 9007199254740993, -(2**63), 2**80, 253402300800, -62135596801]
)
def test_prepare_refuses_times_a_database_cannot_hold(impl: ModuleType, time: int) -> None:
    with pytest.raises(InvalidListen, match="bad_timestamp"):
        impl.prepare(Listen("A", "T", time))


def test_prepare_keeps_the_edges_of_the_time_range(impl: ModuleType) -> None:
    for time in (impl.MIN_TIME, 0, impl.MAX_TIME):
        assert impl.prepare(Listen("A", "T", time)).time == time


# --- which interpreters get the compiled twin ------------------------------------------


@pytest.mark.parametrize(
    ("implementation", "environ", "expected"),
    [
        ("cpython", {}, True),
        ("cpython", {"KOITO_IMPORT_NO_EXTENSIONS": ""}, True),
        ("cpython", {"KOITO_IMPORT_NO_EXTENSIONS": "1"}, False),
        ("pypy", {}, False),
        ("graalpy", {}, False),
        ("pypy", {"KOITO_IMPORT_NO_EXTENSIONS": "1"}, False),
    ],
)
def test_wants_extension(implementation: str, environ: dict[str, str], expected: bool) -> None:
    from koito_import._normalize import wants_extension

    assert wants_extension(implementation, environ) is expected


def test_selector_uses_python_on_another_interpreter(tmp_path: Path) -> None:
    """Even with the extension built, a non-CPython interpreter gets the pure twin."""
    env = {k: v for k, v in os.environ.items() if k != "KOITO_IMPORT_NO_EXTENSIONS"}
    root = str(Path(koito_import.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    probe = (
        "import sys, types;"
        "sys.implementation = types.SimpleNamespace(**{**vars(sys.implementation),"
        " 'name': 'pypy'});"
        "import koito_import._normalize as n;"
        "print(n.__impl__, 'koito_import._normalize_c' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.split() == ["python", "False"]
