"""Last.fm and Libre.fm scrobbles as CSV: benjaminbenben's lastfm-to-csv and Libre.fm's export.

**lastfm-to-csv** (benjaminbenben.com/lastfm-to-csv, the most used Last.fm CSV export)
writes no header, one ``artist,album,track,date`` row per scrobble, newest first, the
date as Last.fm's own text without its comma (``31 Jan 2021 16:49``, UTC, English month
abbreviations). It fetches the API's pages of 200 and writes each page whole, so the
track playing at export time heads every page with an empty date. It strips commas and
quotes from names, so its fields never hold either; names starting with ``#`` or ``+``
(``# Pepe Bradock``, ``+44``) are data, not comments. People often add the header
``artist,album,track,date`` themselves, which is read too.

**Libre.fm** writes a header, ``Artist,Track,Album,Time`` (note the order), and the time
as Unix seconds. Any header naming an ``artist``, a ``track`` (or ``title``) and a time
column (``uts``, ``time``, ``date`` or ``utc_time``; the first of them that holds a time
is used), in any letter case and order, maps the columns by name; other columns are
ignored, except ``album``, ``artist_mbid``, ``album_mbid`` and ``track_mbid``, which are
read (lastfm.ghan.nl's CSV: ``uts,utc_time,artist,artist_mbid,album,album_mbid,...``).
In a header-mapped file a time column may hold Unix seconds or a date text; without a
header the fourth field must be a date text (``31 Jan 2021 16:49`` or Last.fm's
``31 Jan 2021, 16:49``, two-digit day, one- or two-digit hour).

Every row becomes what the ``lastfm`` plugin makes of the same scrobble in the JSON
export: album title = the album, or the track name when that is empty (about a third of
lastfm-to-csv rows); the artist-MBID list is one entry, ``""`` (Go's uuid.Nil) unless an
``artist_mbid`` column gives one; client ``"lastfm"``. Names are passed through exactly
as the file holds them (combining marks too); trimming and checks come after parsing,
as for every format. Skips, each at ``"line N"`` (the row's first line) with the row's
text as ``raw``:

- ``missing_artist`` / ``missing_title``: an empty artist / track field;
- ``now_playing``: an empty date — the now-playing row (``bad_timestamp`` instead in a
  file with Libre.fm's ``Time`` column, which has no now-playing rows);
- ``bad_timestamp``: a time that does not parse;
- ``wrong_field_count``: a row with another number of fields than the header (4
  without one);
- ``invalid_csv``: a line the CSV rules cannot read — a quote opening a field that is
  not closed within :data:`MAX_RECORD_LINES` lines, or whose closing makes a row of the
  wrong width (only that line is skipped; reading goes on with the next one), or a line
  over :data:`MAX_LINE_BYTES` (``raw`` holds its first MiB).

The CSV rules are the standard ones (Python's ``csv`` module, Excel dialect): a field
may be quoted, ``""`` inside quotes is one quote, a quoted field may span lines (its
line breaks read as ``\\n``). Lines end with ``\\n`` or ``\\r\\n``; blank lines are
not rows. The text is UTF-8, with or without a BOM; invalid bytes become U+FFFD
silently, as in the JSON formats. The file is streamed line by line. An empty file is
refused (InputError), and so is a header-less one whose first :data:`CHECK_ROWS` rows
hold no dated ``artist,album,track,date`` row (unless every one of them is such a row
with an empty date).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from itertools import chain, islice
from pathlib import Path
from typing import IO, NamedTuple

from koito_import.errors import InputError
from koito_import.hookspecs import hookimpl
from koito_import.jsonstream import HEAD_BYTES, open_input
from koito_import.listen import Listen
from koito_import.plugin_types import ParseOptions, PluginInfo, Skip
from koito_import.records import mbid
from koito_import.timeparse import parse_go_int, unix_seconds

CLIENT = "lastfm"
#: A longer line is not a row (``invalid_csv``); it is not held in memory either.
MAX_LINE_BYTES = 1 << 20
#: The most lines one row's quoted field may span.
MAX_RECORD_LINES = 16
#: Rows detection looks at (all must fit).
DETECT_ROWS = 5
#: Rows the parser looks at for proof that a header-less file is this format.
CHECK_ROWS = 10

LIBREFM_HEADER = ("artist", "track", "album", "time")
_TRACK_NAMES = ("track", "title")
_TIME_NAMES = ("uts", "time", "date", "utc_time")
_BOM = b"\xef\xbb\xbf"
_NIL_MBIDS = ("",)
_MONTHS = {
    name: i
    for i, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
# ASCII digits only (Python's [0-9] in str patterns, unlike \d).
_DATE = re.compile(r"(([0-9]{2}) ([A-Za-z]{3}) ([0-9]{4})),? ([0-9]{1,2}):([0-9]{2})\Z")
#: Unix seconds of midnight of each date text seen (None: not a date); bounded.
_DAY_STARTS: dict[str, int | None] = {}
_DAY_STARTS_MAX = 1 << 16


@hookimpl
def koito_import_describe() -> PluginInfo:
    """Last.fm scrobbles from lastfm-to-csv, and Libre.fm's CSV export."""
    return PluginInfo(
        name="lastfm_csv",
        formats=(
            "Last.fm scrobbles (lastfm-to-csv CSV export)",
            "Libre.fm scrobbles (CSV export)",
        ),
        patterns=("*.csv",),
    )


# --- fields ------------------------------------------------------------------------------


def parse_date(text: str) -> int | None:
    """``31 Jan 2021 16:49`` (lastfm-to-csv) or ``31 Jan 2021, 16:49`` (Last.fm), UTC.

    Two-digit day and minute, one- or two-digit hour, an English month abbreviation in
    any letter case; surrounding white space is ignored.
    """
    m = _DATE.match(text)
    if m is None:
        stripped = text.strip()
        if stripped == text or (m := _DATE.match(stripped)) is None:
            return None
    day_text, day, month, year, hour, minute = m.groups()
    start = _DAY_STARTS.get(day_text, -1)  # -1: not seen (a midnight is a multiple of 86400)
    if start == -1:
        number = _MONTHS.get(month.lower())
        start = None if number is None else unix_seconds(int(year), number, int(day), 0, 0, 0)
        if len(_DAY_STARTS) >= _DAY_STARTS_MAX:
            _DAY_STARTS.clear()
        _DAY_STARTS[day_text] = start
    if start is None:
        return None
    h, mi = int(hour), int(minute)
    if h > 23 or mi > 59:
        return None
    return start + h * 3600 + mi * 60


def parse_time(text: str) -> int | None:
    """A header-mapped time column: Unix seconds (Go's ParseInt) or a date text."""
    value = parse_go_int(text.strip())
    return parse_date(text) if value is None else value


class Layout(NamedTuple):
    """Where a file's rows keep each field (column indexes; -1 = no such column)."""

    width: int
    artist: int
    album: int
    track: int
    times: tuple[int, ...]
    artist_mbid: int = -1
    album_mbid: int = -1
    track_mbid: int = -1
    #: An empty time is the now-playing row (Last.fm), not a bad timestamp.
    now_playing: bool = True


#: lastfm-to-csv's header-less ``artist,album,track,date``.
HEADERLESS = Layout(4, 0, 1, 2, (3,))


def header_layout(fields: list[str]) -> Layout | None:
    """The layout a header row names, or None when the row is not a header we know."""
    names = [f.strip().lower() for f in fields]
    track = next((names.index(n) for n in _TRACK_NAMES if n in names), -1)
    times = tuple(names.index(n) for n in _TIME_NAMES if n in names)
    if "artist" not in names or track < 0 or not times:
        return None

    def column(name: str) -> int:
        return names.index(name) if name in names else -1

    return Layout(
        width=len(names),
        artist=names.index("artist"),
        album=column("album"),
        track=track,
        times=times,
        artist_mbid=column("artist_mbid"),
        album_mbid=column("album_mbid"),
        track_mbid=column("track_mbid"),
        now_playing="time" not in names,
    )


# --- rows --------------------------------------------------------------------------------


class _Lines:
    """A file's physical lines: ``(number, text without its line end, complete)``.

    ``complete`` is False for a line over :data:`MAX_LINE_BYTES`, whose text is then its
    first part (the rest is read past, not kept). Lines can be pushed back.
    """

    def __init__(self, fp: IO[bytes], name: str) -> None:
        self.fp = fp
        self.name = name
        self.number = 0
        self.back: list[tuple[int, str, bool]] = []

    def __iter__(self) -> _Lines:
        return self

    def _readline(self) -> bytes:
        try:
            return self.fp.readline(MAX_LINE_BYTES + 1)
        except OSError as exc:
            raise InputError(
                self.name, f"line {self.number + 1}", f"cannot be read: {exc.strerror or exc}"
            ) from None

    def __next__(self) -> tuple[int, str, bool]:
        if self.back:
            return self.back.pop()
        line = self._readline()
        if not line:
            raise StopIteration
        self.number += 1
        if self.number == 1 and line.startswith(_BOM):
            line = line[3:]
        complete = True
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            complete = False
            rest = line
            while rest and not rest.endswith(b"\n"):
                rest = self._readline()
            line = line[:MAX_LINE_BYTES]
        text = line.decode("utf-8", "replace")
        if text.endswith("\n"):
            text = text[:-1]
        if text.endswith("\r"):
            text = text[:-1]
        return self.number, text, complete


#: One row: (first line number, raw text, fields or None, Skip reason or "").
Row = tuple[int, str, list[str] | None, str]


class RowReader:
    """The CSV rows of a file, blank lines left out, in file order.

    A line without a quote is split on commas (what the csv module does with it); a line
    with one goes through the csv module, which reads on to the next lines while a quoted
    field is open. Such a row spanning lines is taken only when it has :attr:`width`
    fields (once the caller knows it): a stray quote must not swallow the rows after it.
    """

    def __init__(self, fp: IO[bytes], name: str) -> None:
        self.lines = _Lines(fp, name)
        #: How many fields a row has (0 = not known yet).
        self.width = 0

    def __iter__(self) -> Iterator[Row]:
        lines = self.lines
        for number, text, complete in lines:
            if not complete:
                yield number, text, None, "invalid_csv"
            elif '"' not in text:
                if text and not text.isspace():
                    yield number, text, text.split(","), ""
            else:
                yield self._quoted_row(number, text)

    def _quoted_row(self, number: int, text: str) -> Row:
        lines = self.lines
        taken: list[tuple[int, str, bool]] = []
        ran_out = False

        def feed() -> Iterator[str]:
            nonlocal ran_out
            yield text + "\n"
            while len(taken) < MAX_RECORD_LINES - 1:
                line = next(lines, None)
                if line is None:
                    break
                taken.append(line)
                if not line[2]:
                    break
                yield line[1] + "\n"
            ran_out = True

        try:
            fields = next(csv.reader(feed()), None)
        except csv.Error:
            fields = None
        if fields is None or ran_out or (taken and self.width and len(fields) != self.width):
            # Not a row the CSV rules can read: skip this line alone, read on from the next.
            lines.back.extend(reversed(taken))
            return number, text, None, "invalid_csv"
        return number, "\n".join([text, *(t for _n, t, _c in taken)]), fields, ""


def row_to_listen(layout: Layout, row: Row) -> Listen | Skip:
    """One CSV row as a Listen, or the Skip saying why it is not one."""
    number, raw, fields, problem = row
    if fields is None:
        return Skip(problem, f"line {number}", raw)
    if len(fields) != layout.width:
        return Skip("wrong_field_count", f"line {number}", raw)
    if layout is HEADERLESS:
        artist, album, title, date = fields
        artist_id = release_id = recording_id = ""
        time = parse_date(date)
        empty_time = time is None and not date.strip()
    else:
        artist = fields[layout.artist]
        title = fields[layout.track]
        album = fields[layout.album] if layout.album >= 0 else ""
        artist_id = mbid(fields[layout.artist_mbid]) if layout.artist_mbid >= 0 else ""
        release_id = mbid(fields[layout.album_mbid]) if layout.album_mbid >= 0 else ""
        recording_id = mbid(fields[layout.track_mbid]) if layout.track_mbid >= 0 else ""
        time = None
        for index in layout.times:
            time = parse_time(fields[index])
            if time is not None:
                break
        empty_time = time is None and all(not fields[i].strip() for i in layout.times)
    if album == "":
        album = title
    if artist == "":
        return Skip("missing_artist", f"line {number}", raw)
    if title == "":
        return Skip("missing_title", f"line {number}", raw)
    if time is None:
        reason = "now_playing" if empty_time and layout.now_playing else "bad_timestamp"
        return Skip(reason, f"line {number}", raw)
    return Listen(
        artist=artist,
        title=title,
        time=time,
        album=album,
        artist_mbids=(artist_id,) if artist_id else _NIL_MBIDS,
        mbid_mappings=((artist, artist_id),) if artist_id else (),
        release_mbid=release_id,
        recording_mbid=recording_id,
        client=CLIENT,
    )


def _fast(row: Row) -> Listen | None:
    """The common header-less row without the careful path's checks; None otherwise.

    Gives exactly what :func:`row_to_listen` gives for such a row (a test checks both
    on every fixture row); anything unusual takes the careful path.
    """
    fields = row[2]
    if fields is None or len(fields) != 4:
        return None
    artist, album, title, date = fields
    if not artist or not title:
        return None
    time = parse_date(date)
    if time is None:
        return None
    return Listen(artist, title, time, (), album or title, _NIL_MBIDS, (), "", "", 0, CLIENT)


def _fits_headerless(row: Row) -> bool:
    """A well-formed ``artist,album,track,date`` row whose date is a date or empty."""
    fields = row[2]
    if fields is None or len(fields) != 4:
        return False
    return not fields[3].strip() or parse_date(fields[3]) is not None


def _dated(row: Row) -> bool:
    fields = row[2]
    return fields is not None and len(fields) == 4 and parse_date(fields[3]) is not None


def _timed(layout: Layout, fields: list[str]) -> bool:
    return any(parse_time(fields[i]) is not None for i in layout.times)


# --- hooks -------------------------------------------------------------------------------


@hookimpl
def koito_import_detect(path: Path, head: bytes) -> int | None:
    """100 for Libre.fm's header, 90 for another known header or dated header-less rows."""
    if len(head) >= HEAD_BYTES:
        head = head[: head.rfind(b"\n") + 1]  # the last line may be cut
    reader = RowReader(io.BytesIO(head), "<head>")
    rows = iter(reader)
    first = next(rows, None)
    if first is None or first[2] is None:
        return None
    if tuple(f.strip().lower() for f in first[2]) == LIBREFM_HEADER:
        return 100
    layout = header_layout(first[2])
    if layout is not None:
        # Another header we can map: sure when the rows under it fit it.
        reader.width = layout.width
        sample = list(islice(rows, DETECT_ROWS - 1))
        if all(row[2] is not None and len(row[2]) == layout.width for row in sample) and (
            not sample or any(_timed(layout, row[2]) for row in sample if row[2] is not None)
        ):
            return 90
        return 50
    reader.width = HEADERLESS.width
    sample = [first, *islice(rows, DETECT_ROWS - 1)]
    if all(_fits_headerless(row) for row in sample) and any(_dated(row) for row in sample):
        return 90
    return None


def _parse(path: Path) -> Iterator[Listen | Skip]:
    name = str(path)
    with open_input(path) as fp:
        reader = RowReader(fp, name)
        rows = iter(reader)
        first = next(rows, None)
        if first is None:
            raise InputError(name, "", "is empty (no CSV rows in it)")
        layout = header_layout(first[2]) if first[2] is not None else None
        if layout is not None:
            reader.width = layout.width
            pending: list[Row] = []
        else:
            layout = HEADERLESS
            reader.width = layout.width
            pending = [first, *islice(rows, CHECK_ROWS - 1)]
            if not any(_dated(row) for row in pending) and not all(
                _fits_headerless(row) for row in pending
            ):
                raise InputError(
                    name,
                    f"line {first[0]}",
                    "not a Last.fm/Libre.fm CSV export: no header such as Artist,Track,Album,"
                    "Time, and no artist,album,track,date row dated like 31 Jan 2021 16:49 "
                    f"among the first {len(pending)} rows",
                )
        if layout == HEADERLESS:  # also a header naming lastfm-to-csv's columns
            for row in chain(pending, rows):
                yield _fast(row) or row_to_listen(layout, row)
        else:
            for row in chain(pending, rows):
                yield row_to_listen(layout, row)


@hookimpl
def koito_import_parse(path: Path, options: ParseOptions) -> Iterator[Listen | Skip]:
    """Stream the rows of a lastfm-to-csv or Libre.fm CSV file, in file order."""
    return _parse(path)
