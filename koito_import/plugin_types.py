"""The types an importer plugin deals in: what it yields, what it is told, how it describes itself.

This is the one module a plugin imports its types from (:mod:`koito_import.hookspecs`
gives it ``hookimpl``)::

    from koito_import.plugin_types import Listen, OptionSpec, ParseOptions, PluginInfo, Skip

A plugin's ``koito_import_parse`` yields :class:`~koito_import.listen.Listen` records
(re-exported here) and, for every input item it cannot turn into a listen, a
:class:`Skip` — so that the summary can say how many items were read and why some were
left out, and so that one bad item never stops an import. :class:`ParseOptions` carries
the user's choices that change *parsing* (not matching). :class:`PluginInfo` is what
``koito_import_describe`` returns; its :class:`OptionSpec` entries declare the options
the plugin takes (``koito-import run -o PLUGIN.KEY=VALUE``).

The Go-compatible field readers plugins share (``mbid``, ``go_str``, ...) live in
:mod:`koito_import.records`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from koito_import.listen import Listen

__all__ = [
    "OPTION_TYPES",
    "Listen",
    "OptionSpec",
    "ParseOptions",
    "PluginInfo",
    "Skip",
]


@dataclass(frozen=True, slots=True)
class Skip:
    """One input item that does not become a listen, and why.

    ``reason`` is a short, stable label that the summary counts by (``missing_artist``,
    ``missing_title``, ``bad_timestamp``, ``not_trackdone``, ``too_short``,
    ``podcast_or_audiobook``, ``now_playing``, ``wrong_type``, ``not_an_object``,
    ``invalid_json``); ``where`` locates the item for a human (``"item 17"``,
    ``"line 3"``, ``"listens/2025/6.jsonl line 3"``, ``"page 2, item 5"``), optionally
    followed by the offending field in parentheses. ``raw`` is the item as the file
    holds it (the parsed JSON value, or the line's text), so that ``--skipped`` can show
    the user which item it was; it takes no part in equality.
    """

    reason: str
    where: str
    raw: Any = field(default=None, compare=False)


# --- options ---------------------------------------------------------------------------

#: The types an option may declare, by the name ``koito-import plugins`` shows.
OPTION_TYPES: dict[str, type] = {"int": int, "float": float, "bool": bool, "str": str}

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


@dataclass(frozen=True, slots=True)
class OptionSpec:
    """One option a plugin takes: ``koito-import run -o PLUGIN.NAME=VALUE``.

    ``type`` is ``int``, ``float``, ``bool`` or ``str`` (or its name); the value the
    user gives is converted to it (:meth:`convert`), and a value that does not convert
    is a usage error before anything is read. ``default`` is what the plugin uses when
    the option is not given — shown by ``koito-import plugins``; ``None`` means "unset"
    (the plugin's own rule applies). ``help`` is one line. ``minimum``, for ``int`` and
    ``float``, refuses smaller values.
    """

    name: str
    type: type = str
    default: Any = None
    help: str = ""
    minimum: float | None = None

    def __post_init__(self) -> None:
        kind = OPTION_TYPES.get(self.type) if isinstance(self.type, str) else self.type
        if kind not in OPTION_TYPES.values():
            raise TypeError(f"option {self.name!r}: type must be one of int, float, bool, str")
        object.__setattr__(self, "type", kind)
        if not self.name or "=" in self.name or "." in self.name:
            raise ValueError(f"option name {self.name!r} must be non-empty, without '.' or '='")

    @property
    def type_name(self) -> str:
        """``"int"``, ``"float"``, ``"bool"`` or ``"str"``."""
        return self.type.__name__

    def convert(self, text: str) -> Any:
        """The value of the command-line text ``text``; ValueError (one line) if it is not one."""
        kind = self.type
        if kind is bool:
            word = text.strip().lower()
            if word in _TRUE:
                return True
            if word in _FALSE:
                return False
            raise ValueError(f"{text!r} is not a bool (true/false, yes/no, on/off, 1/0)")
        if kind is str:
            return text
        try:
            value = int(text) if kind is int else float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not {'an int' if kind is int else 'a float'}") from None
        if kind is float and not math.isfinite(value):
            raise ValueError(f"{text!r} is not a finite float")
        if self.minimum is not None and value < self.minimum:
            raise ValueError(f"{text!r} is less than the minimum, {self.minimum:g}")
        return value

    @classmethod
    def coerce(cls, value: OptionSpec | Mapping[str, Any]) -> OptionSpec:
        """Accept an OptionSpec or a plain dict with the same keys."""
        if isinstance(value, OptionSpec):
            return value
        return cls(
            name=str(value["name"]),
            type=value.get("type", str),
            default=value.get("default"),
            help=str(value.get("help") or ""),
            minimum=value.get("minimum"),
        )


def _sorted_values(
    values: Mapping[str, Mapping[str, Any]] | Iterable[tuple[str, str, Any]],
) -> tuple[tuple[str, str, Any], ...]:
    """``{plugin: {key: value}}`` (or ``(plugin, key, value)`` triples) as sorted triples;
    a key given twice keeps its last value."""
    if isinstance(values, Mapping):
        triples: Iterable[tuple[str, str, Any]] = (
            (plugin, key, value) for plugin, keys in values.items() for key, value in keys.items()
        )
    else:
        triples = values
    merged = {(str(plugin), str(key)): value for plugin, key, value in triples}
    return tuple((plugin, key, merged[plugin, key]) for plugin, key in sorted(merged))


@dataclass(frozen=True, slots=True, init=False)
class ParseOptions:
    """User choices that change how a file is read (never how listens are matched).

    ``plugin_options``: the values of the options plugins declare (:class:`OptionSpec`),
    as the user set them (``-o spotify.min_seconds=30``), already converted to their
    declared types — given as ``{plugin: {key: value}}``, held as sorted
    ``(plugin, key, value)`` triples so that the object hashes and pickles (it travels
    to the parse workers). Options the user did not set are absent: a plugin reads
    one with :meth:`get` and its own default.

    ``extra``: free-form ``name -> str`` settings from library callers (the older
    mechanism; the command line fills only ``plugin_options``). Read with :meth:`option`.
    """

    plugin_options: tuple[tuple[str, str, Any], ...]
    extra: Mapping[str, str]

    def __init__(
        self,
        *,
        plugin_options: Mapping[str, Mapping[str, Any]] | Iterable[tuple[str, str, Any]] = (),
        extra: Mapping[str, str] | None = None,
    ) -> None:
        object.__setattr__(self, "plugin_options", _sorted_values(plugin_options))
        object.__setattr__(self, "extra", dict(extra or {}))

    def get(self, plugin: str, key: str, default: Any = None) -> Any:
        """The value the user set for plugin ``plugin``'s option ``key``, or ``default``."""
        for name, option, value in self.plugin_options:
            if name == plugin and option == key:
                return value
        return default

    def for_plugin(self, plugin: str) -> dict[str, Any]:
        """Every option the user set for ``plugin``: ``{key: value}``."""
        return {key: value for name, key, value in self.plugin_options if name == plugin}

    def option(self, name: str, default: Any = None) -> Any:
        """``"plugin.key"``'s value: a declared option the user set, else ``extra[name]``."""
        plugin, dot, key = name.partition(".")
        if dot:
            missing = object()
            value = self.get(plugin, key, missing)
            if value is not missing:
                return value
        return self.extra.get(name, default)

    def __hash__(self) -> int:
        return hash((self.plugin_options, tuple(sorted(self.extra.items()))))


@dataclass(frozen=True, slots=True)
class PluginInfo:
    """What ``koito_import_describe`` returns: shown by ``koito-import plugins``.

    ``name`` is informative (the registered plugin name is the entry-point name);
    ``formats`` are human-readable format names; ``patterns`` are shell globs for file
    names this plugin usually reads — the host uses them only to break ties between
    plugins whose content detection is equally sure, and as a last resort when no
    plugin recognises the content. ``options`` declares the options the plugin takes
    (``koito-import run -o NAME.KEY=VALUE``): a key not declared here is a usage error.
    """

    name: str
    formats: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()
    options: tuple[OptionSpec, ...] = ()

    def __post_init__(self) -> None:
        options = tuple(OptionSpec.coerce(o) for o in self.options)
        if len({o.name for o in options}) != len(options):
            raise ValueError(f"plugin {self.name!r} declares an option twice")
        object.__setattr__(self, "options", options)

    def option_spec(self, key: str) -> OptionSpec | None:
        """The declared option ``key``, or None."""
        return next((o for o in self.options if o.name == key), None)

    @classmethod
    def coerce(cls, value: PluginInfo | Mapping[str, Any], default_name: str) -> PluginInfo:
        """Accept a PluginInfo or a plain dict (what a third-party plugin may return)."""
        if isinstance(value, PluginInfo):
            return value
        return cls(
            name=str(value.get("name") or default_name),
            formats=tuple(str(f) for f in value.get("formats") or ()),
            patterns=tuple(str(p) for p in value.get("patterns") or ()),
            options=tuple(value.get("options") or ()),
        )
