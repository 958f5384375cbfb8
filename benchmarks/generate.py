"""A seeded generator of realistic listening-history exports, for benchmarks and tests.

    python -m benchmarks.generate --listens 49050 --format maloja --seed 1 -o out.json

The default shape is the reference workload's: 49,050 Maloja scrobbles over 5,589 artists, 2,628
albums and about 15,000 tracks. Other sizes scale the catalog like a real history grows
(1,000,000 listens: ~40k artists, ~20k albums, ~150k tracks, as in docs/write-floors.md)
unless ``--artists``/``--albums``/``--tracks`` say otherwise. What makes it realistic:

- Zipf popularity: a few artists and, within an artist, a few tracks get most listens;
- featured artists the way Maloja writes them (``["Feat", "Main • Feat"]``, several
  entries) and ``(feat. X)`` left in titles; artist names containing "&", "and", "·";
- albums that are null (a Maloja scrobble with ``"album": null``);
- Latin with accents, Japanese, Korean, Chinese, Cyrillic, Greek, some emoji; a few
  names padded with spaces;
- timestamps increasing over several years, a few exact duplicate scrobbles, and a few
  scrobbles a Koito import skips (blank title).

Formats (the file shapes of docs/koito.md): ``maloja``,
``listenbrainz-jsonl`` (bare JSONL; with an ``-o`` ending in ``.zip``, the export zip with
``user.json`` and ``listens/<year>/<month>.jsonl``), ``spotify`` (extended streaming
history: ``--listens`` counts the plays Koito imports; skipped plays and podcast
episodes are added around them), ``lastfm`` (pages of 200, newest first) and ``koito``.

Everything is written in chunks with orjson from per-track fragments serialized once, so
a 1,000,000-listen file takes a few seconds and little memory. ``generate_listens()``
returns the same history as :class:`koito_import.listen.Listen` records directly.
"""

from __future__ import annotations

import argparse
import bisect
import datetime as dt
import itertools
import math
import random
import sys
import time as _time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import orjson

from koito_import.listen import EntityRecord, KoitoEntities, Listen

#: The reference workload (49k).
DEFAULT_LISTENS = 49_050
DEFAULT_ARTISTS = 5_589
DEFAULT_ALBUMS = 2_628
DEFAULT_TRACKS = 15_000
#: Catalog growth exponents fitted to the 49k workload and to docs/write-floors.md's 1M one.
_GROWTH = {"artists": 0.653, "albums": 0.673, "tracks": 0.764}

#: Catalog shapes: "reference" scales the 49k workload's catalog with the exponents above;
#: "grown" is the catalog of a long history with many albums (at 1M listens: 25k
#: artists, 40k albums, 150k tracks, i.e. tracks ~15% of listens), proportional to it.
SHAPES = ("reference", "grown")
_GROWN = {"artists": 0.025, "albums": 0.04, "tracks": 0.15}


def shape_counts(listens: int, shape: str = "reference") -> tuple[int, int, int] | None:
    """(artists, albums, tracks) of a shape at this size; None: the reference scaling."""
    if shape not in SHAPES:
        raise ValueError(f"unknown shape {shape!r}; one of {', '.join(SHAPES)}")
    if shape == "reference":
        return None
    a, r, t = (max(1, round(listens * _GROWN[k])) for k in ("artists", "albums", "tracks"))
    return a, r, t


FORMATS = ("maloja", "listenbrainz-jsonl", "spotify", "lastfm", "koito")

MALOJA_SEP = " \u2022 "
START_TIME = 1_546_300_800  # 2019-01-01T00:00:00Z
CHUNK = 20_000

# --- names -----------------------------------------------------------------------------

_LATIN_ONSETS = [*"bcdfghjklmnprstvwz", "br", "cr", "dr", "fr", "gr", "pl", "st", "tr", "ch", "sh"]
_LATIN_VOWELS = [*"aeiouaeio", "ou", "ai", "ea"]
_ACCENTED = {"a": "áàâäå", "e": "éèêë", "i": "íï", "o": "óöøô", "u": "úüû", "n": "ñ", "c": "ç"}
_KANA = (
    "あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわん"
    "アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワン"
)
_KANJI = "夜空花雨風光海月星夢桜雪声心色歌街火水森愛青白黒紅時間線"
_HANZI = "我你他的是在有人这中大为上个国和地到以说时要就出会可也"
_CYR_ONSETS = [*"бвгджзклмнпрстфхцчш"]
_CYR_VOWELS = [*"аеиоуыяюёэ"]
_GREEK = "αβγδεζηθικλμνξοπρστυφχψω"
_EMOJI = ["🌸", "🔥", "✨", "💀", "🎧", "🌙", "🖤", "🦋"]
_LATIN_WORDS = [
    *("love", "night", "heart", "fire", "dream", "light", "city", "summer", "rain", "blue"),
    *("gold", "wild", "young", "ghost", "river", "star", "dance", "home", "road", "song"),
    *("time", "world", "girl", "boy", "sun", "moon", "sky", "lost", "forever", "midnight"),
    *("echo", "paper", "glass", "silver", "electric", "golden", "broken"),
]
_TITLE_SUFFIXES = [" (Remastered 2011)", " - Live", " (Acoustic)", " - Radio Edit", " (Demo)"]

# script, weight
_SCRIPTS = [("latin", 70), ("ja", 10), ("ko", 6), ("zh", 4), ("cyr", 7), ("el", 3)]
_SCRIPT_CUM = list(itertools.accumulate(w for _, w in _SCRIPTS))


def _pick(rng: random.Random, seq):
    """_pick(rng, ) without its per-call overhead (generation speed matters at 1M)."""
    return seq[int(rng.random() * len(seq))]


def _between(rng: random.Random, low: int, high: int) -> int:
    """_between(rng, low, high), faster."""
    return low + int(rng.random() * (high - low + 1))


def _script(rng: random.Random) -> str:
    return _SCRIPTS[bisect.bisect_right(_SCRIPT_CUM, rng.random() * _SCRIPT_CUM[-1])][0]


def _latin_word(rng: random.Random, accents: bool) -> str:
    word = "".join(
        _pick(rng, _LATIN_ONSETS) + _pick(rng, _LATIN_VOWELS) for _ in range(_between(rng, 1, 3))
    )
    if accents and rng.random() < 0.12:
        i = int(rng.random() * len(word))
        if word[i] in _ACCENTED:
            word = word[:i] + _pick(rng, _ACCENTED[word[i]]) + word[i + 1 :]
    return word


def _word(rng: random.Random, script: str) -> str:
    if script == "latin":
        return _latin_word(rng, accents=True).capitalize()
    if script == "ja":
        return "".join(
            _pick(rng, _KANJI) if rng.random() < 0.3 else _pick(rng, _KANA)
            for _ in range(_between(rng, 2, 5))
        )
    if script == "ko":
        return "".join(chr(_between(rng, 0xAC00, 0xD7A3)) for _ in range(_between(rng, 1, 4)))
    if script == "zh":
        return "".join(_pick(rng, _HANZI) for _ in range(_between(rng, 1, 3)))
    if script == "cyr":
        return "".join(
            _pick(rng, _CYR_ONSETS) + _pick(rng, _CYR_VOWELS) for _ in range(_between(rng, 1, 3))
        ).capitalize()
    return "".join(_pick(rng, _GREEK) for _ in range(_between(rng, 3, 7))).capitalize()


def _artist_name(rng: random.Random, script: str) -> str:
    r = rng.random()
    if script != "latin":
        name = " ".join(_word(rng, script) for _ in range(_between(rng, 1, 2)))
    elif r < 0.08:
        name = "The " + " ".join(_word(rng, script) for _ in range(_between(rng, 1, 2)))
    elif r < 0.11:
        name = f"{_word(rng, script)} & {_word(rng, script)}"
    elif r < 0.13:
        name = f"{_word(rng, script)} and the {_word(rng, script)}s"
    elif r < 0.14:
        name = f"{_word(rng, script)}, {_word(rng, script)} & {_word(rng, script)}"
    elif r < 0.145:
        name = f"{_word(rng, script).lower()}·{_word(rng, script).lower()}"
    elif r < 0.17:
        name = "DJ " + _word(rng, script)
    elif r < 0.20:
        name = _word(rng, script).upper()
    else:
        name = " ".join(_word(rng, script) for _ in range(_between(rng, 1, 3)))
    if rng.random() < 0.01:
        name += " " + _pick(rng, _EMOJI)
    return name


def _title(rng: random.Random, script: str) -> str:
    if script == "latin" or rng.random() < 0.2:
        words = [_pick(rng, _LATIN_WORDS) for _ in range(_between(rng, 1, 4))]
        title = " ".join(w.capitalize() if rng.random() < 0.7 else w for w in words)
    else:
        title = " ".join(_word(rng, script) for _ in range(_between(rng, 1, 3)))
    if rng.random() < 0.04:
        title += _pick(rng, _TITLE_SUFFIXES)
    if rng.random() < 0.005:
        title += " " + _pick(rng, _EMOJI)
    return title


def _pad(rng: random.Random, name: str) -> str:
    """A few names carry stray whitespace, as real exports do."""
    r = rng.random()
    if r < 0.006:
        return " " + name
    if r < 0.012:
        return name + "  "
    if r < 0.013:
        return name + "\u3000"
    return name


def _uuid(rng: random.Random) -> str:
    """A random (version 4) UUID string from ``rng``."""
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


# --- the catalog -------------------------------------------------------------------------


@dataclass(slots=True)
class Track:
    """One generated track with everything every format needs."""

    title: str
    #: The artists as Maloja lists them (may hold "Main • Feat" strings).
    maloja_artists: tuple[str, ...]
    #: Main artist first, then featured artists.
    credits: tuple[str, ...]
    album: str | None
    album_artist: str
    length: int
    #: Whether the exports carry the length (Maloja "length", ListenBrainz duration).
    known_length: bool
    recording_mbid: str
    release_mbid: str
    artist_mbids: tuple[str, ...]


@dataclass
class Catalog:
    tracks: list[Track]
    #: Cumulative popularity weights over ``tracks``.
    cum_weights: list[float]


def _scaled(base: int, listens: int, key: str) -> int:
    if listens == DEFAULT_LISTENS:
        return base
    return max(1, round(base * (listens / DEFAULT_LISTENS) ** _GROWTH[key]))


def build_catalog(
    seed: int,
    listens: int = DEFAULT_LISTENS,
    artists: int | None = None,
    albums: int | None = None,
    tracks: int | None = None,
) -> Catalog:
    """The artists, albums and tracks a history of ``listens`` plays is drawn from."""
    rng = random.Random(seed)
    n_artists = artists if artists is not None else _scaled(DEFAULT_ARTISTS, listens, "artists")
    n_albums = albums if albums is not None else _scaled(DEFAULT_ALBUMS, listens, "albums")
    n_tracks = tracks if tracks is not None else _scaled(DEFAULT_TRACKS, listens, "tracks")
    n_tracks = max(n_tracks, n_artists)

    names: list[str] = []
    scripts: list[str] = []
    seen: set[str] = set()
    for _ in range(n_artists):
        script = _script(rng)
        name = _artist_name(rng, script)
        while name.casefold() in seen:
            name = f"{name} {_between(rng, 2, 99)}"
        seen.add(name.casefold())
        names.append(name)
        scripts.append(script)
    artist_mbids = [_uuid(rng) if rng.random() < 0.7 else "" for _ in range(n_artists)]
    # Zipf popularity of artists (rank = index): listens, and (flatter) catalog size.
    artist_weight = [1.0 / (i + 1) ** 0.8 for i in range(n_artists)]
    artist_cum = list(itertools.accumulate(artist_weight))
    size_cum = list(itertools.accumulate(1.0 / (i + 1) ** 0.6 for i in range(n_artists)))

    def popular_artist() -> int:
        return bisect.bisect_left(artist_cum, rng.random() * artist_cum[-1])

    def prolific_artist() -> int:
        return bisect.bisect_left(size_cum, rng.random() * size_cum[-1])

    albums_of: list[list[tuple[str, str]]] = [[] for _ in range(n_artists)]
    for i in range(n_albums):
        owner = i if i < n_artists and rng.random() < 0.3 else popular_artist()
        title = _title(rng, scripts[owner])
        if rng.random() < 0.03:
            title = names[owner]  # self-titled
        albums_of[owner].append((title, _uuid(rng) if rng.random() < 0.6 else ""))

    all_albums = [(o, t, m) for o, albums in enumerate(albums_of) for t, m in albums]
    owners = list(range(n_artists)) + [prolific_artist() for _ in range(n_tracks - n_artists)]
    per_artist_rank = [0] * n_artists
    out: list[Track] = []
    weights: list[float] = []
    for owner in owners:
        main = names[owner]
        script = scripts[owner]
        title = _title(rng, script)
        feats: list[int] = []
        if rng.random() < 0.15:
            feats = [popular_artist() for _ in range(1 if rng.random() < 0.8 else 2)]
            feats = [f for f in dict.fromkeys(feats) if f != owner]
        feat_names = [names[f] for f in feats]
        style = rng.random()
        if not feat_names:
            maloja = (main,)
        elif style < 0.4:
            # Maloja's own quirk: ["Feat", "Main • Feat"].
            maloja = (feat_names[0], MALOJA_SEP.join([main, *feat_names]), *feat_names[1:])
        elif style < 0.8:
            maloja = (main, *feat_names)
        else:
            maloja = (main,)
            title += " (feat. " + " & ".join(feat_names) + ")"
        own_albums = albums_of[owner]
        nth = per_artist_rank[owner]
        album_owner = owner
        if nth < len(own_albums):
            album, release_mbid = own_albums[nth]  # every album gets a track
        elif own_albums and rng.random() < 0.9:
            album, release_mbid = _pick(rng, own_albums)
        elif not own_albums and all_albums and rng.random() < 0.55:
            # On someone else's album (a compilation, a split).
            album_owner, album, release_mbid = _pick(rng, all_albums)
        else:
            album, release_mbid = None, ""
        length = int(rng.triangular(90, 480, 210))
        out.append(
            Track(
                title=_pad(rng, title),
                maloja_artists=tuple(_pad(rng, a) for a in maloja),
                credits=(main, *feat_names),
                album=album,
                album_artist=names[album_owner],
                length=length,
                known_length=rng.random() < 0.35,
                recording_mbid=_uuid(rng) if rng.random() < 0.6 else "",
                release_mbid=release_mbid,
                artist_mbids=tuple(artist_mbids[a] for a in (owner, *feats)),
            )
        )
        rank = per_artist_rank[owner] = per_artist_rank[owner] + 1
        weights.append(1.0 / rank)
    # An artist's listens are spread over its tracks by Zipf (1/rank, normalized), so the
    # artist's share of all listens stays its own popularity.
    harmonic = [0.0] * n_artists
    for owner, w in zip(owners, weights, strict=True):
        harmonic[owner] += w
    weights = [artist_weight[o] * w / harmonic[o] for o, w in zip(owners, weights, strict=True)]
    # Shuffle so that catalog order says nothing about popularity.
    order = list(range(len(out)))
    rng.shuffle(order)
    tracks_out = [out[i] for i in order]
    cum = list(itertools.accumulate(weights[i] for i in order))
    return Catalog(tracks_out, cum)


def plays(catalog: Catalog, n: int, seed: int) -> tuple[list[int], list[int]]:
    """(times, track indexes) of ``n`` plays, in increasing time; a few exact duplicates.

    Every track is played at least once (when ``n`` allows; first listens are spread
    evenly over the history, as tracks are discovered), the rest by popularity.
    """
    rng = random.Random(seed * 7919 + 17)
    n_tracks = len(catalog.tracks)
    picks = rng.choices(range(n_tracks), cum_weights=catalog.cum_weights, k=n)
    if n >= n_tracks:
        for j in range(n_tracks):  # catalog order is already random
            picks[j * n // n_tracks] = j
    # Several years of history, denser for bigger exports.
    span = max(3 * 365 * 86_400, n * 200)
    mean_gap = span / max(n, 1)
    rand = rng.random
    gaps = [max(30, int(-math.log(1.0 - rand()) * mean_gap)) for _ in range(n)]
    # The same scrobble twice (same second, same track): about one in a thousand.
    for i in rng.sample(range(1, n), (n - 1) // 1000) if n > 1 else ():
        gaps[i] = 0
        picks[i] = picks[i - 1]
    times = list(itertools.accumulate(gaps, initial=START_TIME))[1:]
    return times, picks


# --- formats -------------------------------------------------------------------------------


def _rfc3339(t: int) -> str:
    return dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _dumps(obj: object) -> bytes:
    return orjson.dumps(obj)


def _maloja_fragments(catalog: Catalog, rng: random.Random) -> list[bytes]:
    """Per track: the bytes of one scrobble after its time (``,"track":...}``)."""
    frags = []
    for tr in catalog.tracks:
        album = None
        if tr.album is not None:
            album = {"artists": [tr.album_artist], "albumtitle": tr.album}
        track = {
            "artists": list(tr.maloja_artists),
            "title": tr.title,
            "album": album,
            "length": tr.length if tr.known_length else None,
        }
        frags.append(b',"track":' + _dumps(track))
    return frags


def _write_array(out: BinaryIO, items: Iterator[bytes]) -> int:
    """Write ``[item,item,...]`` in chunks; return the count."""
    count = 0
    out.write(b"[")
    first = True
    for chunk in _chunks(items, CHUNK):
        if not first:
            out.write(b",")
        out.write(b",".join(chunk))
        first = False
        count += len(chunk)
    out.write(b"]")
    return count


def _chunks(items: Iterator[bytes], size: int) -> Iterator[list[bytes]]:
    it = iter(items)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def write_maloja(out: BinaryIO, catalog: Catalog, times: list[int], picks: list[int], seed: int):
    rng = random.Random(seed + 1)
    frags = _maloja_fragments(catalog, rng)
    blank = b',"track":{"artists":["Somebody"],"title":"  ","album":null,"length":null}'

    lengths = [b"%d" % tr.length for tr in catalog.tracks]

    def items() -> Iterator[bytes]:
        rand = rng.random
        for t, k in zip(times, picks, strict=True):
            r = rand()
            frag = blank if r < 0.0004 else frags[k]
            duration = b"null" if r < 0.5 else lengths[k]  # seconds played, when known
            yield b'{"time":%d%s,"duration":%s,"origin":"client:default"}' % (t, frag, duration)

    export_time = (times[-1] if times else START_TIME) + 3600
    out.write(b'{"maloja":{"export_time":%d},"scrobbles":' % export_time)
    _write_array(out, items())
    out.write(b"}")


def _lb_fragments(catalog: Catalog) -> list[bytes]:
    """Per track: ``"track_metadata":{...}`` of a ListenBrainz listen."""
    frags = []
    for tr in catalog.tracks:
        mapped = bool(tr.recording_mbid) and all(tr.artist_mbids)
        info: dict[str, object] = {"submission_client": "ListenBrainz lastfm importer v2"}
        if mapped:
            info = {
                "artist_mbids": [m for m in tr.artist_mbids if m],
                "release_mbid": tr.release_mbid or None,
                "recording_mbid": tr.recording_mbid,
                "submission_client": "listenbrainz web",
            }
            if tr.known_length:
                info["duration_ms"] = tr.length * 1000
        artist_name = tr.credits[0]
        if len(tr.credits) > 1:
            artist_name += " feat. " + " & ".join(tr.credits[1:])
        meta: dict[str, object] = {
            "track_name": tr.title,
            "artist_name": artist_name,
            "release_name": tr.album,
            "mbid_mapping": (
                {
                    "artists": [
                        {"artist_mbid": m, "join_phrase": "", "artist_credit_name": a}
                        for a, m in zip(tr.credits, tr.artist_mbids, strict=True)
                        if m
                    ],
                    "artist_mbids": [m for m in tr.artist_mbids if m],
                    "release_mbid": tr.release_mbid or None,
                    "recording_mbid": tr.recording_mbid,
                    "recording_name": tr.title,
                }
                if mapped
                else None
            ),
            "additional_info": info,
        }
        if tr.album is None:
            del meta["release_name"]
        frags.append(b',"track_metadata":' + _dumps(meta))
    return frags


def _lb_lines(catalog: Catalog, times: list[int], picks: list[int]) -> Iterator[tuple[int, bytes]]:
    frags = _lb_fragments(catalog)
    for t, k in zip(times, picks, strict=True):
        yield t, b'{"inserted_at":%d,"listened_at":%d%s}\n' % (t + 5, t, frags[k])


def write_listenbrainz(out: BinaryIO, catalog: Catalog, times: list[int], picks: list[int]):
    for chunk in _chunks((line for _, line in _lb_lines(catalog, times, picks)), CHUNK):
        out.write(b"".join(chunk))


def write_listenbrainz_zip(path: Path, catalog: Catalog, times: list[int], picks: list[int]):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("user.json", b'{"user_id":1,"username":"generated"}')
        month = None
        buf: list[bytes] = []

        def flush() -> None:
            if buf and month is not None:
                zf.writestr(f"listens/{month[0]}/{month[1]}.jsonl", b"".join(buf))
            buf.clear()

        for t, line in _lb_lines(catalog, times, picks):
            d = dt.datetime.fromtimestamp(t, dt.timezone.utc)
            key = (d.year, d.month)
            if key != month:
                flush()
                month = key
            buf.append(line)
        flush()


def write_spotify(out: BinaryIO, catalog: Catalog, times: list[int], picks: list[int], seed: int):
    rng = random.Random(seed + 2)
    frags = []
    for tr in catalog.tracks:
        frags.append(
            _dumps(
                {
                    "master_metadata_track_name": tr.title,
                    "master_metadata_album_artist_name": tr.credits[0],
                    "master_metadata_album_album_name": tr.album or tr.title,
                    "spotify_track_uri": "spotify:track:" + tr.recording_mbid.replace("-", "")[:22],
                    "episode_name": None,
                    "episode_show_name": None,
                    "spotify_episode_uri": None,
                    "audiobook_title": None,
                    "audiobook_uri": None,
                    "audiobook_chapter_uri": None,
                    "audiobook_chapter_title": None,
                }
            )[1:-1]
        )
    podcast = _dumps(
        {
            "master_metadata_track_name": None,
            "master_metadata_album_artist_name": None,
            "master_metadata_album_album_name": None,
            "spotify_track_uri": None,
            "episode_name": "Episode 12",
            "episode_show_name": "Some Podcast",
            "spotify_episode_uri": "spotify:episode:0000000000000000000000",
            "audiobook_title": None,
            "audiobook_uri": None,
            "audiobook_chapter_uri": None,
            "audiobook_chapter_title": None,
        }
    )[1:-1]

    def entry(ts: int, frag: bytes, ms: int, start: bytes, end: bytes, skipped: bytes) -> bytes:
        return (
            b'{"ts":"%s","platform":"android","ms_played":%d,"conn_country":"DE",'
            b'"ip_addr":"x.x.x.x",%s,"reason_start":"%s","reason_end":"%s",'
            b'"shuffle":false,"skipped":%s,"offline":false,"offline_timestamp":%d,'
            b'"incognito_mode":false}'
            % (_rfc3339(ts).encode(), ms, frag, start, end, skipped, ts - 200)
        )

    def items() -> Iterator[bytes]:
        for t, k in zip(times, picks, strict=True):
            if rng.random() < 0.12:  # a skipped play just before: not imported
                other = rng.randrange(len(frags))
                yield entry(
                    t - 20, frags[other], _between(rng, 500, 15000), b"fwdbtn", b"fwdbtn", b"true"
                )
            if rng.random() < 0.01:
                yield entry(t - 10, podcast, 600_000, b"playbtn", b"trackdone", b"false")
            ms = catalog.tracks[k].length * 1000 + _between(rng, 0, 999)
            yield entry(t, frags[k], ms, b"trackdone", b"trackdone", b"false")

    _write_array(out, items())


def write_lastfm(out: BinaryIO, catalog: Catalog, times: list[int], picks: list[int]):
    frags = []
    for tr in catalog.tracks:
        credit = tr.credits[0]
        frags.append(
            b',"artist":%s,"streamable":"0","image":[{"size":"small","#text":""}],'
            b'"mbid":%s,"album":%s,"name":%s,"url":%s'
            % (
                _dumps({"mbid": tr.artist_mbids[0], "#text": credit}),
                _dumps(tr.recording_mbid),
                _dumps({"mbid": tr.release_mbid, "#text": tr.album or ""}),
                _dumps(tr.title),
                _dumps("https://www.last.fm/music/" + credit.replace(" ", "+")),
            )
        )
    total = len(times)
    per_page = 200
    pages = max(1, (total + per_page - 1) // per_page)

    def items() -> Iterator[bytes]:
        order = range(total - 1, -1, -1)  # newest first
        for page, idx in enumerate(_chunks(iter(order), per_page), 1):
            tracks = []
            for i in idx:
                t = times[i]
                text = dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%d %b %Y, %H:%M")
                tracks.append(
                    b'{"date":{"uts":"%d","#text":"%s"}%s}' % (t, text.encode(), frags[picks[i]])
                )
            attr = _dumps(
                {
                    "perPage": str(per_page),
                    "totalPages": str(pages),
                    "page": str(page),
                    "total": str(total),
                    "user": "generated",
                }
            )
            yield b'{"track":[%s],"@attr":%s}' % (b",".join(tracks), attr)

    _write_array(out, items())


def write_koito(out: BinaryIO, catalog: Catalog, times: list[int], picks: list[int], seed: int):
    rng = random.Random(seed + 3)
    frags = []
    for tr in catalog.tracks:
        album_title = tr.album or tr.title
        artists = [
            {
                "image_url": f"https://images.example.org/artist/{rng.getrandbits(32)}.jpg"
                if rng.random() < 0.7
                else None,
                "mbid": mbid or None,
                "is_primary": i == 0,
                "aliases": [{"alias": name, "source": "Canonical", "is_primary": True}],
            }
            for i, (name, mbid) in enumerate(zip(tr.credits, tr.artist_mbids, strict=True))
        ]
        body = {
            "track": {
                "mbid": tr.recording_mbid or None,
                "duration": tr.length if tr.known_length else 0,
                "aliases": [{"alias": tr.title.strip(), "source": "Canonical", "is_primary": True}],
            },
            "album": {
                "image_url": None,
                "mbid": tr.release_mbid or None,
                "aliases": [{"alias": album_title, "source": "Canonical", "is_primary": True}],
                "various_artists": False,
            },
            "artists": artists,
        }
        frags.append(_dumps(body)[1:-1])

    def items() -> Iterator[bytes]:
        for t, k in zip(times, picks, strict=True):
            yield b'{"listened_at":"%s","client":"koito-import-generator",%s}' % (
                _rfc3339(t).encode(),
                frags[k],
            )

    exported = _rfc3339((times[-1] if times else START_TIME) + 3600)
    out.write(
        b'{"version":"1","exported_at":"%s","user":"generated","listens":' % exported.encode()
    )
    _write_array(out, items())
    out.write(b"}")


def write_export(
    path: str | Path,
    fmt: str = "maloja",
    listens: int = DEFAULT_LISTENS,
    seed: int = 1,
    artists: int | None = None,
    albums: int | None = None,
    tracks: int | None = None,
) -> Path:
    """Generate one export file (or zip) at ``path``; return the path."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}")
    path = Path(path)
    catalog = build_catalog(seed, listens, artists, albums, tracks)
    times, picks = plays(catalog, listens, seed)
    if fmt == "listenbrainz-jsonl" and path.suffix == ".zip":
        write_listenbrainz_zip(path, catalog, times, picks)
        return path
    with open(path, "wb", buffering=1 << 20) as out:
        if fmt == "maloja":
            write_maloja(out, catalog, times, picks, seed)
        elif fmt == "listenbrainz-jsonl":
            write_listenbrainz(out, catalog, times, picks)
        elif fmt == "spotify":
            write_spotify(out, catalog, times, picks, seed)
        elif fmt == "lastfm":
            write_lastfm(out, catalog, times, picks)
        else:
            write_koito(out, catalog, times, picks, seed)
    return path


# --- Listen records directly -----------------------------------------------------------


def _maloja_listen_fields(tr: Track) -> tuple[str, tuple[str, ...]]:
    """Koito's Maloja importer: (artist string, artist names) of one scrobble."""
    artists = list(tr.maloja_artists)
    for i, a in enumerate(artists):
        if MALOJA_SEP in a:
            artists.insert(0, artists.pop(i))
            break
    names: list[str] = []
    folded: list[str] = []
    for a in artists:
        for part in a.split(MALOJA_SEP):
            f = part.casefold()
            if f not in folded:
                folded.append(f)
                names.append(part)
    return artists[0], tuple(names)


def generate_listens(
    n: int = DEFAULT_LISTENS,
    seed: int = 1,
    *,
    artists: int | None = None,
    albums: int | None = None,
    tracks: int | None = None,
    flavor: str = "maloja",
) -> list[Listen]:
    """The generated history as raw Listen records, as an importer hands them over.

    ``flavor``: "maloja" (artist names, no MBIDs or durations, as Koito's Maloja importer
    submits them), "listenbrainz" (MBIDs, artist-MBID mappings, durations) or "koito"
    (Koito-export listens carrying their entities). Records of the same track share
    their strings and tuples, like a parser's cache would.
    """
    catalog = build_catalog(seed, n, artists, albums, tracks)
    times, picks = plays(catalog, n, seed)
    rng = random.Random(seed + 4)
    per_track: list[Listen] = []
    for tr in catalog.tracks:
        if flavor == "maloja":
            artist, names = _maloja_listen_fields(tr)
            per_track.append(
                Listen(artist, tr.title, 0, names, album=tr.album or "", client="maloja")
            )
        elif flavor == "listenbrainz":
            artist = tr.credits[0]
            if len(tr.credits) > 1:
                artist += " feat. " + " & ".join(tr.credits[1:])
            mapped = bool(tr.recording_mbid) and all(tr.artist_mbids)
            mappings = tuple((a, m) for a, m in zip(tr.credits, tr.artist_mbids, strict=True) if m)
            per_track.append(
                Listen(
                    artist,
                    tr.title,
                    0,
                    album=tr.album or "",
                    artist_mbids=tuple(m for m in tr.artist_mbids if m) if mapped else (),
                    mbid_mappings=mappings if mapped else (),
                    release_mbid=tr.release_mbid if mapped else "",
                    recording_mbid=tr.recording_mbid if mapped else "",
                    duration=tr.length if tr.known_length and mapped else 0,
                    client="listenbrainz web" if mapped else "ListenBrainz lastfm importer v2",
                )
            )
        elif flavor == "koito":
            records = tuple(
                EntityRecord(name, (name,), mbid, "https://images.example.org/a.jpg")
                for name, mbid in zip(tr.credits, tr.artist_mbids, strict=True)
            )
            album = EntityRecord(tr.album or tr.title, (), tr.release_mbid)
            track = EntityRecord(tr.title, (tr.title,), tr.recording_mbid)
            per_track.append(
                Listen(
                    tr.credits[0],
                    tr.title,
                    0,
                    tr.credits,
                    album=album.name,
                    duration=tr.length if tr.known_length else 0,
                    client="koito",
                    entities=KoitoEntities(records, album, track),
                )
            )
        else:
            raise ValueError(f"unknown flavor {flavor!r}")
    blank = Listen("Somebody", "  ", 0, ("Somebody",), client="maloja")
    out: list[Listen] = []
    append = out.append
    for t, k in zip(times, picks, strict=True):
        base = blank if rng.random() < 0.0004 else per_track[k]
        append(
            Listen(
                base.artist,
                base.title,
                t,
                base.artist_names,
                base.album,
                base.artist_mbids,
                base.mbid_mappings,
                base.release_mbid,
                base.recording_mbid,
                base.duration,
                base.client,
                base.entities,
            )
        )
    return out


# --- command line -----------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.generate", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--listens", type=int, default=DEFAULT_LISTENS)
    parser.add_argument(
        "--artists", type=int, default=None, help="default: scaled from the 49k workload"
    )
    parser.add_argument(
        "--albums", type=int, default=None, help="default: scaled from the 49k workload"
    )
    parser.add_argument(
        "--tracks", type=int, default=None, help="default: scaled from the 49k workload"
    )
    parser.add_argument(
        "--shape",
        choices=SHAPES,
        default="reference",
        help="catalog shape when --artists/--albums/--tracks are not given "
        "(grown: 2.5%% artists, 4%% albums, 15%% tracks of the listens)",
    )
    parser.add_argument("--format", choices=FORMATS, default="maloja")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("-o", "--output", required=True, help="file to write (.zip: LB zip)")
    args = parser.parse_args(argv)
    if args.listens < 0:
        parser.error("--listens must be >= 0")
    grown = shape_counts(args.listens, args.shape)
    if grown is not None:
        args.artists = args.artists if args.artists is not None else grown[0]
        args.albums = args.albums if args.albums is not None else grown[1]
        args.tracks = args.tracks if args.tracks is not None else grown[2]
    started = _time.perf_counter()
    path = write_export(
        args.output, args.format, args.listens, args.seed, args.artists, args.albums, args.tracks
    )
    took = _time.perf_counter() - started
    size = path.stat().st_size
    print(
        f"{path}: {args.listens} listens ({args.format}), {size / 1e6:.1f} MB in {took:.2f} s",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
