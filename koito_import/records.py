"""Go-compatible field readers shared by importer plugins, and the old home of their types.

These helpers reproduce the Go behaviour Koito's importers rely on, so that every plugin
(built-in or third-party) reads fields exactly as Koito does: :func:`parse_go_uuid`
(``github.com/google/uuid``'s ``Parse``), :func:`mbid` (the same, with "none" and the nil
UUID both mapped to ``""``), the ``go_*`` readers (a JSON member decoded into a typed Go
struct field: null means zero, a wrong type is an error) and Go's integer arithmetic
(:func:`trunc_div`, :func:`int32_wrap`).

The plugin-facing types (:class:`~koito_import.plugin_types.Skip`,
:class:`~koito_import.plugin_types.ParseOptions`,
:class:`~koito_import.plugin_types.PluginInfo`,
:class:`~koito_import.plugin_types.OptionSpec`) live in :mod:`koito_import.plugin_types`;
they are re-exported here so that ``from koito_import.records import Skip`` keeps working.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from koito_import.plugin_types import OptionSpec, ParseOptions, PluginInfo, Skip

__all__ = [
    "NIL_UUID",
    "OptionSpec",
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
