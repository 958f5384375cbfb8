"""Per-listen normalization and the lookup key: the pure-Python implementation.

This module and the compiled ``_normalize_c`` give identical results (a hypothesis test
proves it); ``koito_import._normalize`` picks one. Everything here is format-independent
and runs once per listen, so it is the import's hot path.

What Koito does and we mirror: track and album titles are kept verbatim (Koito never
trims them: " Live " and "Live" are two albums); everything is matched case-sensitively;
"feat." parsing and the artist separators follow Koito's ParseArtists; "already in the
list" checks use Go's ``strings.EqualFold``. Artist names are trimmed (Go's TrimSpace)
before matching: Koito trims them when it saves an artist but looks them up untrimmed,
so it would create a new artist on every padded listen; we do not reproduce that.

What we add, because a database must never be corrupted by one bad item: NUL bytes
(PostgreSQL text cannot hold them) are removed, lone UTF-16 surrogates become U+FFFD,
and a name or title longer than ``MAX_FIELD_CHARS`` skips the listen (PostgreSQL's
b-tree on the alias columns cannot index such a value, so Koito itself would fail).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence

from koito_import.errors import InvalidListen
from koito_import.listen import EntityRecord, KoitoEntities, Listen
from koito_import.textfold import equal_fold

#: Longest name or title accepted; 4 bytes a character still fits PostgreSQL's index rows.
MAX_FIELD_CHARS = 600

#: The listen times both databases hold alike (0001-01-01 .. 9999-12-31 UTC, unix
#: seconds): PostgreSQL's timestamptz and Go's time both cover them, SQLite's integer
#: covers far more. A time outside is skipped (``bad_timestamp``) on either backend.
MIN_TIME = -62135596800
MAX_TIME = 253402300799

#: Go's regexp ``\s`` is ASCII-only; Python's is Unicode. Spell it out.
_GO_SPACE = r"[\t\n\f\r ]"

#: Koito's default artist separator (``KOITO_ARTIST_SEPARATORS_REGEX`` replaces it).
DEFAULT_SEPARATORS: tuple[str, ...] = (_GO_SPACE + r"+·" + _GO_SPACE + r"+",)

_BRACKET_FEAT = (
    re.compile(r"(?i)\([fF]eat\. ([^)]*)\)"),
    re.compile(r"(?i)\[[fF]eat\. ([^\]]*)\]"),
)
# Go's ``$`` (no multi-line flag) is the end of the text; Python's also matches before a
# final newline, so use ``\Z``.
_INLINE_FEAT = re.compile(r"(?i)[fF]eat\. ([^()\[\]]+)\Z")
_FEAT_SPLIT = re.compile(r"(?i)" + _GO_SPACE + r"*(?:,|&|and|·)" + _GO_SPACE + r"*")

#: Characters Go's unicode.IsSpace accepts; str.strip() also strips \x1c-\x1f, Go does not.
_GO_TRIM = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007"
    "\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)


def compile_separators(patterns: Sequence[str]) -> tuple[re.Pattern[str], ...]:
    """Compile artist-separator regexes (Koito's ``;;``-separated list, already split)."""
    return tuple(re.compile(p) for p in patterns)


def storable(value: str) -> str:
    """The text as both databases can store it: lone surrogates replaced, NULs removed."""
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            value = value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if "\x00" in value:
        value = value.replace("\x00", "")
    return value


def clean(value: str) -> str:
    """Trim like Go's TrimSpace and make the text storable in both databases."""
    return storable(value).strip(_GO_TRIM)


def _split_go(pattern: re.Pattern[str], text: str) -> list[str]:
    """``regexp.Split(text, -1)`` with Go's semantics (capture groups are not returned)."""
    if not text:
        return [""]
    out: list[str] = []
    beg = end = 0
    prev_end = -1
    for m in pattern.finditer(text):
        start, stop = m.span()
        if start == stop and start == prev_end:
            continue  # Go ignores an empty match right after the previous match
        prev_end = stop
        end = start
        if stop != 0:
            out.append(text[beg:end])
        beg = stop
    if end != len(text):
        out.append(text[beg:])
    return out


def parse_artists(artist: str, title: str, separators: Sequence[re.Pattern[str]]) -> list[str]:
    """Koito's ParseArtists: featured artists from the artist string and the title.

    Featured names come first, then the artist string split by the separators (or whole
    when no separator matched), then names featured in the title; exact duplicates and
    blank names are dropped.
    """
    seen: set[str] = set()
    out: list[str] = []

    def add(name: str) -> None:
        name = name.strip(_GO_TRIM)
        if name and name not in seen:
            seen.add(name)
            out.append(name)

    def add_feat(text: str) -> None:
        for name in _split_go(_FEAT_SPLIT, text):
            add(name)

    for pattern in _BRACKET_FEAT:
        m = pattern.search(artist)
        if m:
            artist = artist.replace(m.group(0), "", 1)
            add_feat(m.group(1))
    m = _INLINE_FEAT.search(artist)
    if m:
        artist = artist.replace(m.group(0), "", 1)
        add_feat(m.group(1))

    before = len(out)
    for sep in separators:
        for name in _split_go(sep, artist):
            if name != artist:
                add(name)
    if len(out) == before:
        add(artist)

    for pattern in _BRACKET_FEAT:
        m = pattern.search(title)
        if m:
            add_feat(m.group(1))
    m = _INLINE_FEAT.search(title)
    if m:
        add_feat(m.group(1))
    return out


def _limited(value: str, trim: bool) -> str:
    value = clean(value) if trim else storable(value)
    if len(value) > MAX_FIELD_CHARS:
        raise InvalidListen("field_too_long")
    return value


def _checked(value: str) -> str:
    """A name: storable, trimmed, length-checked."""
    return _limited(value, True)


def _verbatim(value: str) -> str:
    """A title: storable, length-checked, never trimmed."""
    return _limited(value, False)


#: How ``_entity`` treats a Koito-export record, by kind.
ARTIST, ALBUM, TRACK = 0, 1, 2


def _entity(record: EntityRecord, kind: int) -> EntityRecord:
    """An artist's name is trimmed, an album's or track's title kept as it is.

    Other aliases are trimmed (Koito trims them when saving). A blank one is dropped,
    except for an album, where it stays as "": Koito saves an album's aliases in one
    transaction that a blank alias fails, so such an album gets none of them (catalog
    ``album_alias_rows``). For artists and tracks Koito would abort the whole import.
    """
    checked = (_checked(x) for x in record.aliases)
    aliases = tuple(checked) if kind == ALBUM else tuple(a for a in checked if a)
    name = _checked(record.name) if kind == ARTIST else _verbatim(record.name)
    return EntityRecord(name, aliases, record.mbid, record.image_url)


def prepare(listen: Listen) -> Listen:
    """Validate one listen, trimming its artist names; raise InvalidListen(reason) when
    it cannot be imported.

    Koito refuses a listen without artist or title; a name that is blank after trimming
    is dropped from the name lists (Koito would fail the whole import on it). Titles
    are kept as they are (only made storable).
    """
    artist = _checked(listen.artist)
    title = _verbatim(listen.title)
    if not artist:
        raise InvalidListen("missing_artist")
    if not title:
        raise InvalidListen("missing_title")
    names = tuple(n for n in (_checked(x) for x in listen.artist_names) if n)
    mappings = tuple(
        (name, mbid) for name, mbid in ((_checked(n), m) for n, m in listen.mbid_mappings) if name
    )
    entities = listen.entities
    if entities is not None:
        if not entities.artists:
            raise InvalidListen("missing_artist")
        artists = tuple(_entity(a, ARTIST) for a in entities.artists)
        if not all(a.name for a in artists):
            raise InvalidListen("missing_primary_alias")
        album = _entity(entities.album, ALBUM)
        track = _entity(entities.track, TRACK)
        if not album.name or not track.name:
            raise InvalidListen("missing_primary_alias")
        entities = KoitoEntities(artists, album, track, entities.various_artists)
    return Listen(
        artist=artist,
        title=title,
        time=_time(listen.time),
        artist_names=names,
        album=_verbatim(listen.album),
        artist_mbids=listen.artist_mbids,
        mbid_mappings=mappings,
        release_mbid=listen.release_mbid,
        recording_mbid=listen.recording_mbid,
        duration=max(int(listen.duration), 0),
        client=clean(listen.client),
        entities=entities,
    )


def _time(value: int) -> int:
    time = int(value)
    if not MIN_TIME <= time <= MAX_TIME:
        raise InvalidListen("bad_timestamp")
    return time


def _field(parts: list[str], value: str) -> None:
    parts.append(str(len(value)))
    parts.append(":")
    parts.append(value)


def lookup_key(listen: Listen, salt: str = "") -> str:
    """A fixed-size, storable key covering everything the match of a prepared listen uses.

    Length-prefixed fields make it unambiguous; no case folding (Koito matches names
    case-sensitively). ``salt`` carries settings that change matching (the artist
    separators), so a cache row never serves a run configured differently. Whether the
    listen carries a duration is part of the key because it decides the duration fill.
    """
    parts: list[str] = []
    _field(parts, salt)
    entities = listen.entities
    if entities is None:
        parts.append("S")
        _field(parts, listen.artist)
        _field(parts, listen.title)
        _field(parts, listen.album)
        parts.append(str(len(listen.artist_names)))
        for name in listen.artist_names:
            _field(parts, name)
        parts.append(str(len(listen.artist_mbids)))
        for mbid in listen.artist_mbids:
            _field(parts, mbid)
        parts.append(str(len(listen.mbid_mappings)))
        for name, mbid in listen.mbid_mappings:
            _field(parts, name)
            _field(parts, mbid)
        _field(parts, listen.release_mbid)
        _field(parts, listen.recording_mbid)
        parts.append("D" if listen.duration > 0 else "-")
    else:
        parts.append("K")
        parts.append(str(len(entities.artists)))
        for record in (*entities.artists, entities.album, entities.track):
            _field(parts, record.name)
            _field(parts, record.mbid)
    data = "".join(parts).encode("utf-8")
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def normalize_batch(
    listens: list[Listen], salt: str
) -> tuple[list[Listen], list[str], list[tuple[int, str]]]:
    """prepare() and lookup_key() for a whole batch, in one call (the bulk path).

    Returns the prepared listens, their lookup keys (same order) and, for each listen
    prepare() rejected, its index in ``listens`` and the InvalidListen reason.
    """
    prepared: list[Listen] = []
    keys: list[str] = []
    rejected: list[tuple[int, str]] = []
    for index, listen in enumerate(listens):
        try:
            result = prepare(listen)
        except InvalidListen as exc:
            rejected.append((index, exc.reason))
            continue
        prepared.append(result)
        keys.append(lookup_key(result, salt))
    return prepared, keys, rejected


class ListenMap:
    """(track id, second) -> an int: the listens a bulk run wrote, and which key wrote them.

    A run of a million listens keeps one entry per listen to its end, so the compiled
    twin stores them in flat arrays (~40 bytes an entry instead of ~130 in a dict of
    ints); this twin is the plain dict it replaces. Both take int64 values only.
    """

    __slots__ = ("_d",)

    def __init__(self) -> None:
        self._d: dict[tuple[int, int], int] = {}

    def get(self, track: int, time: int) -> int | None:
        """The value stored for (track, time), or None."""
        return self._d.get((_int64(track), _int64(time)))

    def set(self, track: int, time: int, value: int) -> None:
        """Store (or replace) the value of (track, time)."""
        self._d[(_int64(track), _int64(time))] = _int64(value)

    def reserve(self, count: int) -> None:
        """Make room for ``count`` entries (the compiled twin's arrays; a dict grows as
        it goes)."""

    def __len__(self) -> int:
        return len(self._d)


def _int64(value: int) -> int:
    """The compiled twin's C int64 conversion, with its errors."""
    if not isinstance(value, int):
        raise TypeError(f"an integer is required, not {type(value).__name__}")
    if not -(2**63) <= value < 2**63:
        raise OverflowError("Python int too large to convert to C long")
    return int(value)


__all__ = [
    "DEFAULT_SEPARATORS",
    "MAX_FIELD_CHARS",
    "MAX_TIME",
    "MIN_TIME",
    "ListenMap",
    "clean",
    "compile_separators",
    "equal_fold",
    "lookup_key",
    "normalize_batch",
    "parse_artists",
    "prepare",
    "storable",
]
