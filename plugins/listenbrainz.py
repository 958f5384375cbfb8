"""ListenBrainz listens: the zip export, bare JSON Lines, and the older JSON-array export.

The zip from listenbrainz.org/settings/export holds ``user.json`` and
``listens/<year>/<month>.jsonl``; Koito reads the members whose name starts with
``listens/`` and ends with ``.jsonl``, in the order the zip lists them (its central
directory — not sorted by name), and so do we. The same listen objects also come as a
bare ``.jsonl`` file or, in older exports, as one JSON array.

A listen is ``{"listened_at": unix, "track_metadata": {"artist_name", "track_name",
"release_name", "mbid_mapping": {...} | null, "additional_info": {...}}}``. As Koito's
``ImportListenBrainzFile`` does:

- artist string = ``artist_name``; artist names = ``additional_info.artist_names``;
- artist MBIDs = the valid UUIDs of ``additional_info.artist_mbids`` (invalid ones
  dropped, a nil UUID kept as ``""``). Koito means to fall back to
  ``mbid_mapping.artist_mbids`` when that list is empty but discards the result (its
  return value is never assigned), so the fallback never happens — and does not here;
- release MBID = ``additional_info.release_mbid`` when it parses, else
  ``mbid_mapping.release_mbid``; recording MBID likewise (a *valid* nil UUID in
  additional_info stops the fallback, as in Go);
- (artist, MBID) mappings from ``mbid_mapping.artists`` (``artist_credit_name``,
  ``artist_mbid``), skipping entries where either is empty; an MBID that does not parse
  still gives a mapping, with ``""`` (Go appends uuid.Nil after logging the error);
- duration = ``additional_info.duration`` when not 0, else ``duration_ms / 1000``
  (truncated);
- client = ``media_player``, else ``submission_client``, else ``""``;
- a line that is not JSON, or whose fields do not have the JSON types of Koito's Go
  struct, is skipped (Go's ``json.Unmarshal`` fails and Koito skips the line):
  ``invalid_json``, ``not_an_object``, ``wrong_type``.

Where we differ: Koito gives a listen without artist or title to SubmitListen, which
fails and aborts the rest of that member file; we skip just the listen
(``missing_artist`` / ``missing_title``). A listen with no ``listened_at`` is skipped
(``bad_timestamp``) instead of imported at 1970-01-01. Koito's line scanner stops at a
line over 64 KiB and silently ignores the rest of the member; we read on.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from koito_import.errors import InputError
from koito_import.hookspecs import hookimpl
from koito_import.jsonstream import (
    ITEMS,
    BadLine,
    first_byte,
    iter_items,
    iter_jsonl,
    loads,
    open_input,
    peek_items,
    read_head,
)
from koito_import.listen import Listen
from koito_import.plugin_types import ParseOptions, PluginInfo, Skip
from koito_import.records import (
    NIL_UUID,
    WrongType,
    go_int,
    go_list,
    go_object,
    go_str,
    go_str_list,
    mbid,
    parse_go_uuid,
    trunc_div,
)

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
_INT64 = 1 << 63
#: What zipfile raises for a damaged, encrypted or unsupported member.
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError)


@hookimpl
def koito_import_describe() -> PluginInfo:
    """ListenBrainz's zip export and its listens as JSON Lines or a JSON array."""
    return PluginInfo(
        name="listenbrainz",
        formats=(
            "ListenBrainz export (zip)",
            "ListenBrainz listens (JSON Lines)",
            "ListenBrainz listens (JSON array, older exports)",
        ),
        patterns=("*listenbrainz*", "*.jsonl"),
    )


#: The keys of a ListenBrainz listen object that detection looks for.
_LISTEN_KEYS = frozenset(("listened_at", "track_metadata"))


def _looks_like_listen(item: Any) -> bool:
    return type(item) is dict and type(item.get("track_metadata")) is dict


def _is_listens_member(info: zipfile.ZipInfo) -> bool:
    name = info.filename
    return not info.is_dir() and name.startswith("listens/") and name.endswith(".jsonl")


#: How many JSON Lines objects at the top of the file detection looks at.
_DETECT_LINES = 3


def _first_objects(head: bytes) -> list[Any] | None:
    """The first few JSON values of a JSON Lines head, or None if the first is not JSON.

    A later line that does not parse (cut off by the end of ``head``, or damaged) ends
    the look: the lines before it decide.
    """
    lines = [line for line in head.lstrip(b"\xef\xbb\xbf").split(b"\n") if line.strip()]
    values = []
    for number, line in enumerate(lines[:_DETECT_LINES]):
        try:
            values.append(loads(line))
        except ValueError:
            if number == 0:
                return None
            break  # a cut or damaged later line: judge by the ones before it
    return values


def _jsonl_confidence(head: bytes) -> int | None:
    """100/90 for a listen per line; 0 for JSON Lines of another shape; None: cannot tell.

    Another shape — objects with keys, but neither ``listened_at`` nor
    ``track_metadata``, such as Pano Scrobbler's ``{"timeMs", "artist", "track", ...}``
    — is 0, "not mine", so that the ``*.jsonl`` pattern does not make this plugin take a
    file of which it could read no listen. A first line that is not JSON, an empty
    object, or listen keys with the wrong types is None: a damaged export may still be
    ours by its name.
    """
    values = _first_objects(head)
    if not values:
        return None
    first = values[0]
    if _looks_like_listen(first):
        return 100 if "listened_at" in first else 90
    if all(type(v) is dict and v and not _LISTEN_KEYS & v.keys() for v in values):
        return 0
    return None


@hookimpl
def koito_import_detect(path: Path, head: bytes) -> int | None:
    """100 for a zip with listens/*.jsonl members or a listen per line, 95 for an array.

    0 (not mine, whatever the name) for JSON Lines whose objects are not listens.
    """
    if head.startswith(_ZIP_MAGIC):
        try:
            with zipfile.ZipFile(path) as zf:
                infos = zf.infolist()
        except (zipfile.BadZipFile, OSError):
            return None
        if any(_is_listens_member(info) for info in infos):
            return 100
        return 50 if any(info.filename == "user.json" for info in infos) else None
    c = first_byte(head)
    if c == ord("{"):
        return _jsonl_confidence(head)
    if c == ord("["):
        items = peek_items(head, (ITEMS,))
        if items and _looks_like_listen(items[0]):
            return 95 if "listened_at" in items[0] else 85
    return None


def _uuid_or_fallback(first: str, second: str) -> str:
    """Go: ``uuid.Parse(first)``, on error ``uuid.Parse(second)``, on error uuid.Nil."""
    parsed = parse_go_uuid(first)
    if parsed is None:
        parsed = parse_go_uuid(second)
    return "" if parsed is None or parsed == NIL_UUID else parsed


def _mappings(artists: list[Any]) -> tuple[tuple[str, str], ...]:
    out = []
    for entry in artists:
        if entry is None:
            continue
        if type(entry) is not dict:
            raise WrongType("track_metadata.mbid_mapping.artists")
        artist_mbid = go_str(entry, "artist_mbid", "track_metadata.mbid_mapping.artists")
        name = go_str(entry, "artist_credit_name", "track_metadata.mbid_mapping.artists")
        if artist_mbid == "" or name == "":
            continue
        out.append((name, mbid(artist_mbid)))
    return tuple(out)


def listen_to_listen(item: Any, where: str) -> Listen | Skip:
    """One ListenBrainz listen object as a Listen, or the Skip saying why it is not one."""
    if type(item) is not dict:
        return Skip("not_an_object", where, raw=item)
    try:
        meta = go_object(item, "track_metadata")
        artist = go_str(meta, "artist_name", "track_metadata.artist_name")
        title = go_str(meta, "track_name", "track_metadata.track_name")
        release = go_str(meta, "release_name", "track_metadata.release_name")
        mapping = go_object(meta, "mbid_mapping", "track_metadata.mbid_mapping")
        mapped_release = go_str(mapping, "release_mbid", "track_metadata.mbid_mapping.release_mbid")
        mapped_recording = go_str(
            mapping, "recording_mbid", "track_metadata.mbid_mapping.recording_mbid"
        )
        go_str_list(mapping, "artist_mbids", "track_metadata.mbid_mapping.artist_mbids")
        mappings = _mappings(go_list(mapping, "artists", "track_metadata.mbid_mapping.artists"))
        info = go_object(meta, "additional_info", "track_metadata.additional_info")
        fields = _additional_info(info)
    except WrongType as exc:
        return Skip("wrong_type", f"{where} ({exc.field})", raw=item)
    listened_at = item.get("listened_at")
    if type(listened_at) is not int or not -_INT64 <= listened_at < _INT64:
        return Skip("bad_timestamp", f"{where} (listened_at)", raw=item)
    if artist == "":
        return Skip("missing_artist", where, raw=item)
    if title == "":
        return Skip("missing_title", where, raw=item)
    artist_mbids = []
    for text in fields["artist_mbids"]:
        parsed = parse_go_uuid(text)
        if parsed is not None:
            artist_mbids.append("" if parsed == NIL_UUID else parsed)
    duration = fields["duration"]
    if duration == 0:
        duration = trunc_div(fields["duration_ms"], 1000)
    return Listen(
        artist=artist,
        title=title,
        time=listened_at,
        artist_names=tuple(fields["artist_names"]),
        album=release,
        artist_mbids=tuple(artist_mbids),
        mbid_mappings=mappings,
        release_mbid=_uuid_or_fallback(fields["release_mbid"], mapped_release),
        recording_mbid=_uuid_or_fallback(fields["recording_mbid"], mapped_recording),
        duration=duration,
        client=fields["media_player"] or fields["submission_client"],
    )


def _additional_info(info: Mapping[str, Any]) -> dict[str, Any]:
    """Read (and type-check, as Go's decoder does) the additional_info fields Koito declares."""
    p = "track_metadata.additional_info."
    fields: dict[str, Any] = {}
    for key in ("media_player", "submission_client", "release_mbid", "recording_mbid"):
        fields[key] = go_str(info, key, p + key)
    for key in ("submission_client_version", "release_group_mbid", "albumartist"):
        go_str(info, key, p + key)
    for key in ("artist_mbids", "artist_names"):
        fields[key] = go_str_list(info, key, p + key)
    go_str_list(info, "tags", p + "tags")
    for key in ("duration", "duration_ms"):
        fields[key] = go_int(info, key, p + key, bits=32)
    return fields


def _parse_lines(fp: IO[bytes], label: str) -> Iterator[Listen | Skip]:
    prefix = f"{label} line" if label else "line"
    for lineno, value in iter_jsonl(fp, label):
        where = f"{prefix} {lineno}"
        if type(value) is BadLine:
            yield Skip("invalid_json", where, raw=value.text)
        else:
            yield listen_to_listen(value, where)


def _parse_zip(path: Path) -> Iterator[Listen | Skip]:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise InputError(str(path), "", f"not a valid zip file: {exc}") from None
    except OSError as exc:
        raise InputError(str(path), "", f"cannot be read: {exc.strerror or exc}") from None
    with zf:
        for info in zf.infolist():
            if not _is_listens_member(info):
                continue
            try:
                with zf.open(info) as member:
                    yield from _parse_lines(member, info.filename)
            except _ZIP_ERRORS as exc:
                raise InputError(str(path), info.filename, f"corrupt zip member: {exc}") from None


def _parse_jsonl(path: Path) -> Iterator[Listen | Skip]:
    with open_input(path) as fp:
        yield from _parse_lines(fp, "")


@hookimpl
def koito_import_parse(path: Path, options: ParseOptions) -> Iterator[Listen | Skip]:
    """Stream the listens of a zip export, a .jsonl file or a JSON array of listens."""
    head = read_head(path)
    if head.startswith(_ZIP_MAGIC):
        return _parse_zip(path)
    c = first_byte(head)
    if c == ord("["):
        return (
            listen_to_listen(item, f"item {number}") for number, item in iter_items(path, (ITEMS,))
        )
    if c not in (ord("{"), None):
        raise InputError(
            str(path), "", "not a ListenBrainz export: neither a zip, JSON Lines nor a JSON array"
        )
    return _parse_jsonl(path)
