"""Plugin options: declared by the plugin, set with ``run -o PLUGIN.KEY=VALUE``, read by it.

Also the plugin example of docs/plugins.md (the same as hookspecs.py's), run for real.
"""

from __future__ import annotations

import importlib.util
import pickle
import re
import sqlite3
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import orjson
import pluggy
import pytest

from koito_import import hookspecs, parallel, plugins
from koito_import.cli import main
from koito_import.errors import UsageError
from koito_import.hookspecs import hookimpl
from koito_import.plugin_types import Listen, OptionSpec, ParseOptions, PluginInfo, Skip

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
EXTENDED = FIXTURES / "spotify" / "Streaming_History_Audio_2023.json"
DOCS = ROOT / "docs" / "plugins.md"


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(list(args))
    out, err = capsys.readouterr()
    return int(done.value.code or 0), out, err


def listens_in(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT count(*) FROM listens").fetchone()[0]


def import_rows(
    capsys: pytest.CaptureFixture[str], db: Path, path: Path, *args: str
) -> tuple[int, dict[str, object]]:
    """Import ``path`` into the fresh SQLite ``db``: (listen rows, the JSON summary)."""
    code, out, err = cli(capsys, "run", "--quiet", "--json", "--db", str(db), *args, str(path))
    assert code == 0, err
    return listens_in(db), orjson.loads(out)


# --- the option reaches the plugin -------------------------------------------------------


def test_the_option_reaches_the_spotify_plugin(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Koito's rule (trackdone only) keeps 2 plays; 30 seconds keeps 3; 0 keeps 4."""
    default, _ = import_rows(capsys, tmp_path / "default.db", EXTENDED)
    thirty, _ = import_rows(capsys, tmp_path / "o30.db", EXTENDED, "-o", "spotify.min_seconds=30")
    zero, _ = import_rows(capsys, tmp_path / "o0.db", EXTENDED, "--option", "spotify.min_seconds=0")
    assert (default, thirty, zero) == (2, 3, 4)


def test_spotify_min_seconds_is_an_alias(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    via_o, summary_o = import_rows(
        capsys, tmp_path / "o.db", EXTENDED, "-o", "spotify.min_seconds=30"
    )
    alias, summary_alias = import_rows(
        capsys, tmp_path / "alias.db", EXTENDED, "--spotify-min-seconds", "30"
    )
    assert via_o == alias == 3
    assert summary_o["files"] == summary_alias["files"]  # the same skips, by reason
    # Given both, -o wins (it comes after the alias); the last of several -o wins too.
    both, _ = import_rows(
        capsys,
        tmp_path / "both.db",
        EXTENDED,
        "--spotify-min-seconds",
        "30",
        "-o",
        "spotify.min_seconds=100",
        "-o",
        "spotify.min_seconds=0",
    )
    assert both == 4


def test_the_cli_builds_the_same_parse_options_as_the_library() -> None:
    assert plugins.parse_options(["spotify.min_seconds=30"]) == ParseOptions(
        plugin_options={"spotify": {"min_seconds": 30}}
    )
    assert plugins.parse_options([]) == ParseOptions()
    assert plugins.parse_options([" spotify.min_seconds = 7"]).get("spotify", "min_seconds") == 7


# --- errors: one line, exit code 2, nothing created --------------------------------------


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (
            ["-o", "nope.key=1"],
            "-o 'nope.key=1': unknown plugin 'nope' (installed: spotify, maloja, ",
        ),
        (
            ["-o", "spotify.min_secs=30"],
            "-o 'spotify.min_secs=30': plugin 'spotify' has no option 'min_secs' "
            "(options: min_seconds)",
        ),
        (
            ["-o", "maloja.anything=1"],
            "-o 'maloja.anything=1': plugin 'maloja' has no option 'anything' (options: none)",
        ),
        (
            ["-o", "spotify.min_seconds=thirty"],
            "-o 'spotify.min_seconds=thirty': 'thirty' is not an int",
        ),
        (["-o", "spotify.min_seconds=1.5"], "-o 'spotify.min_seconds=1.5': '1.5' is not an int"),
        (
            ["-o", "spotify.min_seconds=-1"],
            "-o 'spotify.min_seconds=-1': '-1' is less than the minimum, 0",
        ),
        (["-o", "min_seconds=30"], "-o 'min_seconds=30': expected PLUGIN.KEY=VALUE"),
        (["-o", "spotify.min_seconds"], "-o 'spotify.min_seconds': expected PLUGIN.KEY=VALUE"),
        (["-o", ".x=1"], "-o '.x=1': expected PLUGIN.KEY=VALUE"),
    ],
)
def test_a_bad_option_is_one_line_and_exit_code_2(
    given: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    db = tmp_path / "k.db"
    code, out, err = cli(capsys, "run", "--db", str(db), *given, str(EXTENDED))
    assert code == UsageError.exit_code == 2
    assert out == ""
    assert err.startswith(f"koito-import: error: {message}"), err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not db.exists()  # checked before anything is opened


def test_the_alias_needs_the_spotify_plugin(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(plugins.ENV_LOAD_PLUGINS, "maloja")
    monkeypatch.setattr(plugins, "get_plugin_manager", plugins.make_plugin_manager)
    code, _, err = cli(
        capsys, "run", "--db", str(tmp_path / "k.db"), "--spotify-min-seconds", "3", str(EXTENDED)
    )
    assert code == 2
    assert err == (
        "koito-import: error: --spotify-min-seconds 3: "
        "unknown plugin 'spotify' (installed: maloja)\n"
    )


def test_help_names_the_option_and_the_alias(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "run", "--help")
    assert code == 0
    assert "-o, --option PLUGIN.KEY=VALUE" in out
    assert "Alias of -o spotify.min_seconds=N" in " ".join(out.split())


# --- `plugins` lists the options ---------------------------------------------------------


def test_plugins_lists_options(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "plugins")
    assert code == 0
    assert "Plugin options (koito-import run -o PLUGIN.KEY=VALUE):" in out
    [line] = [line for line in out.splitlines() if "spotify.min_seconds" in line]
    assert line.startswith("  spotify.min_seconds (int, default: unset): keep plays of at least")
    code, out, _ = cli(capsys, "plugins", "--json")
    assert code == 0
    rows = {row["name"]: row for row in orjson.loads(out)}
    assert rows["spotify"]["options"] == [
        {
            "name": "min_seconds",
            "type": "int",
            "default": None,
            "help": plugins.import_builtin("koito_import.importers.spotify").MIN_SECONDS.help,
            "minimum": 0,
        }
    ]
    assert rows["maloja"]["options"] == []


# --- ParseOptions: hashable, picklable, one value per key --------------------------------


def test_parse_options_hash_pickle_and_accessors() -> None:
    options = ParseOptions(
        plugin_options={"spotify": {"min_seconds": 30}, "rockbox": {"tz": "UTC", "x": 1.5}},
        extra={"legacy.name": "v"},
    )
    same = ParseOptions(
        plugin_options=[
            ("rockbox", "x", 1.5),
            ("rockbox", "tz", "UTC"),
            ("spotify", "min_seconds", 30),
        ],
        extra={"legacy.name": "v"},
    )
    assert options == same and hash(options) == hash(same)
    assert {options: 1}[same] == 1
    assert pickle.loads(pickle.dumps(options)) == options
    assert options.get("spotify", "min_seconds") == 30
    assert options.get("spotify", "missing", "d") == "d"
    assert options.for_plugin("rockbox") == {"tz": "UTC", "x": 1.5}
    assert options.option("rockbox.tz") == "UTC"  # declared options, then extra
    assert options.option("legacy.name") == "v"
    assert options.option("nothing", 0) == 0
    assert ParseOptions() != options
    with pytest.raises(TypeError):
        ParseOptions(30_000)  # type: ignore[misc]  # keywords only: the fields changed


def test_options_reach_a_spawned_parse_worker() -> None:
    """ParseOptions goes to worker processes pickled: the option still applies there."""
    options = plugins.parse_options(["spotify.min_seconds=30"])
    expected = list(plugins.parse(EXTENDED, "spotify", options))
    assert expected != list(plugins.parse(EXTENDED, "spotify"))
    with parallel.Prefetcher([EXTENDED], "spotify", options, 1, method="spawn") as source:
        name, records = source.open(0)
        assert name == "spotify"
        assert list(records) == expected


def test_option_spec_conversion() -> None:
    flag = OptionSpec("flag", bool)
    assert [flag.convert(v) for v in ("true", "YES", "on", "1")] == [True] * 4
    assert [flag.convert(v) for v in ("false", "No", "off", "0")] == [False] * 4
    with pytest.raises(ValueError, match="is not a bool"):
        flag.convert("maybe")
    ratio = OptionSpec("ratio", "float", 1.0, minimum=0)
    assert ratio.type is float and ratio.type_name == "float"
    assert ratio.convert("0.25") == 0.25
    for bad in ("nan", "inf", "x", "-0.5"):
        with pytest.raises(ValueError):
            ratio.convert(bad)
    assert OptionSpec("name").convert(" as is ") == " as is "
    with pytest.raises(TypeError, match="type must be one of"):
        OptionSpec("when", list)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"without '\.'"):
        OptionSpec("a.b", int)
    with pytest.raises(ValueError, match="declares an option twice"):
        PluginInfo("p", options=(OptionSpec("a"), OptionSpec("a")))


# --- a third-party plugin declares options and receives them ------------------------------


class Tagger:
    """An inline third-party plugin; its options come as plain dicts, types by name."""

    __name__ = "tagger"

    @hookimpl
    def koito_import_describe(self) -> dict[str, object]:
        return {
            "name": "tagger",
            "formats": ["Tagger lines"],
            "patterns": ["*.tagger"],
            "options": [
                {"name": "prefix", "type": "str", "default": "", "help": "put before titles"},
                {"name": "shift", "type": int, "default": 0, "help": "seconds added to times"},
                {"name": "upper", "type": "bool", "default": False, "help": "upper-case artists"},
            ],
        }

    @hookimpl
    def koito_import_detect(self, head: bytes) -> int | None:
        return 100 if head.startswith(b"TAGGER\n") else None

    @hookimpl
    def koito_import_parse(self, path: Path, options: ParseOptions) -> Iterator[Listen | Skip]:
        prefix = options.get("tagger", "prefix", "")
        shift = options.get("tagger", "shift", 0)
        upper = options.get("tagger", "upper", False)
        for number, line in enumerate(path.read_text().splitlines()[1:], 2):
            artist, title, time = line.split("|")
            if int(time) + shift < 1_700_000_000:
                yield Skip("too_early", f"line {number}")
                continue
            yield Listen(
                artist=artist.upper() if upper else artist,
                title=prefix + title,
                time=int(time) + shift,
                client="tagger",
            )


@pytest.fixture
def tagger() -> Iterator[pluggy.PluginManager]:
    pm = plugins.get_plugin_manager()
    pm.register(Tagger(), name="tagger")
    try:
        yield pm
    finally:
        pm.unregister(name="tagger")


def tagger_file(tmp_path: Path) -> Path:
    path = tmp_path / "plays.tagger"
    path.write_text("TAGGER\nAurora Lane|Paper Boats|1700000000\nLos Trenes|Anden|1699999990\n")
    return path


def test_a_third_party_plugin_declares_and_receives_options(
    tagger: pluggy.PluginManager, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tagger_file(tmp_path)
    assert list(plugins.parse(path, "tagger")) == [
        Listen(artist="Aurora Lane", title="Paper Boats", time=1700000000, client="tagger"),
        Skip("too_early", "line 3"),
    ]
    options = plugins.parse_options(["tagger.prefix=~ ", "tagger.shift=10", "tagger.upper=yes"])
    assert list(plugins.parse(path, "tagger", options)) == [
        Listen(artist="AURORA LANE", title="~ Paper Boats", time=1700000010, client="tagger"),
        Listen(artist="LOS TRENES", title="~ Anden", time=1700000000, client="tagger"),
    ]
    # Through the command line: the option changes what is imported.
    assert import_rows(capsys, tmp_path / "a.db", path)[0] == 1
    assert import_rows(capsys, tmp_path / "b.db", path, "-o", "tagger.shift=10")[0] == 2
    code, _, err = cli(
        capsys, "run", "--db", str(tmp_path / "c.db"), "-o", "tagger.shift=ten", str(path)
    )
    assert (code, err) == (2, "koito-import: error: -o 'tagger.shift=ten': 'ten' is not an int\n")
    code, out, _ = cli(capsys, "plugins")
    assert "  tagger.upper (bool, default: false): upper-case artists" in out.splitlines()
    assert "  tagger.prefix (str, default: ): put before titles" in out.splitlines()


def test_a_plugin_with_malformed_options_is_described_as_if_its_hook_raised() -> None:
    pm = plugins.make_plugin_manager()

    class Sloppy:
        @hookimpl
        def koito_import_describe(self) -> dict[str, object]:
            return {"name": "sloppy", "options": [{"name": "x", "type": "list"}]}

    pm.register(Sloppy(), name="sloppy")
    assert plugins.describe(pm)["sloppy"] == PluginInfo("sloppy")
    with pytest.raises(UsageError, match="plugin 'sloppy' has no option 'x' \\(options: none\\)"):
        plugins.parse_options(["sloppy.x=1"], pm)


# --- the example of docs/plugins.md and hookspecs.py, run ------------------------------------


def docs_example() -> str:
    """The plugin code block of docs/plugins.md: the python block with the hooks."""
    blocks = re.findall(r"^```python\n(.*?)^```$", DOCS.read_text(encoding="utf-8"), re.S | re.M)
    [code] = [block for block in blocks if "@hookimpl" in block]
    return code


def hookspecs_example() -> str:
    """The module of hookspecs.py's docstring example (after its pyproject.toml part)."""
    doc = hookspecs.__doc__ or ""
    start = doc.index("    # koito_import_rockbox.py\n")
    end = doc.index("\nThe entry-point name", start)
    return textwrap.dedent(doc[start:end]).strip() + "\n"


def test_docs_and_hookspecs_show_the_same_example() -> None:
    assert docs_example() == hookspecs_example()
    assert "playback*.log" not in (hookspecs.__doc__ or "")


@pytest.fixture
def docs_plugin(tmp_path: Path) -> Iterator[ModuleType]:
    """docs/plugins.md's example, written to a module and registered as "rockbox"."""
    source = tmp_path / "koito_import_rockbox_from_docs.py"
    source.write_text(docs_example(), encoding="utf-8")
    spec = importlib.util.spec_from_file_location(source.stem, source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    pm = plugins.get_plugin_manager()
    previous = pm.get_plugin("rockbox")  # e.g. the installed example package
    if previous is not None:
        pm.unregister(name="rockbox")
    pm.register(module, name="rockbox")
    try:
        yield module
    finally:
        pm.unregister(name="rockbox")
        if previous is not None:
            pm.register(previous, name="rockbox")


LOG = (
    "#AUDIOSCROBBLER/1.1\n"
    "#TZ/UTC\n"
    "#CLIENT/Rockbox sansaclipplus $Revision$\n"
    "Aurora Lane\tNorthern Glass\tQuiet Harbour\t1\t201\tL\t1735690000\t\n"
    "Aurora Lane\tNorthern Glass\tPaper Boats\t2\t188\tS\t1735690300\t\n"
    "\tNo Album\tNo Artist\t3\t100\tL\t1735690600\t\n"
    "broken line without tabs\n"
    "Los Trenes\tCentral\tLate\t4\t\tL\tyesterday\t\n"
    "Los Trenes\tCentral\tAnden Nueve\t5\t240\tL\t1735690900\t"
    "5C1D7E0F-2A11-4C0E-9F8C-0B1FBC3E5A9D\n"
)


def test_the_docs_example_plugin_runs(
    docs_plugin: ModuleType, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    log = tmp_path / "player.scrobbler.log"
    log.write_text(LOG, encoding="utf-8")
    assert plugins.detect(log) == ("rockbox", 100)
    first = Listen(
        artist="Aurora Lane",
        title="Quiet Harbour",
        album="Northern Glass",
        time=1735690000,
        duration=201,
        client="rockbox",
    )
    last = Listen(
        artist="Los Trenes",
        title="Anden Nueve",
        album="Central",
        time=1735690900,
        duration=240,
        recording_mbid="5c1d7e0f-2a11-4c0e-9f8c-0b1fbc3e5a9d",
        client="rockbox",
    )
    skips = [
        Skip("missing_artist", "line 6"),
        Skip("wrong_field_count", "line 7"),
        Skip("bad_timestamp", "line 8"),
    ]
    assert list(plugins.parse(log, "rockbox")) == [
        first,
        Skip("skipped_on_player", "line 5"),
        *skips,
        last,
    ]
    kept = Listen(
        artist="Aurora Lane",
        title="Paper Boats",
        album="Northern Glass",
        time=1735690300,
        duration=188,
        client="rockbox",
    )
    options = plugins.parse_options(["rockbox.keep_skipped=true"])
    assert list(plugins.parse(log, "rockbox", options)) == [first, kept, *skips, last]
    # docs/plugins.md section 7's unit test, on this module.
    small = tmp_path / ".scrobbler.log"
    small.write_text("#AUDIOSCROBBLER/1.1\n#TZ/UTC\nA\tAl\tT\t1\t200\tL\t1700000000\t\n")
    [listen] = docs_plugin.koito_import_parse(small, ParseOptions())
    assert (listen.artist, listen.title, listen.time) == ("A", "T", 1700000000)
    # And as users meet it: imported into a fresh SQLite database.
    assert import_rows(capsys, tmp_path / "a.db", log)[0] == 2
    assert import_rows(capsys, tmp_path / "b.db", log, "-o", "rockbox.keep_skipped=yes")[0] == 3
    code, out, _ = cli(capsys, "plugins")
    assert code == 0
    assert (
        "  rockbox.keep_skipped (bool, default: false): import plays rated S (skipped) too"
        in out.splitlines()
    )
