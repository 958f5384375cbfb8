"""Timestamps as Koito's Go code reads them, to whole Unix seconds.

Python's own parsers accept more than Go does (``datetime.fromisoformat`` takes a space
for the ``T``, ``strptime`` one-digit days and the locale's month names, ``int()``
whitespace and underscores). A listen that Koito would drop must not be imported, and
one it keeps must land on the same second, so each format's rule is spelled out here:

- :func:`parse_rfc3339`: Go's ``time.Time`` JSON decoding (Spotify ``ts``, Koito
  ``listened_at``): ``YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)``, fields range-checked
  (no leap second, day within the month), fraction truncated — Koito truncates to the
  second, which for any offset is the floor of the Unix time.
- :func:`parse_go_int`: ``strconv.ParseInt(s, 10, 64)`` (Last.fm ``uts``).
- :func:`parse_lastfm_text`: ``time.Parse("02 Jan 2006, 15:04", s)`` in UTC.
- :func:`parse_spotify_end_time`: Spotify's account-data ``endTime``
  (``YYYY-MM-DD HH:MM``, UTC) — not a Koito format; seconds are accepted too.

Each returns ``None`` when the text is not a valid time, never raises.
"""

from __future__ import annotations

import re

__all__ = [
    "parse_go_int",
    "parse_lastfm_text",
    "parse_rfc3339",
    "parse_spotify_end_time",
    "unix_seconds",
]

_INT64_MIN = -(2**63)
_INT64_MAX = 2**63 - 1

_MONTHS = {
    name: i
    for i, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}

# ASCII digits only: Python's \d would also take other scripts' digits.
_RFC3339 = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.[0-9]+)?(?:(Z)|([+-])([0-9]{2}):([0-9]{2}))\Z"
)
_GO_INT = re.compile(r"[+-]?[0-9]+\Z")
_LASTFM = re.compile(r"([0-9]{2}) ([A-Za-z]{3}) ([0-9]{4}), ([0-9]{1,2}):([0-9]{2})\Z")
_SPOTIFY_END = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2}) ([0-9]{2}):([0-9]{2})(?::([0-9]{2}))?\Z"
)


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _days_in(month: int, year: int) -> int:
    if month == 2:
        return 29 if _is_leap(year) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def _days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (any year, including 0)."""
    year -= month <= 2
    era = (year if year >= 0 else year - 399) // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def unix_seconds(
    year: int, month: int, day: int, hour: int, minute: int, second: int
) -> int | None:
    """Unix seconds of a UTC date and time, or None when a field is out of range."""
    if not (1 <= month <= 12 and 1 <= day <= _days_in(month, year)):
        return None
    if not (0 <= hour <= 23 and 0 <= minute <= 59 and 0 <= second <= 59):
        return None
    return _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second


def parse_rfc3339(text: object) -> int | None:
    """Go's strict RFC 3339 (``time.Time.UnmarshalJSON``) to Unix seconds, fraction dropped."""
    if not isinstance(text, str):
        return None
    m = _RFC3339.match(text)
    if m is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in m.group(1, 2, 3, 4, 5, 6))
    seconds = unix_seconds(year, month, day, hour, minute, second)
    if seconds is None:
        return None
    if m.group(7) is None:
        off_h, off_m = int(m.group(9)), int(m.group(10))
        if off_h > 23 or off_m > 59:
            return None
        offset = off_h * 3600 + off_m * 60
        seconds -= offset if m.group(8) == "+" else -offset
    return seconds


def parse_go_int(text: object) -> int | None:
    """``strconv.ParseInt(text, 10, 64)``: optional sign, ASCII digits, int64 range."""
    if not isinstance(text, str) or _GO_INT.match(text) is None:
        return None
    value = int(text)
    return value if _INT64_MIN <= value <= _INT64_MAX else None


def parse_lastfm_text(text: object) -> int | None:
    """Go's ``time.Parse("02 Jan 2006, 15:04", text)`` (UTC) to Unix seconds.

    Two-digit day and minute, one- or two-digit hour, four-digit year, an English month
    abbreviation in any letter case (Go matches month names case-insensitively).
    """
    if not isinstance(text, str):
        return None
    m = _LASTFM.match(text)
    if m is None:
        return None
    month = _MONTHS.get(m.group(2).lower())
    if month is None:
        return None
    day, year, hour, minute = (int(g) for g in m.group(1, 3, 4, 5))
    return unix_seconds(year, month, day, hour, minute, 0)


def parse_spotify_end_time(text: object) -> int | None:
    """Spotify account-data ``endTime`` (``2023-01-31 18:04``, UTC) to Unix seconds."""
    if not isinstance(text, str):
        return None
    m = _SPOTIFY_END.match(text)
    if m is None:
        return None
    year, month, day, hour, minute = (int(g) for g in m.group(1, 2, 3, 4, 5))
    second = int(m.group(6)) if m.group(6) else 0
    return unix_seconds(year, month, day, hour, minute, second)
