"""The plugin host: find the importer plugins, pick one for a file, and run its parser.

Plugins are found through one pluggy entry-point group, ``koito_import``; the built-in
importers are listed there by koito-import's own packaging, exactly like a third-party
package's (see :mod:`koito_import.hookspecs` for writing one). So that a source checkout
works without ``pip install`` (no entry points), each built-in of
:data:`BUILTIN_PLUGINS` is also registered by module name when no entry point of that
name was loaded — an installed third-party plugin with a built-in's name therefore
replaces the built-in.

``KOITO_IMPORT_LOAD_PLUGINS`` (comma-separated plugin names) limits what is loaded,
built-ins included; set to the empty string, it loads none.

Detection (:func:`detect`) asks every plugin's ``koito_import_detect`` how sure it is
from the file's content; the most confident wins. The file name comes second: among
equally confident plugins the one whose ``patterns`` match the name wins, and when no
plugin recognises the content at all, the first plugin whose patterns match the name is
chosen with :data:`NAME_ONLY_CONFIDENCE` (so that a damaged file still reaches its
importer and gets that importer's precise error) — unless that plugin's detector answered
``0``: "I read the content and it is another format", which rules the plugin out by name
too, so that no plugin claims a file it cannot read a single listen from (a Pano
Scrobbler ``.jsonl`` is not taken by the ListenBrainz reader for its name). A file no
plugin takes is an InputError naming the formats there are: the loaded plugins' names,
so a new plugin shows up in it by itself. Built-in patterns encode Koito's own
rule, checked in Koito's order: name contains ``Streaming_History_Audio`` → spotify,
``maloja`` → maloja, ``recenttracks`` → lastfm, ``listenbrainz`` → listenbrainz,
``koito`` → koito.

Running one plugin (:func:`parse`): pluggy calls a hook on every registered plugin, so
the host calls ``koito_import_parse`` through ``PluginManager.subset_hook_caller`` with
every other plugin removed; the hook is ``firstresult`` so the call returns that one
plugin's iterator. Detection and description, which need each plugin's own answer, call
each plugin's hook implementation directly.

Options (:func:`parse_options`): a plugin declares the options it takes in its
PluginInfo (``options``, a tuple of :class:`~koito_import.plugin_types.OptionSpec`);
``run -o PLUGIN.KEY=VALUE`` is checked against them and converted to the declared type
here, before anything is read, and reaches the plugin as
``ParseOptions.get(PLUGIN, KEY)``.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import importlib.util
import os
import sys
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy

import koito_import
from koito_import import hookspecs
from koito_import.errors import InputError, KoitoImportError, UsageError
from koito_import.hookspecs import PROJECT, hookimpl
from koito_import.jsonstream import read_head
from koito_import.plugin_types import Listen, OptionSpec, ParseOptions, PluginInfo, Skip

__all__ = [
    "BUILTIN_PLUGINS",
    "ENV_LOAD_PLUGINS",
    "GROUP",
    "NAME_ONLY_CONFIDENCE",
    "OptionSpec",
    "ParseOptions",
    "PluginInfo",
    "PluginRecord",
    "Skip",
    "claim",
    "describe",
    "detect",
    "format_names",
    "get_plugin_manager",
    "hookimpl",
    "import_builtin",
    "list_plugins",
    "make_plugin_manager",
    "no_plugin_reads",
    "parse",
    "parse_options",
    "plugin_names",
    "require",
]

#: The entry-point group plugins register under.
GROUP = PROJECT
#: Environment variable: comma-separated names of the plugins to load ("" = none).
ENV_LOAD_PLUGINS = "KOITO_IMPORT_LOAD_PLUGINS"
#: The built-in importers, in Koito's file-name rule order (used to break name ties).
BUILTIN_PLUGINS: tuple[str, ...] = (
    "koito_import.importers.spotify",
    "koito_import.importers.maloja",
    "koito_import.importers.lastfm",
    "koito_import.importers.lastfm_csv",
    "koito_import.importers.listenbrainz",
    "koito_import.importers.koito",
)
#: Confidence reported when only the file name pointed at a plugin.
NAME_ONLY_CONFIDENCE = 10
#: The distribution that provides the built-ins.
DISTRIBUTION = "koito-import"

_BUILTIN_NAMES = tuple(m.rsplit(".", 1)[1] for m in BUILTIN_PLUGINS)


@dataclass(frozen=True, slots=True)
class PluginRecord:
    """One installed plugin, as ``koito-import plugins`` lists it."""

    name: str
    #: The distribution that provides it ("koito-import" for the built-ins, "" if unknown).
    package: str
    version: str
    formats: tuple[str, ...]
    patterns: tuple[str, ...]
    #: The options it takes (``run -o NAME.KEY=VALUE``), as its PluginInfo declares them.
    options: tuple[OptionSpec, ...] = ()


# --- loading -----------------------------------------------------------------------------


def _allowed_names() -> set[str] | None:
    """The names KOITO_IMPORT_LOAD_PLUGINS allows, or None when it is not set (all)."""
    value = os.environ.get(ENV_LOAD_PLUGINS)
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


def _source_importers() -> ModuleType | None:
    """Make ``koito_import.importers`` importable from a source checkout's ``plugins/``.

    setup.py installs ``plugins/`` as ``koito_import.importers``; without installation
    that package does not exist, so map it onto the directory beside ``koito_import/``.
    """
    root = Path(koito_import.__file__).resolve().parent.parent / "plugins"
    init = root / "__init__.py"
    if not init.is_file():
        return None
    spec = importlib.util.spec_from_file_location(
        "koito_import.importers", init, submodule_search_locations=[str(root)]
    )
    if spec is None or spec.loader is None:  # pragma: no cover
        return None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    koito_import.importers = module  # type: ignore[attr-defined]
    return module


def _ensure_importers() -> None:
    """Make sure ``koito_import.importers`` imports (installed, or mapped onto the source)."""
    try:
        importlib.import_module("koito_import.importers")
    except ModuleNotFoundError as exc:
        if exc.name != "koito_import.importers" or _source_importers() is None:
            raise


def import_builtin(module_name: str) -> ModuleType:
    """Import a built-in importer module, from the installed package or the source tree."""
    _ensure_importers()
    return importlib.import_module(module_name)


def make_plugin_manager() -> pluggy.PluginManager:
    """A new plugin manager with the allowed entry-point plugins and built-ins registered.

    A third-party plugin that fails to load is left out, with one line on stderr (once
    per process and plugin, see :func:`_warn_not_loaded`), so that one broken package
    does not stop every import.
    """
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    # Before the entry points: a source checkout run next to an installed copy must
    # resolve the built-ins' entry points to its own plugins/ directory.
    _ensure_importers()
    allowed = _allowed_names()
    try:
        entry_points = importlib.metadata.entry_points(group=GROUP)
    except Exception:  # pragma: no cover - broken metadata on the machine
        entry_points = ()  # type: ignore[assignment]
    for name in sorted({ep.name for ep in entry_points}):
        if allowed is not None and name not in allowed:
            continue
        try:
            pm.load_setuptools_entrypoints(GROUP, name=name)
        except Exception as exc:
            if pm.get_plugin(name) is not None:  # registered before it failed: leave it out
                pm.unregister(name=name)
            _warn_not_loaded(name, exc)
    for module_name, name in zip(BUILTIN_PLUGINS, _BUILTIN_NAMES, strict=True):
        if allowed is not None and name not in allowed:
            continue
        if pm.get_plugin(name) is not None or pm.is_blocked(name):
            continue
        pm.register(import_builtin(module_name), name=name)
    return pm


#: Plugins already reported as not loadable in this process (each is reported once).
_NOT_LOADED: set[str] = set()


def _warn_not_loaded(name: str, exc: BaseException) -> None:
    """Say once per process, in one line on stderr, that plugin ``name`` was left out.

    Not ``warnings.warn``: that prints "UserWarning" and a source line of ours, which
    tells the user nothing about their broken package.
    """
    if name in _NOT_LOADED:
        return
    _NOT_LOADED.add(name)
    lines = str(exc).strip().splitlines()
    reason = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    print(f"koito-import: warning: plugin {name!r} could not be loaded: {reason}", file=sys.stderr)


@functools.cache
def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager (built on first use; ``cache_clear()`` rebuilds)."""
    return make_plugin_manager()


def _pm(pm: pluggy.PluginManager | None) -> pluggy.PluginManager:
    return get_plugin_manager() if pm is None else pm


def plugin_names(pm: pluggy.PluginManager | None = None) -> list[str]:
    """Names of the registered plugins: built-ins in Koito's order, then the others by name."""
    names = [name for name, _plugin in _pm(pm).list_name_plugin()]
    builtin = [n for n in _BUILTIN_NAMES if n in names]
    return builtin + sorted(n for n in names if n not in _BUILTIN_NAMES)


def require(name: str, pm: pluggy.PluginManager | None = None) -> None:
    """Raise UsageError unless a plugin called ``name`` is installed and loaded."""
    if _pm(pm).get_plugin(name) is None:
        installed = ", ".join(plugin_names(pm)) or "none"
        raise UsageError(f"unknown plugin {name!r} (installed: {installed})")


# --- calling one plugin's hook -------------------------------------------------------------


def _call_each(
    pm: pluggy.PluginManager, hook_name: str, **kwargs: Any
) -> Iterator[tuple[str, Any]]:
    """Call ``hook_name`` of every plugin separately: ``(plugin name, result)``.

    pluggy's normal hook call merges all results without saying whose they are;
    detection needs to know. Arguments an implementation does not declare are not passed
    (pluggy's own rule). A plugin whose hook raises is left out: one broken third-party
    plugin must not stop detection or ``koito-import plugins``.
    """
    caller = getattr(pm.hook, hook_name)
    for impl in reversed(caller.get_hookimpls()):
        if impl.hookwrapper or impl.wrapper:
            continue
        try:
            result = impl.function(*(kwargs[arg] for arg in impl.argnames))
        except Exception:
            continue
        yield impl.plugin_name, result


def describe(pm: pluggy.PluginManager | None = None) -> dict[str, PluginInfo]:
    """Every plugin's ``koito_import_describe`` answer, by plugin name."""
    pm = _pm(pm)
    infos: dict[str, PluginInfo] = {}
    for name, result in _call_each(pm, "koito_import_describe"):
        if result is None:
            continue
        try:
            infos[name] = PluginInfo.coerce(result, name)
        except (TypeError, ValueError, KeyError, AttributeError):
            continue  # a malformed answer counts like a hook that raised
    for name in plugin_names(pm):
        infos.setdefault(name, PluginInfo(name))
    return infos


def _distributions(pm: pluggy.PluginManager) -> dict[int, tuple[str, str]]:
    """id(plugin) -> (distribution name, version) for plugins loaded from entry points."""
    out: dict[int, tuple[str, str]] = {}
    for plugin, dist in pm.list_plugin_distinfo():
        out[id(plugin)] = (dist.project_name, dist.version)
    return out


def _own_version() -> str:
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return koito_import.__version__


def list_plugins(pm: pluggy.PluginManager | None = None) -> list[PluginRecord]:
    """The installed plugins with their package, version, formats and file patterns."""
    pm = _pm(pm)
    infos = describe(pm)
    dists = _distributions(pm)
    records = []
    for name in plugin_names(pm):
        plugin = pm.get_plugin(name)
        package, version = dists.get(id(plugin), ("", ""))
        module = getattr(plugin, "__name__", "")
        if not package and isinstance(module, str) and module.startswith("koito_import.importers."):
            package, version = DISTRIBUTION, _own_version()
        info = infos[name]
        records.append(
            PluginRecord(name, package, version, info.formats, info.patterns, info.options)
        )
    return records


# --- options ---------------------------------------------------------------------------


def parse_options(
    assignments: Iterable[str],
    pm: pluggy.PluginManager | None = None,
    flag: str = "-o",
) -> ParseOptions:
    """ParseOptions from ``PLUGIN.KEY=VALUE`` texts (``run -o``), checked and converted.

    Each value is converted to the type the plugin declares for the key (its
    PluginInfo's ``options``); the last of several values for one key wins. A malformed
    text, an unknown plugin, a key the plugin does not declare or a value that does not
    convert is a one-line UsageError naming it.
    """
    pm = _pm(pm)
    infos: dict[str, PluginInfo] | None = None
    values: list[tuple[str, str, Any]] = []
    for text in assignments:
        target, equals, raw = text.partition("=")
        plugin, dot, key = target.strip().partition(".")
        if not equals or not dot or not plugin or not key:
            raise UsageError(f"{flag} {text!r}: expected PLUGIN.KEY=VALUE")
        if pm.get_plugin(plugin) is None:
            installed = ", ".join(plugin_names(pm)) or "none"
            raise UsageError(f"{flag} {text!r}: unknown plugin {plugin!r} (installed: {installed})")
        if infos is None:
            infos = describe(pm)
        spec = infos[plugin].option_spec(key)
        if spec is None:
            declared = ", ".join(o.name for o in infos[plugin].options) or "none"
            raise UsageError(
                f"{flag} {text!r}: plugin {plugin!r} has no option {key!r} (options: {declared})"
            )
        try:
            value = spec.convert(raw)
        except ValueError as exc:
            raise UsageError(f"{flag} {text!r}: {exc}") from None
        values.append((plugin, key, value))
    return ParseOptions(plugin_options=values)


# --- detection ---------------------------------------------------------------------------


def _name_matches(filename: str, patterns: Iterable[str]) -> bool:
    return any(fnmatchcase(filename, pattern) for pattern in patterns)


def format_names(pm: pluggy.PluginManager | None = None) -> str:
    """The formats there are, for messages: the loaded plugins' names, comma-separated."""
    return ", ".join(plugin_names(pm)) or "none"


def no_plugin_reads(
    path: str | os.PathLike[str], pm: pluggy.PluginManager | None = None, *, empty: bool = False
) -> InputError:
    """The one-line error for a file no plugin takes, naming the formats there are."""
    why = "is empty, so no plugin reads it" if empty else "no plugin reads it"
    return InputError(str(path), "", f"{why} (formats: {format_names(pm)})")


def _scores(p: Path, head: bytes, pm: pluggy.PluginManager) -> tuple[dict[str, int], set[str]]:
    """Every detector's answer: {plugin: 1-100}, and the plugins that said "another
    format" (0), which are not to be chosen by name either."""
    scores: dict[str, int] = {}
    ruled_out: set[str] = set()
    if head:
        for name, result in _call_each(pm, "koito_import_detect", path=p, head=head):
            if isinstance(result, bool) or not isinstance(result, (int, float)):
                continue
            if result <= 0:
                ruled_out.add(name)
                continue
            scores[name] = min(int(result), 100)
    return scores, ruled_out


def _choose(p: Path, head: bytes, pm: pluggy.PluginManager) -> tuple[str, int] | None:
    order = plugin_names(pm)
    rank = {name: i for i, name in enumerate(order)}
    infos = describe(pm)
    by_name = {name: _name_matches(p.name, infos[name].patterns) for name in order}
    scores, ruled_out = _scores(p, head, pm)
    if scores:
        best = max(scores, key=lambda n: (scores[n], by_name.get(n, False), -rank.get(n, 1 << 30)))
        return best, scores[best]
    for name in order:
        if by_name[name] and name not in ruled_out:
            return name, NAME_ONLY_CONFIDENCE
    return None


def claim(
    path: str | os.PathLike[str], pm: pluggy.PluginManager | None = None
) -> tuple[str, int] | None:
    """:func:`detect`, but None when no plugin reads the file (InputError: unreadable)."""
    pm = _pm(pm)
    p = Path(path)
    return _choose(p, read_head(p), pm)


def detect(path: str | os.PathLike[str], pm: pluggy.PluginManager | None = None) -> tuple[str, int]:
    """Which plugin reads ``path``, and how sure it is (0-100).

    Content first (highest confidence wins), then the file name (ties, and files no
    plugin recognises — except by a plugin whose detector answered 0, "another
    format"). InputError when the file cannot be read or nothing matches; then the
    reason names the formats there are (:func:`no_plugin_reads`).
    """
    pm = _pm(pm)
    p = Path(path)
    head = read_head(p)
    found = _choose(p, head, pm)
    if found is None:
        raise no_plugin_reads(path, pm, empty=not head)
    return found


def reads(
    path: str | os.PathLike[str], plugin_name: str, pm: pluggy.PluginManager | None = None
) -> bool:
    """Whether the plugin ``plugin_name`` says it reads ``path`` (by content or name).

    For files found inside a folder or archive under ``--plugin``: the members the
    plugin does not recognise are listed as not read instead of failing the run.
    """
    pm = _pm(pm)
    p = Path(path)
    scores, ruled_out = _scores(p, read_head(p), pm)
    if plugin_name in scores:
        return True
    info = describe(pm).get(plugin_name)
    return (
        plugin_name not in ruled_out and info is not None and _name_matches(p.name, info.patterns)
    )


# --- parsing -----------------------------------------------------------------------------


def parse(
    path: str | os.PathLike[str],
    plugin_name: str,
    options: ParseOptions | None = None,
    pm: pluggy.PluginManager | None = None,
) -> Iterator[Listen | Skip]:
    """Stream the records of ``path`` as the plugin ``plugin_name`` reads them.

    Checks eagerly (before the first record is asked for) that the plugin exists
    (UsageError otherwise) and that the path is a readable file (InputError). Read
    errors while streaming become InputError too.
    """
    pm = _pm(pm)
    require(plugin_name, pm)
    p = Path(path)
    read_head(p, 0)  # missing file, directory, no permission -> InputError now
    plugin = pm.get_plugin(plugin_name)
    others = [other for other in pm.get_plugins() if other is not plugin]
    caller = pm.subset_hook_caller("koito_import_parse", remove_plugins=others)
    records = caller(path=p, options=ParseOptions() if options is None else options)
    if records is None:
        raise UsageError(f"plugin {plugin_name!r} does not parse files")
    return _guarded(records, str(path), plugin_name)


def _guarded(records: Iterable[Any], path: str, plugin_name: str) -> Iterator[Listen | Skip]:
    """Pass records through, turning read failures into InputError and checking types."""
    try:
        for record in records:
            if not isinstance(record, (Listen, Skip)):
                raise TypeError(
                    f"plugin {plugin_name!r} yielded {type(record).__name__}, not Listen or Skip"
                )
            yield record
    except KoitoImportError:
        raise
    except zipfile.BadZipFile as exc:
        raise InputError(path, "", f"corrupt zip file: {exc}") from None
    except UnicodeDecodeError as exc:
        raise InputError(path, f"byte {exc.start}", f"not valid text: {exc.reason}") from None
    except OSError as exc:
        raise InputError(path, "", f"cannot be read: {exc.strerror or exc}") from None
