"""What an importer plugin yields besides listens, what it is told, and shared field helpers.

A plugin's ``koito_import_parse`` yields :class:`~koito_import.listen.Listen` records
and, for every input item it cannot turn into a listen, a :class:`Skip` — so that the
summary can say how many items were read and why some were left out, and so that one
bad item never stops an import. :class:`ParseOptions` carries the user's choices that
change *parsing* (not matching). :class:`PluginInfo` is what ``koito_import_describe``
returns.

The helpers at the end reproduce the Go behaviour Koito's importers rely on, so that
every plugin (built-in or third-party) reads fields exactly as Koito does:
:func:`parse_go_uuid` (``github.com/google/uuid``'s ``Parse``), :func:`mbid` (the same,
with "none" and the nil UUID both mapped to ``""``), the ``go_*`` readers (a JSON
member decoded into a typed Go struct field: null means zero, a wrong type is an error)
and Go's integer arithmetic (:func:`trunc_div`, :func:`int32_wrap`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "NIL_UUID",
    "ParseOptions",
    "PluginInfo",
    "Skip",
    "WrongType",
    "go_bool",
    "go_int",
    "go_list",
    "go_object",
    "go_str",
    "go_str_list",
    "int32_wrap",
    "mbid",
    "parse_go_uuid",
    "trunc_div",
]

NIL_UUID = "00000000-0000-0000-0000-000000000000"


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


@dataclass(frozen=True, slots=True)
class ParseOptions:
    """User choices that change how a file is read (never how listens are matched).

    ``spotify_min_ms``: ``None`` keeps Koito's rule for Spotify's extended history
    (only plays that ended with ``reason_end == "trackdone"``) and a 30-second minimum
    for the older account-data history, which has no ``reason_end``. A number keeps
    every play of at least that many milliseconds instead, whatever ``reason_end`` says
    (the "counts after 30 seconds" rule asked for in Koito issue #205).

    ``extra``: free-form ``name -> value`` settings for third-party plugins, so a plugin
    can take an option without a change here; read them with :meth:`option`. Names are
    best prefixed with the plugin's name (``"rockbox.timezone"``).
    """

    spotify_min_ms: int | None = None
    extra: Mapping[str, str] = field(default_factory=dict)

    def option(self, name: str, default: str | None = None) -> str | None:
        """The value of a plugin-specific option from ``extra``, or ``default``."""
        return self.extra.get(name, default)

    def __hash__(self) -> int:
        return hash((self.spotify_min_ms, tuple(sorted(self.extra.items()))))


@dataclass(frozen=True, slots=True)
class PluginInfo:
    """What ``koito_import_describe`` returns: shown by ``koito-import plugins``.

    ``name`` is informative (the registered plugin name is the entry-point name);
    ``formats`` are human-readable format names; ``patterns`` are shell globs for file
    names this plugin usually reads — the host uses them only to break ties between
    plugins whose content detection is equally sure, and as a last resort when no
    plugin recognises the content.
    """

    name: str
    formats: tuple[str, ...] = ()
    patterns: tuple[str, ...] = ()

    @classmethod
    def coerce(cls, value: PluginInfo | Mapping[str, Any], default_name: str) -> PluginInfo:
        """Accept a PluginInfo or a plain dict (what a third-party plugin may return)."""
        if isinstance(value, PluginInfo):
            return value
        return cls(
            name=str(value.get("name") or default_name),
            formats=tuple(str(f) for f in value.get("formats") or ()),
            patterns=tuple(str(p) for p in value.get("patterns") or ()),
        )


# --- Go-compatible field helpers -------------------------------------------------------

_HEX36 = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z"
)
_HEX32 = re.compile(rb"[0-9a-fA-F]{32}\Z")
_HEX36_BYTES = re.compile(
    rb"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
)


def _canonical(hex32: bytes | str) -> str:
    h = hex32.decode("ascii") if isinstance(hex32, bytes) else hex32
    h = h.lower()
    return f"{h[0:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:32]}"


def parse_go_uuid(value: object) -> str | None:
    """Parse like Go's ``uuid.Parse``: the canonical lower-case form, or None if invalid.

    Go accepts exactly four spellings, judged by the length in bytes: 36
    (``xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx``), 38 (the same inside any one character on
    each side — Go does not check that they are braces), 45 (``urn:uuid:`` in any case,
    then the 36 form) and 32 (bare hex). No trimming. The nil UUID parses (to
    :data:`NIL_UUID`); callers decide what it means.
    """
    if not isinstance(value, str):
        return None
    if len(value) == 36 and value.isascii():
        # The common case, without the encode.
        return value.lower() if _HEX36.match(value) else None
    raw = value.encode("utf-8", "surrogatepass")
    n = len(raw)
    if n == 36:
        body = raw
    elif n == 45:
        if raw[:9].lower() != b"urn:uuid:":
            return None
        body = raw[9:]
    elif n == 38:
        body = raw[1:37]
    elif n == 32:
        return _canonical(raw) if _HEX32.match(raw) else None
    else:
        return None
    if not _HEX36_BYTES.match(body):
        return None
    return _canonical(body.replace(b"-", b""))


def mbid(value: object) -> str:
    """An MBID as :class:`~koito_import.listen.Listen` stores it: ``""`` for none/invalid/nil."""
    parsed = parse_go_uuid(value)
    return "" if parsed is None or parsed == NIL_UUID else parsed


# --- Go-typed JSON fields --------------------------------------------------------------
#
# Koito decodes each export into Go structs. A JSON null or a missing member leaves a
# field at its zero value ("" / 0 / false / empty); a value of the wrong JSON type is an
# error (Go's json.Unmarshal does not convert "123" to 123, nor 1.0 to an int). These
# readers reproduce that for one parsed item, raising WrongType so that the plugin can
# skip just that item.


class WrongType(ValueError):
    """A field's JSON type is not what Koito's Go struct declares; ``field`` names it."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


def go_str(obj: Mapping[str, Any], key: str, field: str | None = None) -> str:
    """A Go ``string`` field: ``""`` when missing or null."""
    value = obj.get(key)
    if value is None:
        return ""
    if type(value) is str:
        return value
    raise WrongType(field or key)


def go_int(obj: Mapping[str, Any], key: str, field: str | None = None, bits: int = 64) -> int:
    """A Go ``int32``/``int64`` field: 0 when missing or null; a float or overflow is wrong."""
    value = obj.get(key)
    if value is None:
        return 0
    if type(value) is int and -(1 << (bits - 1)) <= value < (1 << (bits - 1)):
        return value
    raise WrongType(field or key)


def go_bool(obj: Mapping[str, Any], key: str, field: str | None = None) -> bool:
    """A Go ``bool`` field: False when missing or null."""
    value = obj.get(key)
    if value is None:
        return False
    if type(value) is bool:
        return value
    raise WrongType(field or key)


def go_object(obj: Mapping[str, Any], key: str, field: str | None = None) -> Mapping[str, Any]:
    """A Go struct field: an empty mapping when missing or null."""
    value = obj.get(key)
    if value is None:
        return {}
    if type(value) is dict:
        return value
    raise WrongType(field or key)


def go_list(obj: Mapping[str, Any], key: str, field: str | None = None) -> list[Any]:
    """A Go slice field: an empty list when missing or null."""
    value = obj.get(key)
    if value is None:
        return []
    if type(value) is list:
        return value
    raise WrongType(field or key)


def go_str_list(obj: Mapping[str, Any], key: str, field: str | None = None) -> list[str]:
    """A Go ``[]string`` field; a null element is ``""`` (Go leaves it at its zero value)."""
    values = go_list(obj, key, field)
    if all(type(v) is str for v in values):
        return values
    out = []
    for v in values:
        if v is None:
            out.append("")
        elif type(v) is str:
            out.append(v)
        else:
            raise WrongType(field or key)
    return out


def trunc_div(a: int, b: int) -> int:
    """Integer division truncating toward zero, as Go's ``/`` on integers does."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def int32_wrap(value: int) -> int:
    """Go's ``int32(x)`` conversion of a wider integer (wraps around)."""
    return ((value + (1 << 31)) % (1 << 32)) - (1 << 31)
