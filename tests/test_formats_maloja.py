"""The Maloja importer: every variant of the format, Koito's artist handling, bad items."""

from __future__ import annotations

from pathlib import Path

import pytest

from koito_import import plugins
from koito_import.errors import InputError
from koito_import.listen import Listen
from koito_import.plugins import Skip

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "maloja"


def read(path: Path) -> list[Listen | Skip]:
    return list(plugins.parse(path, "maloja"))


def maloja(artist: str, title: str, time: int, names: tuple[str, ...], album: str = "") -> Listen:
    return Listen(
        artist=artist, title=title, time=time, artist_names=names, album=album, client="maloja"
    )


def test_export_object_every_item() -> None:
    assert read(FIXTURES / "maloja_export.json") == [
        maloja("Solo", "One", 1700000001, ("Solo",), "First"),
        # The credit string moves to the front, is split, and the repeat is dropped.
        maloja(
            "Magnify Tokyo • Kanade Ishihara",
            "伊吹",
            1700000002,
            ("Magnify Tokyo", "Kanade Ishihara"),
            "Magnify Tokyo",
        ),
        # Case-insensitive de-duplication keeps the first spelling; album null -> "".
        maloja("A • B", "Dedupe", 1700000003, ("A", "B", "C")),
        maloja("X", "No Album Key", 1700000004, ("X", "Y")),
        # Go's EqualFold is simple folding: "Straße" and "STRASSE" stay apart.
        maloja("Straße", "Fold", 1700000005, ("Straße", "STRASSE")),
        Skip("missing_artist", "item 6"),
        Skip("missing_title", "item 7"),
        Skip("missing_artist", "item 8"),
        Skip("wrong_type", "item 9 (track.title)"),
        Skip("bad_timestamp", "item 10 (time)"),
        Skip("bad_timestamp", "item 11 (time)"),
        Skip("bad_timestamp", "item 12 (time)"),
        Skip("not_an_object", "item 13"),
        Skip("wrong_type", "item 14 (track.artists)"),
        maloja(
            "Brackets ] } [ {",
            'Tricky "]}" text',
            1700000012,
            ("Brackets ] } [ {", 'Quote " \\ Slash'),
            "\U0001f3b5 Notes",
        ),
    ]


def test_bare_scrobble_list() -> None:
    assert read(FIXTURES / "scrobble_list.json") == [
        maloja("Main • feat. Guest", "API Form", 1600000000, ("Main", "feat. Guest"), "Listed"),
        maloja("Main", "Second", 1600000100, ("Main",)),
    ]


def test_empty_export_has_no_records() -> None:
    assert read(FIXTURES / "empty_scrobbles.json") == []


def test_truncated_export_names_the_byte() -> None:
    path = FIXTURES / "truncated.json"
    records = plugins.parse(path, "maloja")
    assert next(records) == maloja("Solo", "One", 1700000001, ("Solo",))
    with pytest.raises(InputError) as info:
        next(records)
    assert info.value.where == f"byte {path.stat().st_size}"
    assert info.value.reason.startswith("truncated JSON")


def test_not_json_is_an_input_error(tmp_path: Path) -> None:
    path = tmp_path / "maloja.json"
    path.write_bytes(b"\x00\x01garbage")
    with pytest.raises(InputError) as info:
        read(path)
    assert "not a JSON object or array" in info.value.reason


@pytest.mark.parametrize(
    ("artists", "expected"),
    [
        ([], []),
        (["a"], ["a"]),
        (["feat", "main • feat"], ["main • feat", "feat"]),
        (["x • y", "z • w"], ["x • y", "z • w"]),
        (["a", "b", "c • d", "e • f"], ["c • d", "a", "b", "e • f"]),
    ],
)
def test_move_first_match_to_front(artists: list[str], expected: list[str]) -> None:
    mod = plugins.import_builtin("koito_import.importers.maloja")
    assert mod.move_first_match_to_front(artists, " • ") == expected


@pytest.mark.parametrize(
    ("a", "b", "equal"),
    [
        ("abc", "ABC", True),
        ("Straße", "STRASSE", False),  # full folding would say equal; Go does not
        ("ß", "ẞ", True),  # U+1E9E simple-folds to ß
        ("ı", "i", False),  # dotless i: upper() would say equal; Go does not
        ("\u212a", "k", True),  # Kelvin sign
        ("ſ", "S", True),  # long s
        ("Σ", "ς", True),
        ("é", "É", True),
        ("a", "ab", False),
    ],
)
def test_equal_fold_mirrors_go(a: str, b: str, equal: bool) -> None:
    from koito_import.textfold import equal_fold, fold_key

    assert equal_fold(a, b) is equal
    assert (fold_key(a) == fold_key(b)) is equal


def test_koito_sample_magnify_tokyo(shared_assets: Path) -> None:
    """Koito's own test: the sample's artist "Magnify Tokyo" has 38 listens."""
    records = read(shared_assets / "maloja_import_test.json")
    listens = [r for r in records if isinstance(r, Listen)]
    assert len(listens) == len(records) == 38
    assert sum("Magnify Tokyo" in r.artist_names for r in listens) == 38
    assert all(r.client == "maloja" and r.duration == 0 for r in listens)
    first = listens[0]
    assert first.artist == "Magnify Tokyo • Kanade Ishihara"
    assert first.artist_names == ("Magnify Tokyo", "Kanade Ishihara")
    assert first.time == 1746434410


def test_fast_path_agrees_with_the_careful_reader() -> None:
    """Every fixture item the fast path takes gives exactly the careful reader's Listen."""
    from koito_import.importers import maloja as plugin

    from koito_import.jsonstream import ITEMS, iter_items

    taken = 0
    for path in sorted((Path(__file__).parent / "fixtures" / "maloja").glob("*.json")):
        steps = (ITEMS,) if path.read_bytes().lstrip()[:1] == b"[" else ("scrobbles", ITEMS)
        try:
            for _, item in iter_items(path, steps):
                fast = plugin._fast(item)
                if fast is not None:
                    taken += 1
                    assert fast == plugin.scrobble_to_listen(item, "x")
        except InputError:  # the truncated fixture, broken on purpose
            assert path.name == "truncated.json"
    assert taken > 0
