"""The streaming JSON reader: same values as orjson, bounded memory, precise errors."""

from __future__ import annotations

import io
import tracemalloc
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from koito_import import jsonstream
from koito_import.errors import InputError
from koito_import.jsonstream import (
    FAST_DEPTH,
    ITEMS,
    BadLine,
    JsonReader,
    iter_items,
    iter_jsonl,
    peek_items,
    top_level_values,
)


def items(data: bytes, steps: tuple[Any, ...], chunk_size: int = 1 << 20) -> list[Any]:
    reader = JsonReader(io.BytesIO(data), "test.json", chunk_size)
    return list(reader.items(steps))


def values(data: bytes, steps: tuple[Any, ...], chunk_size: int = 1 << 20) -> list[Any]:
    return [value for _numbers, value in items(data, steps, chunk_size)]


def error(data: bytes, steps: tuple[Any, ...] = (ITEMS,), chunk_size: int = 1 << 20) -> InputError:
    with pytest.raises(InputError) as info:
        items(data, steps, chunk_size)
    return info.value


# --- navigation ---------------------------------------------------------------------------


def test_array_under_a_key_skips_other_members() -> None:
    data = b'{"meta": {"a": [1, {"b": "]"}]}, "scrobbles": [{"x": 1}, {"x": 2}], "tail": 3}'
    assert items(data, ("scrobbles", ITEMS)) == [((1,), {"x": 1}), ((2,), {"x": 2})]


def test_nested_arrays_number_every_level() -> None:
    data = b'[{"track": [1, 2], "@attr": {}}, {"other": 0}, {"track": null}, {"track": [3]}]'
    assert items(data, (ITEMS, "track", ITEMS)) == [((1, 1), 1), ((1, 2), 2), ((4, 1), 3)]


def test_null_and_missing_read_as_empty() -> None:
    assert values(b'{"scrobbles": null}', ("scrobbles", ITEMS)) == []
    assert values(b'{"other": []}', ("scrobbles", ITEMS)) == []
    assert values(b"[]", (ITEMS,)) == []
    assert values(b"[ ]", (ITEMS, "track", ITEMS)) == []


def test_wrong_structure_is_an_input_error() -> None:
    err = error(b'{"scrobbles": "x"}', ("scrobbles", ITEMS))
    assert "expected an array for member 'scrobbles', found a string" in err.reason
    err = error(b"[1]", ("scrobbles", ITEMS))
    assert err.reason == "expected an object for the top level, found an array"
    err = error(b'[{"track": [1]}, 2]', (ITEMS, "track", ITEMS))
    assert err.reason == "expected an object for item 2 of the top level, found a number"
    assert "not a JSON object or array" in error(b"  hello").reason
    assert "is empty" in error(b"  \n").reason


def test_whole_value_and_scalars() -> None:
    assert values(b'{"version": "1", "listens": []}', ("version",)) == ["1"]
    assert values(b'[1, -2.5e3, "s", true, false, null, [], {}]', (ITEMS,)) == [
        1,
        -2500.0,
        "s",
        True,
        False,
        None,
        [],
        {},
    ]


def test_bom_and_trailing_data_after_the_document() -> None:
    # Go's json.Decoder reads one value and ignores what follows; so do we.
    assert values(b"\xef\xbb\xbf[1, 2] trailing garbage", (ITEMS,)) == [1, 2]


def test_strings_with_brackets_quotes_and_escapes() -> None:
    tricky = ['{"[', "\\", '\\"', "]}", "\u2022", "\U0001f3b5", "a\\nb", ""]
    data = orjson.dumps([{"s": t, "l": [t, {"t": t}]} for t in tricky])
    assert values(data, (ITEMS,), chunk_size=3) == orjson.loads(data)


def test_items_deeper_than_the_fast_expression() -> None:
    deep: Any = "leaf"
    for _ in range(FAST_DEPTH + 5):
        deep = {"k": [deep]}
    data = orjson.dumps({"items": [deep, 1, deep]})
    assert values(data, ("items", ITEMS)) == [deep, 1, deep]
    assert values(data, ("items", ITEMS), chunk_size=7) == [deep, 1, deep]


def test_items_larger_than_a_chunk() -> None:
    big = {"s": "x" * 50_000, "l": list(range(2000))}
    data = orjson.dumps([big, 1, big])
    assert values(data, (ITEMS,), chunk_size=1024) == [big, 1, big]


def test_go_leniency_for_bad_utf8_and_lone_surrogates() -> None:
    data = b'[{"a": "caf\xe9"}, {"b": "x\\ud800y"}, {"c": "\\\\ud800"}, {"d": "\\ud83c\\udfb5"}]'
    assert values(data, (ITEMS,)) == [
        {"a": "caf\ufffd"},
        {"b": "x\ufffdy"},
        {"c": "\\ud800"},
        {"d": "\U0001f3b5"},
    ]


# --- errors -------------------------------------------------------------------------------


def test_truncated_json_names_the_byte_where_the_file_ends() -> None:
    data = b'{"scrobbles": [{"a": 1}, {"a": 2}, {"a": "unfinished'
    err = error(data, ("scrobbles", ITEMS))
    assert err.where == f"byte {len(data)}"
    assert err.reason.startswith("truncated JSON")
    assert str(err).startswith("test.json (byte ")


def test_every_prefix_of_a_document_fails_cleanly() -> None:
    data = orjson.dumps(
        {
            "maloja": {"v": [1, 2]},
            "scrobbles": [
                {"time": 1, "track": {"artists": ["a ]", "b"], "title": 't"}', "album": None}},
                {"time": 2, "track": {"artists": [], "title": 3.5, "album": {"albumtitle": "x"}}},
            ],
        },
        option=orjson.OPT_INDENT_2,
    )
    expected = orjson.loads(data)["scrobbles"]
    for cut in range(len(data) - 1):
        for chunk_size in (1, 16, 1 << 20):
            reader = JsonReader(io.BytesIO(data[:cut]), "cut.json", chunk_size)
            got = []
            with pytest.raises(InputError) as info:
                for _n, value in reader.items(("scrobbles", ITEMS)):
                    got.append(value)
            assert got == expected[: len(got)]
            assert info.value.reason.startswith(("truncated JSON", "is empty", "invalid JSON"))


def test_an_invalid_item_is_named() -> None:
    err = error(b'[{"a": 1}, {"a": 2}, {"a": tru}, {"a": 4}]')
    assert err.where == "item 3, byte 21"
    assert err.reason.startswith("invalid JSON")


def test_invalid_separators() -> None:
    assert "expected ',' or ']'" in error(b'[{"a": 1} {"a": 2}]').reason
    assert "unexpected ']'" in error(b"[1, 2, ]").reason
    assert "invalid JSON" in error(b'{"a" 1}', ("b", ITEMS)).reason


# --- same values as orjson, whatever the chunking -----------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=5), children, max_size=4)
    ),
    max_leaves=25,
)


@settings(max_examples=300, deadline=None)
@given(
    doc=st.lists(json_values, max_size=8),
    chunk_size=st.integers(1, 80),
    indent=st.booleans(),
)
def test_matches_orjson(doc: list[Any], chunk_size: int, indent: bool) -> None:
    option = orjson.OPT_INDENT_2 if indent else 0
    data = orjson.dumps({"before": doc[:1], "items": doc, "after": {"x": doc[-1:]}}, option=option)
    assert values(data, ("items", ITEMS), chunk_size) == doc
    pages = orjson.dumps([{"track": doc}, {"track": doc[::-1]}], option=option)
    assert values(pages, (ITEMS, "track", ITEMS), chunk_size) == doc + doc[::-1]


tricky_text = st.sampled_from(['},{"a":', '}, {"a": 1}', '"', "]}", "\\", "x"]) | st.text(
    max_size=3
)
uniform_items = st.lists(
    st.fixed_dictionaries(
        {"a": json_values | st.fixed_dictionaries({"a": tricky_text, "b": json_values})},
        optional={"b": tricky_text, "c": st.lists(st.fixed_dictionaries({"a": tricky_text}))},
    ),
    max_size=12,
)


@settings(max_examples=300, deadline=None)
@given(
    pages=st.lists(uniform_items, max_size=4),
    run_bytes=st.integers(8, 400),
    chunk_size=st.integers(8, 200) | st.sampled_from([1024, 1 << 16]),
    indent=st.booleans(),
)
def test_uniform_objects_take_the_fast_path_safely(
    pages: list[list[Any]], run_bytes: int, chunk_size: int, indent: bool
) -> None:
    """Items written alike are cut by their separator; strings that mimic it must not fool it."""
    option = orjson.OPT_INDENT_2 if indent else 0
    data = orjson.dumps([{"track": page, "@attr": {"a": 1}} for page in pages], option=option)
    saved = jsonstream.RUN_BYTES
    jsonstream.RUN_BYTES = run_bytes
    try:
        got = values(data, (ITEMS, "track", ITEMS), chunk_size)
        flat = values(
            orjson.dumps([i for p in pages for i in p], option=option), (ITEMS,), chunk_size
        )
    finally:
        jsonstream.RUN_BYTES = saved
    assert got == flat == [item for page in pages for item in page]


def test_fast_path_falls_back_on_lenient_text() -> None:
    items_ = [{"a": i, "s": "x" * 50} for i in range(200)]
    data = orjson.dumps(items_).replace(b'"a":150,"s":"x', b'"a":150,"s":"\xe9')  # bad UTF-8
    got = values(data, (ITEMS,), chunk_size=512)
    assert len(got) == 200 and got[150]["s"].startswith("\ufffd") and got[199] == items_[199]


# --- helpers ------------------------------------------------------------------------------


def test_top_level_values(tmp_path: Path) -> None:
    path = tmp_path / "doc.json"
    path.write_bytes(b'{"listens": [{"a": [1, 2]}, {"b": "}"}], "user": "u", "version": "1"}')
    assert top_level_values(path, ("version", "user"), stop_at="listens") == {}
    assert top_level_values(path, ("version", "user")) == {"version": "1", "user": "u"}
    path.write_bytes(b'{"version": "1", "listens": [')
    assert top_level_values(path, ("version",), stop_at="listens") == {"version": "1"}
    assert top_level_values(path, ("version",), stop_at="listens", chunk_size=2) == {"version": "1"}


def test_peek_items_reads_what_the_head_holds() -> None:
    data = orjson.dumps({"scrobbles": [{"n": i, "pad": "x" * 100} for i in range(100)]})
    head = data[:1000]
    assert [v["n"] for v in peek_items(head, ("scrobbles", ITEMS), limit=50)] == list(range(8))
    assert peek_items(b"\x89PNG\r\n", (ITEMS,)) == []


def test_open_errors_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        list(iter_items(tmp_path / "missing.json", (ITEMS,)))
    with pytest.raises(InputError, match="is a directory"):
        list(iter_items(tmp_path, (ITEMS,)))


def test_jsonl(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jsonstream, "MAX_LINE_BYTES", 64)
    data = (
        b'\xef\xbb\xbf{"a": 1}\n\n   \n{"a": \n[1, 2]\n{"long": "'
        + b"x" * 200
        + b'"}\n{"a": "caf\xe9"}\n{"last": true}'
    )
    got = list(iter_jsonl(io.BytesIO(data), "x.jsonl"))
    assert [n for n, _ in got] == [1, 4, 5, 6, 7, 8]
    assert got[0][1] == {"a": 1}
    assert isinstance(got[1][1], BadLine)
    assert got[2][1] == [1, 2]
    assert isinstance(got[3][1], BadLine) and "longer than" in got[3][1].reason
    assert got[4][1] == {"a": "caf\ufffd"}
    assert got[5][1] == {"last": True}


# --- memory -------------------------------------------------------------------------------


def test_memory_stays_bounded_on_a_50_mb_array(tmp_path: Path) -> None:
    path = tmp_path / "maloja_big.json"
    item = orjson.dumps(
        {
            "time": 1700000000,
            "track": {
                "artists": ["Some Artist", "Another \u2022 Artist"],
                "title": "A Title [x] {y}",
                "album": {"artists": ["Some Artist"], "albumtitle": "An Album"},
                "length": None,
            },
            "duration": 200,
            "origin": "client:default",
        },
        option=orjson.OPT_INDENT_2,
    )
    block = b",\n".join([item] * 1000) + b",\n"
    blocks = 50_000_000 // len(block) + 1
    with open(path, "wb") as fp:
        fp.write(b'{"maloja": {"export_time": 1}, "scrobbles": [\n')
        for _ in range(blocks):
            fp.write(block)
        fp.write(item + b"\n]}\n")
    size = path.stat().st_size
    assert size > 50_000_000

    tracemalloc.start()
    try:
        n, last = 0, None
        for _number, value in iter_items(path, ("scrobbles", ITEMS)):
            n += 1
            last = value
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert n == blocks * 1000 + 1
    assert last is not None and last["track"]["title"] == "A Title [x] {y}"
    assert peak < 20_000_000, f"peak {peak} bytes for a {size}-byte file"


def test_jsonl_runs_of_empty_lines_keep_line_numbers() -> None:
    import io

    from koito_import.jsonstream import BadLine, iter_jsonl

    data = b"\n" * 200_000 + b'{"a": 1}\n' + b"\n" * 3 + b"{bad\n" + b"\n" * 70_000
    for fp in (io.BufferedReader(io.BytesIO(data), 8192), io.BytesIO(data)):  # peek or not
        out = list(iter_jsonl(fp, "x.jsonl"))
        assert [n for n, _ in out] == [200_001, 200_005]
        assert out[0][1] == {"a": 1} and isinstance(out[1][1], BadLine)
