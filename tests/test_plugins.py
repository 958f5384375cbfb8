"""The plugin host: loading, listing, detection, choosing one plugin's parser, the hooks."""

from __future__ import annotations

import inspect
import re
import shutil
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pluggy
import pytest

from koito_import import hookspecs, plugins
from koito_import.errors import InputError, UsageError
from koito_import.hookspecs import hookimpl
from koito_import.listen import Listen
from koito_import.plugins import ParseOptions, PluginInfo, Skip

FIXTURES = Path(__file__).resolve().parent / "fixtures"
BUILTINS = ["spotify", "maloja", "lastfm", "lastfm_csv", "listenbrainz", "koito"]

# One sample of every format and variant, and the plugin that must read it.
SAMPLES = [
    ("maloja/maloja_export.json", "maloja", 100),
    ("maloja/scrobble_list.json", "maloja", 90),
    ("maloja/empty_scrobbles.json", "maloja", 90),
    ("spotify/Streaming_History_Audio_2023.json", "spotify", 100),
    ("spotify/StreamingHistory_music_0.json", "spotify", 95),
    ("spotify/StreamingHistory_podcast_0.json", "spotify", 95),
    ("lastfm/recenttracks-tester-1700000000.json", "lastfm", 100),
    ("lastfm_csv/tester.csv", "lastfm_csv", 90),
    ("lastfm_csv/resaved.csv", "lastfm_csv", 90),
    ("lastfm_csv/librefm-tester.csv", "lastfm_csv", 100),
    ("listenbrainz/listens.jsonl", "listenbrainz", 100),
    ("listenbrainz/listens_array.json", "listenbrainz", 95),
    ("koito/koito_export_v1.json", "koito", 100),
    ("koito/koito_version_last.json", "koito", 100),
]


def neutral_copy(source: Path, tmp_path: Path, name: str = "export.data") -> Path:
    """The same content under a name that says nothing about the format."""
    target = tmp_path / name
    shutil.copyfile(source, target)
    return target


def listenbrainz_zip(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("user.json", '{"username": "u"}')
        zf.write(
            FIXTURES / "listenbrainz" / "export" / "listens" / "2025" / "6.jsonl",
            "listens/2025/6.jsonl",
        )
    return path


# --- loading and listing --------------------------------------------------------------------


def test_builtins_are_loaded_without_installed_entry_points() -> None:
    pm = plugins.make_plugin_manager()
    assert plugins.plugin_names(pm)[: len(BUILTINS)] == BUILTINS
    pm.check_pending()  # every hook implementation matches a hookspec


def test_list_plugins() -> None:
    rows = {row.name: row for row in plugins.list_plugins()}
    assert set(BUILTINS) <= set(rows)
    for name in BUILTINS:
        assert rows[name].package == "koito-import"
        assert rows[name].version
        assert rows[name].formats
        assert rows[name].patterns
    assert "*Streaming_History_Audio*" in rows["spotify"].patterns


def test_load_plugins_env_limits_what_loads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(plugins.ENV_LOAD_PLUGINS, " maloja, koito ,")
    pm = plugins.make_plugin_manager()
    assert plugins.plugin_names(pm) == ["maloja", "koito"]
    with pytest.raises(UsageError, match=r"unknown plugin 'spotify' \(installed: maloja, koito\)"):
        plugins.require("spotify", pm)
    monkeypatch.setenv(plugins.ENV_LOAD_PLUGINS, "")
    assert plugins.plugin_names(plugins.make_plugin_manager()) == []


def broken_distribution(site: Path, name: str, module_source: str | None) -> Path:
    """A third-party distribution on ``site`` whose entry point ``name`` cannot load."""
    module = f"koito_import_{name}_plugin"
    info = site / f"koito_import_{name}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: koito-import-{name}\nVersion: 0.1\n"
    )
    (info / "entry_points.txt").write_text(f"[koito_import]\n{name} = {module}\n")
    if module_source is not None:
        (site / f"{module}.py").write_text(module_source)
    return site


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ('raise RuntimeError("boom\\nsecond line")\n', "RuntimeError: boom"),
        (None, "ModuleNotFoundError: No module named 'koito_import_broken_plugin'"),
    ],
)
def test_a_broken_plugin_is_one_line_once_and_left_out(
    source: str | None,
    reason: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.syspath_prepend(str(broken_distribution(tmp_path, "broken", source)))
    monkeypatch.setattr(plugins, "_NOT_LOADED", set())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = plugins.make_plugin_manager()
        second = plugins.make_plugin_manager()
    assert [str(w.message) for w in caught] == []  # no Python warning any more
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"koito-import: warning: plugin 'broken' could not be loaded: {reason}\n"
    for pm in (first, second):
        assert "broken" not in plugins.plugin_names(pm)
        assert plugins.plugin_names(pm)[: len(BUILTINS)] == BUILTINS


def test_get_plugin_manager_is_cached() -> None:
    assert plugins.get_plugin_manager() is plugins.get_plugin_manager()


# --- hooks: documented and implemented ----------------------------------------------------


def hookspec_names() -> set[str]:
    return {
        name
        for name, function in inspect.getmembers(hookspecs, inspect.isfunction)
        if hasattr(function, "koito_import_spec")
    }


def test_every_hookspec_is_documented_and_implemented() -> None:
    specs = hookspec_names()
    assert specs == {"koito_import_describe", "koito_import_detect", "koito_import_parse"}
    documented = set(re.findall(r"^(koito_import_\w+)\(", hookspecs.__doc__ or "", re.M))
    assert documented == specs, "hookspecs.py's module docstring must document every hook"
    for name in specs:
        doc = getattr(hookspecs, name).__doc__
        assert doc and doc.strip() and "\n" not in doc.strip(), f"{name} needs a one-line docstring"
    modules = [plugins.import_builtin(m) for m in plugins.BUILTIN_PLUGINS]
    for name in specs:
        implemented_by = [m.__name__ for m in modules if hasattr(m, name)]
        assert implemented_by, f"no built-in plugin implements {name}"
    for module in modules:  # the built-ins implement every hook
        assert all(hasattr(module, name) for name in specs), module.__name__


def test_builtin_options_are_declared_and_documented() -> None:
    """Options are part of PluginInfo (no hook of their own): each one a built-in declares
    has a one-line help and is described in the plugin's module docstring."""
    infos = plugins.describe()
    assert [option.name for option in infos["spotify"].options] == ["min_seconds"]
    for module_name in plugins.BUILTIN_PLUGINS:
        module = plugins.import_builtin(module_name)
        name = module_name.rsplit(".", 1)[1]
        for option in infos[name].options:
            assert f"``{option.name}``" in (module.__doc__ or ""), (name, option.name)
            assert option.help and "\n" not in option.help, (name, option.name)
    assert "``options``" in (hookspecs.__doc__ or "")


def test_hook_signatures_match_their_specs() -> None:
    for module_name in plugins.BUILTIN_PLUGINS:
        module = plugins.import_builtin(module_name)
        for name in hookspec_names():
            spec = inspect.signature(getattr(hookspecs, name))
            impl = inspect.signature(getattr(module, name))
            assert list(impl.parameters) == list(spec.parameters), (module_name, name)


# --- detection -----------------------------------------------------------------------------


@pytest.mark.parametrize(("sample", "plugin", "confidence"), SAMPLES)
def test_detect_by_content(sample: str, plugin: str, confidence: int, tmp_path: Path) -> None:
    assert plugins.detect(neutral_copy(FIXTURES / sample, tmp_path)) == (plugin, confidence)


def test_detect_listenbrainz_zip_by_content(tmp_path: Path) -> None:
    assert plugins.detect(listenbrainz_zip(tmp_path / "export.zip")) == ("listenbrainz", 100)


@pytest.mark.parametrize(
    ("name", "plugin"),
    [
        ("Streaming_History_Audio_2020-2021_3.json", "spotify"),
        ("maloja_export_1748738994.json", "maloja"),
        ("recenttracks-someone-1749776100.json", "lastfm"),
        ("listenbrainz_someone_1749780844.zip", "listenbrainz"),
        ("koito_export_20250618.json", "koito"),
        # Koito checks its rules in order: "maloja" before "koito".
        ("koito_to_maloja.json", "maloja"),
        ("Streaming_History_Audio_maloja.json", "spotify"),
    ],
)
def test_detect_by_name_when_content_says_nothing(name: str, plugin: str, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_bytes(b"{}")
    assert plugins.detect(path) == (plugin, plugins.NAME_ONLY_CONFIDENCE)


def test_name_breaks_a_tie_between_equally_sure_plugins(tmp_path: Path) -> None:
    pm = plugins.make_plugin_manager()

    class Twin:
        @hookimpl
        def koito_import_describe(self) -> PluginInfo:
            return PluginInfo("twin", patterns=("*twin*",))

        @hookimpl
        def koito_import_detect(self, path: Path, head: bytes) -> int | None:
            return 100 if b"scrobbles" in head else None

    pm.register(Twin(), name="twin")
    source = FIXTURES / "maloja" / "maloja_export.json"
    assert plugins.detect(neutral_copy(source, tmp_path, "for_the_twin.json"), pm) == ("twin", 100)
    assert plugins.detect(neutral_copy(source, tmp_path, "export.json"), pm) == ("maloja", 100)


def test_content_wins_over_the_name(tmp_path: Path) -> None:
    source = FIXTURES / "lastfm" / "recenttracks-tester-1700000000.json"
    assert plugins.detect(neutral_copy(source, tmp_path, "maloja_backup.json")) == ("lastfm", 100)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"\x89PNG\r\n\x1a\n", "no plugin reads it (formats: spotify, maloja, lastfm, "),
        (b'{"hello": "world"}', "no plugin reads it (formats: "),
        (b"PK\x03\x04 not really a zip", "no plugin reads it (formats: "),
        (b"", "is empty, so no plugin reads it (formats: "),
    ],
)
def test_unknown_file_is_an_input_error(content: bytes, reason: str, tmp_path: Path) -> None:
    path = tmp_path / "mystery.bin"
    path.write_bytes(content)
    with pytest.raises(InputError) as info:
        plugins.detect(path)
    assert info.value.reason.startswith(reason)
    assert info.value.path == str(path)
    # One line, listing every loaded plugin.
    assert "\n" not in str(info.value)
    assert info.value.reason.endswith(f"(formats: {', '.join(plugins.plugin_names())})")


def test_the_formats_named_are_the_loaded_plugins(tmp_path: Path) -> None:
    """Not a hard-coded list: a plugin registered later is named, one not loaded is not."""
    path = tmp_path / "mystery.bin"
    path.write_bytes(b"\x89PNG\r\n\x1a\n")
    pm = plugins.make_plugin_manager()
    pm.unregister(name="koito")

    class Newcomer:
        @hookimpl
        def koito_import_detect(self, path: Path, head: bytes) -> int | None:
            return None

    pm.register(Newcomer(), name="newcomer")
    with pytest.raises(InputError) as info:
        plugins.detect(path, pm)
    listed = info.value.reason.removeprefix("no plugin reads it (formats: ").removesuffix(")")
    assert listed.split(", ") == plugins.plugin_names(pm)
    assert "newcomer" in listed.split(", ") and "koito" not in listed.split(", ")
    assert plugins.claim(path, pm) is None


PANO = FIXTURES / "unsupported" / "pano_scrobbler.jsonl"


@pytest.mark.parametrize("name", ["pano_scrobbler.jsonl", "listenbrainz_export.jsonl", "x.json"])
def test_another_json_lines_format_is_not_claimed_by_its_name(name: str, tmp_path: Path) -> None:
    """Pano Scrobbler's JSON Lines: ListenBrainz's name patterns do not make it take it."""
    path = neutral_copy(PANO, tmp_path, name)
    assert plugins.claim(path) is None
    with pytest.raises(InputError) as info:
        plugins.detect(path)
    assert info.value.reason.startswith("no plugin reads it (formats: ")
    assert "listenbrainz" in info.value.reason


def test_a_damaged_listenbrainz_file_still_goes_by_its_name(tmp_path: Path) -> None:
    """Only "another format" (a detector's 0) rules the name out, not "cannot tell"."""
    path = tmp_path / "listens.jsonl"
    path.write_bytes(b'not json\n{"listened_at": 1700000000, "track_metadata": {}}\n')
    assert plugins.detect(path) == ("listenbrainz", plugins.NAME_ONLY_CONFIDENCE)


def test_a_detector_answering_zero_is_not_chosen_by_name(tmp_path: Path) -> None:
    pm = plugins.make_plugin_manager()

    class Picky:
        answer: int | None = 0

        @hookimpl
        def koito_import_describe(self) -> PluginInfo:
            return PluginInfo("picky", patterns=("*.picky",))

        @hookimpl
        def koito_import_detect(self, path: Path, head: bytes) -> int | None:
            return self.answer

    picky = Picky()
    pm.register(picky, name="picky")
    path = tmp_path / "data.picky"
    path.write_text("something else\n")
    with pytest.raises(InputError, match="no plugin reads it"):
        plugins.detect(path, pm)
    picky.answer = None  # "cannot tell": the name decides
    assert plugins.detect(path, pm) == ("picky", plugins.NAME_ONLY_CONFIDENCE)


def test_missing_file_and_directory_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        plugins.detect(tmp_path / "missing.json")
    with pytest.raises(InputError, match="is a directory"):
        plugins.detect(tmp_path)
    with pytest.raises(InputError, match="no such file"):
        plugins.parse(tmp_path / "missing.json", "maloja")


def test_a_detect_that_raises_counts_as_not_mine(tmp_path: Path) -> None:
    pm = plugins.make_plugin_manager()

    class Broken:
        @hookimpl
        def koito_import_detect(self, path: Path, head: bytes) -> int | None:
            raise RuntimeError("bug")

    pm.register(Broken(), name="broken")
    sample = FIXTURES / "koito" / "koito_export_v1.json"
    assert plugins.detect(neutral_copy(sample, tmp_path), pm) == ("koito", 100)


# --- a third-party plugin, registered on the plugin manager by name ------------------------


class Rockbox:
    """A tiny inline plugin: a ".scrobbler.log"-like format, tab-separated."""

    __name__ = "rockbox"

    @hookimpl
    def koito_import_describe(self) -> dict[str, object]:
        return {"name": "rockbox", "formats": ["Rockbox log"], "patterns": [".scrobbler*.log"]}

    @hookimpl
    def koito_import_detect(self, head: bytes) -> int | None:  # may take fewer arguments
        return 100 if head.startswith(b"#AUDIOSCROBBLER") else None

    @hookimpl
    def koito_import_parse(self, path: Path, options: ParseOptions) -> Iterator[Listen | Skip]:
        prefix = options.option("rockbox.prefix", "")
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if line.startswith("#"):
                continue
            artist, title, time = line.split("\t")
            if not artist:
                yield Skip("missing_artist", f"line {number}")
                continue
            yield Listen(artist=prefix + artist, title=title, time=int(time), client="rockbox")


@pytest.fixture
def rockbox() -> Iterator[pluggy.PluginManager]:
    pm = plugins.get_plugin_manager()
    pm.register(Rockbox(), name="rockbox")
    try:
        yield pm
    finally:
        pm.unregister(name="rockbox")


def test_inline_plugin_is_listed_detected_and_parsed(
    rockbox: pluggy.PluginManager, tmp_path: Path
) -> None:
    rows = {row.name: row for row in plugins.list_plugins()}
    assert rows["rockbox"].formats == ("Rockbox log",)
    assert rows["rockbox"].package == ""
    path = tmp_path / "log.txt"
    path.write_text("#AUDIOSCROBBLER/1.1\nArtist\tSong\t1700000000\n\tNo Artist\t1700000001\n")
    assert plugins.detect(path) == ("rockbox", 100)
    options = ParseOptions(extra={"rockbox.prefix": "The "})
    assert list(plugins.parse(path, "rockbox", options)) == [
        Listen(artist="The Artist", title="Song", time=1700000000, client="rockbox"),
        Skip("missing_artist", "line 3"),
    ]


def test_only_the_named_plugin_parses(rockbox: pluggy.PluginManager, tmp_path: Path) -> None:
    """Every plugin implements koito_import_parse; only the chosen one may run."""
    path = neutral_copy(FIXTURES / "maloja" / "scrobble_list.json", tmp_path)
    records = list(plugins.parse(path, "maloja"))
    assert [r.title for r in records if isinstance(r, Listen)] == ["API Form", "Second"]


def test_inline_plugin_is_gone_after_unregister(tmp_path: Path) -> None:
    assert plugins.get_plugin_manager().get_plugin("rockbox") is None
    path = tmp_path / "log.txt"
    path.write_text("#AUDIOSCROBBLER/1.1\n")
    with pytest.raises(InputError):
        plugins.detect(path)


def test_unknown_plugin_is_a_usage_error(tmp_path: Path) -> None:
    path = neutral_copy(FIXTURES / "maloja" / "scrobble_list.json", tmp_path)
    with pytest.raises(UsageError, match=r"unknown plugin 'nope' \(installed: spotify, maloja, "):
        plugins.parse(path, "nope")
    with pytest.raises(UsageError):
        plugins.require("nope")
    plugins.require("maloja")


def test_a_plugin_yielding_something_else_is_a_bug(tmp_path: Path) -> None:
    pm = plugins.make_plugin_manager()

    class Sloppy:
        @hookimpl
        def koito_import_parse(self, path: Path, options: ParseOptions) -> Iterator[object]:
            yield {"artist": "a"}

    pm.register(Sloppy(), name="sloppy")
    path = tmp_path / "x"
    path.write_text("x")
    with pytest.raises(TypeError, match="sloppy"):
        list(plugins.parse(path, "sloppy", pm=pm))


def test_wrong_format_for_the_chosen_plugin_is_an_input_error(tmp_path: Path) -> None:
    path = neutral_copy(FIXTURES / "listenbrainz" / "listens.jsonl", tmp_path)
    with pytest.raises(InputError):
        list(plugins.parse(path, "spotify"))
    with pytest.raises(InputError):
        list(plugins.parse(path, "koito"))


def test_shared_assets_are_detected(shared_assets: Path, tmp_path: Path) -> None:
    expected = {
        "maloja_import_test.json": "maloja",
        "Streaming_History_Audio_spotify_import_test.json": "spotify",
        "recenttracks-shoko2-1749776100.json": "lastfm",
        "listenbrainz_shoko1_123456789.zip": "listenbrainz",
        "listenbrainz_shoko1_1749780844.zip": "listenbrainz",
        "koito_export_test.json": "koito",
    }
    for name, plugin in expected.items():
        assert plugins.detect(shared_assets / name) == (plugin, 100), name
        assert plugins.detect(neutral_copy(shared_assets / name, tmp_path)) == (plugin, 100), name
