"""Field readers every importer shares: Go's uuid.Parse, Go's time formats, Go typing."""

from __future__ import annotations

import calendar

import pytest

from koito_import.records import (
    NIL_UUID,
    ParseOptions,
    PluginInfo,
    WrongType,
    go_int,
    go_str,
    go_str_list,
    int32_wrap,
    mbid,
    parse_go_uuid,
    trunc_div,
)
from koito_import.timeparse import (
    parse_go_int,
    parse_lastfm_text,
    parse_rfc3339,
    parse_spotify_end_time,
)

U = "5b3abc4a-668b-4f39-a78b-c7366dd0593d"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (U, U),
        (U.upper(), U),
        ("{" + U + "}", U),
        ("(" + U + "]", U),  # Go does not check the wrapping characters
        ("urn:uuid:" + U, U),
        ("URN:UUID:" + U, U),
        (U.replace("-", ""), U),
        (NIL_UUID, NIL_UUID),
        ("", None),
        (" " + U, None),  # no trimming
        (U + " ", None),
        ("5b3abc4a668b-4f39-a78b-c7366dd0593d-", None),  # dashes in the wrong places
        ("xb3abc4a-668b-4f39-a78b-c7366dd0593d", None),
        ("é" + U[1:], None),  # 37 bytes in UTF-8
        ("{" + U + "é", None),  # 39 bytes
        (42, None),
        (None, None),
    ],
)
def test_parse_go_uuid(text: object, expected: str | None) -> None:
    assert parse_go_uuid(text) == expected


def test_mbid_maps_none_invalid_and_nil_to_empty() -> None:
    assert mbid(U.upper()) == U
    assert mbid(NIL_UUID) == ""
    assert mbid("nope") == ""
    assert mbid(None) == ""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-03-01T10:00:00Z", calendar.timegm((2023, 3, 1, 10, 0, 0))),
        ("2023-03-01T10:00:00.999999999Z", calendar.timegm((2023, 3, 1, 10, 0, 0))),
        ("2023-03-01T12:00:00+02:00", calendar.timegm((2023, 3, 1, 10, 0, 0))),
        ("2023-03-01T05:30:00-04:30", calendar.timegm((2023, 3, 1, 10, 0, 0))),
        ("1969-12-31T23:59:59.5Z", -1),  # truncation to the second is a floor
        ("0000-01-01T00:00:00Z", -62167219200),
        ("2024-02-29T00:00:00Z", calendar.timegm((2024, 2, 29, 0, 0, 0))),
        ("2023-02-29T00:00:00Z", None),
        ("2023-03-01 10:00:00Z", None),
        ("2023-03-01t10:00:00z", None),
        ("2023-03-01T10:00:00", None),
        ("2023-03-01T10:00:60Z", None),
        ("2023-03-01T24:00:00Z", None),
        ("2023-03-01T10:00:00,5Z", None),
        ("2023-03-01T10:00:00+24:00", None),
        ("2023-03-01T10:00:00+0200", None),
        ("2023-3-01T10:00:00Z", None),
        ("２０２３-03-01T10:00:00Z", None),  # fullwidth digits
        (1677664800, None),
    ],
)
def test_parse_rfc3339(text: object, expected: int | None) -> None:
    assert parse_rfc3339(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1749776100", 1749776100),
        ("+12", 12),
        ("-12", -12),
        ("007", 7),
        (" 12", None),
        ("1_000", None),
        ("12.0", None),
        ("", None),
        ("9223372036854775807", 9223372036854775807),
        ("9223372036854775808", None),
    ],
)
def test_parse_go_int(text: str, expected: int | None) -> None:
    assert parse_go_int(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("13 Jun 2025, 00:55", 1749776100),
        ("13 JUN 2025, 0:55", 1749776100),
        ("3 Jun 2025, 00:55", None),  # two-digit day
        ("13 June 2025, 00:55", None),
        ("13 Jun 2025, 00:5", None),
        ("31 Feb 2025, 00:55", None),
        ("13 Jun 2025 00:55", None),
    ],
)
def test_parse_lastfm_text(text: str, expected: int | None) -> None:
    assert parse_lastfm_text(text) == expected


def test_parse_spotify_end_time() -> None:
    assert parse_spotify_end_time("2019-02-06 22:41") == 1549492860
    assert parse_spotify_end_time("2019-02-06 22:41:30") == 1549492890
    assert parse_spotify_end_time("2019-02-06T22:41") is None
    assert parse_spotify_end_time("2019-13-06 22:41") is None


def test_go_typed_fields() -> None:
    item = {
        "s": "x",
        "n": None,
        "i": 5,
        "f": 5.0,
        "b": True,
        "big": 1 << 40,
        "l": ["a", None],
        "bad": ["a", 1],
    }
    assert go_str(item, "s") == "x"
    assert go_str(item, "n") == go_str(item, "missing") == ""
    assert go_int(item, "i", bits=32) == 5
    assert go_str_list(item, "l") == ["a", ""]
    for read, key in [(go_str, "i"), (go_int, "f"), (go_int, "b"), (go_str_list, "bad")]:
        with pytest.raises(WrongType):
            read(item, key)
    with pytest.raises(WrongType):
        go_int(item, "big", bits=32)


def test_go_integer_arithmetic() -> None:
    assert trunc_div(181999, 1000) == 181
    assert trunc_div(-1999, 1000) == -1
    assert int32_wrap(2**31) == -(2**31)
    assert int32_wrap(354) == 354


def test_parse_options_and_plugin_info() -> None:
    spotify = {"spotify": {"min_seconds": 30}}
    options = ParseOptions(plugin_options=spotify, extra={"rockbox.tz": "UTC"})
    assert options.option("rockbox.tz") == "UTC"
    assert options.option("missing", "d") == "d"
    same = ParseOptions(plugin_options=spotify, extra={"rockbox.tz": "UTC"})
    assert hash(options) == hash(same)
    info = PluginInfo.coerce({"formats": ["A"], "patterns": ("*.a",)}, "alpha")
    assert info == PluginInfo("alpha", ("A",), ("*.a",))
