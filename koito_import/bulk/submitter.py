"""The bulk path: a whole listen stream in, the per-listen path's exact catalog out.

``BulkSubmitter.run`` leaves the database exactly as ``submit.replay`` (Koito's matching
applied listen by listen, from scratch) would for the same listens in the same order
(same entities, aliases, links, MBIDs, durations and listens; on the same starting
database even the same ids), but runs Koito's matching once per distinct lookup key
while nothing that key's match read has changed, against an in-memory slice of the
catalog, and writes with a few bulk statements. How it stays exact:

1. **Normalize** each chunk of listens (``_normalize.normalize_batch``: the C twin when
   built) and give each lookup key a small integer id (per batch). Per listen only
   (key id, time, duration, client) is kept; the prepared listen is kept once per key
   and batch.
2. **Heard before**: a listen at a second where the user already had a listen before
   this run is dropped at the start of its resolve step, before its slice is loaded
   (``listen``; one set query per step, and only inside the span of the user's
   earlier listens). Re-importing is thus a no-op.
3. **Batches** of ``batch_size`` distinct keys (or ``8 * batch_size`` listens) bound
   memory. A batch cut can fall anywhere: everything a batch resolved is written to
   the database (inside the run's transaction) before the next batch reads it.
   Within a batch, each chunk (``chunk_size`` listens) is resolved as soon as it is
   read, so matching overlaps with a parse worker still reading the file.
4. **Slice**: a handful of set queries per chunk load every artist/album/track the
   chunk's new keys can touch (``memcatalog``); lookups outside it load on demand, so
   an incomplete prefetch costs time, never correctness.
5. **Stream**: the chunk's listens are then taken in file order. A key with a memo
   entry reuses it; otherwise ``resolver.resolve`` (the same code the per-listen path
   runs) resolves it *at that position*, with *that* listen's duration (the key only
   says whether there is one). The catalog records what the resolution read; when a
   later change touches any of it (an album gains an artist, an MBID is assigned or
   moves), the memo entries that read it are dropped, and those keys are matched again
   at their next listen, exactly where Koito would match them again anyway
   (``MemoryCatalog.watch``; docs/decisions.md has the table of what changes what).
   A resolution Koito would not repeat (a repeated artist never matches a track) is
   never reused.
6. **Listens**: a listen whose (track, second) this run already wrote is not written
   again (the listens handed to the writer are kept in a compact ``ListenMap``, the
   few since then in a dict): counted as a
   *duplicate* when the same key wrote it (an exact duplicate in the input), as
   *already present* otherwise (Koito keeps the first listen of a track in a
   second, whatever its client). Exact duplicates are not dropped before matching:
   the catalog may have changed since the first one, and their match has side effects.
7. **Write behind**: after each step's queries, what the *previous* step created or
   changed is handed to a writer thread (``writebehind``), which writes it while this
   step is matched: new rows with real ids allocated in creation order (SQLite: max(id)
   + 1 under the held write lock; PostgreSQL: nextval on the identity sequences),
   MBID/duration updates (also of rows an earlier step wrote), album links and listens:
   a ``ChangeSet``, which the store's ``BulkWriter`` writes (``stores.bulkwrite``).
   Every statement of the main thread waits for the writes queued before it, so it
   sees them; the step's own queries run before its predecessor's writes and do not
   need to (memory holds all of the batch's changes, and ``MemoryCatalog`` skips rows
   of its own that come back from the database).

**Transactions.** Where the store commits in pieces (SQLite, which Koito keeps writing
while an import runs: ``SqliteStore``), the whole file is read and normalized first (a
broken file writes nothing), then matched and written in transactions of about
``commit_every`` seconds that end only at safe cuts (``safe_cuts``); a transaction that
finds another writer's commit since the previous one starts a new catalog, so the rest
is matched against what that writer left (``_run_in_pieces``). Matching needs no lock,
only writing does: each piece is matched ahead, while the file is read and in the
pause after the previous commit, and its transaction only writes it, unless another
connection committed since the catalog was made (``PRAGMA data_version``), in which
case that matching is dropped and the piece is matched again under the lock
(``_match_ahead``). Elsewhere (PostgreSQL,
or inside a caller's transaction) the run is one transaction that begins with the
first chunk, so matching overlaps with a parse worker still reading the file; its first
catalog reads through a second connection, so that matching and writing overlap too.
"""

from __future__ import annotations

import gc
import operator
import sys
import time as clock
from array import array
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, replace
from itertools import islice
from typing import Any

from koito_import import _normalize
from koito_import.bulk import heap
from koito_import.bulk.memcatalog import PROVISIONAL_BASE, MemoryCatalog, Needs
from koito_import.bulk.writebehind import WriteBehind
from koito_import.counts import ImportCounts
from koito_import.errors import InvalidListen
from koito_import.listen import DEFAULT_USER_ID, KoitoEntities, Listen
from koito_import.resolver import resolve
from koito_import.settings import MatchSettings
from koito_import.stores.base import Store
from koito_import.stores.bulkwrite import BulkWriter
from koito_import.stores.slices import SliceReader

#: Listens normalized per call (and resolved per step while that is cheap; the
#: progress granularity too).
CHUNK = 4096
#: Resolving chunk by chunk costs one round of slice queries per chunk. On PostgreSQL
#: (Koito's schema has no b-tree on the alias columns) each round scans the alias
#: tables, so it pays only while the catalog is small: below this many tracks.
SMALL_CATALOG = 20_000
#: Listens per step beyond that. One round per batch would leave nothing to write while
#: the batch is matched (a step's changes are written while the next step is matched),
#: so a batch takes a few rounds: 1M listens into PostgreSQL (13 batches of ~77k
#: listens) took 71 s in steps of 16k or 32k listens against 87 s in one step a batch.
LARGE_CATALOG_STEP = 8 * CHUNK
#: The fewest listens a step of a run in pieces takes (see ``_run_in_pieces``).
MIN_STEP = 256
#: Distinct keys a batch holds (a run in one transaction) by default. Each new batch
#: starts a catalog that reads through the run's own connection and matches its keys
#: again: 1M grown listens (150k keys) into PostgreSQL took 113 s in batches of 50k
#: keys and 53 s in one (BENCHMARKS.md, "Near the floor"), at 334 + 41 MB of peak RSS
#: once the heap is trimmed and the listen map grows in place.
BATCH_KEYS = 200_000
#: Distinct keys a catalog of a run in pieces holds by default before a new one starts.
#: Larger than a batch: a new catalog matches every key it meets again and loads its
#: slice again, and a long history spreads its keys over the whole file (measured at 1M
#: listens with 150k keys: 13 catalogs of 50k keys took twice as long as one). A catalog
#: costs about 1.5 KB a key (docs: BENCHMARKS.md, "Near the floor").
PIECES_CATALOG_KEYS = 200_000
#: Rows a run in pieces expects to write per second of write lock, to size what it
#: matches ahead of a transaction (``_match_ahead``): the 49k write floor wrote ~230k
#: rows a second on this project's 2-core machine, ~130k in a slow hour; too high only
#: makes a transaction longer than ``commit_every``, too low only makes more of them.
AHEAD_ROWS_PER_SECOND = 150_000
#: One key's "no memo" in ``_Batch.memo`` (-1 as 8 bytes).
_NO_MEMO = array("q", [-1]).tobytes()
#: The GIL switch interval while a run writes behind its matching (see ``run``).
SWITCH_INTERVAL = 0.0002


@dataclass
class BulkResult(ImportCounts):
    """What one ``run`` did (skips from normalization and matching)."""

    seconds: float = 0.0


def _shared(listen: Listen, shared: dict[Any, Any]) -> Listen:
    """``listen`` with its artist, title, album and artist names shared with the equal ones
    of earlier keys.

    The first listen of every key is kept to the end of its batch, and a long history
    repeats these values: at 1M grown listens, 34k distinct artists in 150k keys' artist
    strings (~25 MB of the 61 MB those listens took as parsed).
    """
    get = shared.setdefault
    names = shared.get(listen.artist_names)
    if names is None:
        names = get(listen.artist_names, tuple([get(n, n) for n in listen.artist_names]))
    return Listen(
        artist=get(listen.artist, listen.artist),
        title=get(listen.title, listen.title),
        time=listen.time,
        artist_names=names,
        album=get(listen.album, listen.album),
        artist_mbids=listen.artist_mbids,
        mbid_mappings=listen.mbid_mappings,
        release_mbid=listen.release_mbid,
        recording_mbid=listen.recording_mbid,
        duration=listen.duration,
        client=listen.client,
        entities=listen.entities,
    )


class _Ahead:
    """What a run in pieces matched outside the write lock and has not written yet.

    Matching reads the database but writes nothing, so it needs no lock: only its
    result must still hold when the lock is taken. It does when no other connection
    committed since the catalog was made (``PRAGMA data_version`` unchanged: the run's
    own commits do not change it); otherwise it is thrown away and the piece is matched
    again under the lock. Until then it must not be seen: skips are held back, and the
    counts and position it started from are kept to go back to.
    """

    __slots__ = ("already", "changes", "duplicates", "heard", "skips", "start", "version")

    def __init__(self) -> None:
        #: The data_version the catalog was made at (None: no catalog yet).
        self.version: int | None = None
        #: The first position matched ahead, None while nothing is.
        self.start: int | None = None
        self.changes = self.duplicates = self.already = self.heard = 0
        #: Listens the resolver rejected while matching ahead, with the reason.
        self.skips: list[tuple[Listen, str]] = []


class _Batch:
    """One batch: its listens as parallel arrays by position, and its resolution so far."""

    __slots__ = (
        "already",
        "catalog",
        "clients",
        "duplicates",
        "durations",
        "ensured",
        "ensured_keys",
        "first",
        "gids",
        "inserted",
        "key_hashes",
        "key_ids",
        "local",
        "memo",
        "offered",
        "out_clients",
        "out_times",
        "out_tracks",
        "pending",
        "sent",
        "shared",
        "since",
        "step",
        "times",
        "variants",
    )

    def __init__(self) -> None:
        #: Lookup key -> key id (small ints, per batch: a run of a million listens would
        #: otherwise keep every distinct key to its end).
        self.key_ids: dict[str, int] = {}
        #: Key id per listen (4 bytes each: a million listens keep theirs to the end).
        self.gids = array("i")
        self.times = array("q")
        self.durations = array("q")
        self.clients: list[str] = []
        #: By key id (key ids are given in order of first appearance in the batch): the
        #: key's first prepared listen (what gets matched), and the lookup key's ``hash``
        #: (what tells an exact duplicate; the keys themselves are needed only to read).
        self.first: list[Listen] = []
        self.key_hashes = array("q")
        #: Strings and name tuples of the first listens, one object per value while the
        #: file is read (``_shared``).
        self.shared: dict[Any, Any] = {}
        #: Position -> Koito-export entities that differ from the first listen's (the key
        #: covers names and MBIDs, not aliases/images, which matter if matched again).
        self.variants: dict[int, KoitoEntities] = {}
        #: By key id: 1 once the catalog's slice covers the key (``ensured_keys`` of them).
        self.ensured = bytearray()
        self.ensured_keys = 0
        #: The first position not resolved yet.
        self.pending = 0
        #: Listens per resolve step (the batch is resolved whole when larger than it).
        self.step = 0
        self.catalog: MemoryCatalog | None = None
        #: By key id: the track it resolved to, while nothing its resolution read has
        #: changed (the catalog reports what did: ``MemoryCatalog.watch``), else -1. The
        #: track is all a listen needs; the rest of a resolution is in the catalog. An
        #: array, not a dict: 8 bytes a key instead of ~100 (150k keys: 1 MB, not 15).
        self.memo = array("q")
        #: (track, second) -> key id that wrote it, for the listens not handed to the
        #: writer yet (the run's ``_written`` has the others), and the listens to write.
        self.local: dict[tuple[int, int], int] = {}
        self.out_tracks: list[int] = []
        self.out_times = array("q")
        self.out_clients: list[str] = []
        #: Listens (of out_*) handed to the writer so far, and how many it inserted.
        self.sent = 0
        #: Listens handed to the writer in all (``out_*`` is emptied after a commit).
        self.offered = 0
        #: Where the current catalog started (a run in pieces bounds its listens too).
        self.since = 0
        self.inserted = 0
        self.duplicates = 0
        self.already = 0


def safe_cuts(times: array) -> bytearray:
    """``cuts[k]`` is 1 when no second of positions ``< k`` occurs again at ``>= k``.

    Only there may a run in pieces commit. A listen at a second where the user already
    had one is *heard before* and skipped (``listen``); if a run were cut between two
    listens of one second and killed after the first commit, running it again would
    skip the second listen, which a clean run imports. Sorted exports (ascending or
    descending) can be cut between any two different seconds; otherwise each second's
    last position bounds the cut. ``cuts[0]`` and ``cuts[len(times)]`` are always 1.
    """
    n = len(times)
    if n < 2:
        return bytearray(b"\x01" * (n + 1))
    head, tail = times[:-1], times[1:]
    if all(map(operator.le, head, tail)) or all(map(operator.ge, head, tail)):
        return bytearray(b"\x01") + bytearray(map(operator.ne, head, tail)) + bytearray(b"\x01")
    last = {t: i for i, t in enumerate(times)}
    cuts = bytearray(n + 1)
    cuts[0] = 1
    reach = 0
    for k, t in enumerate(times):
        far = last[t]
        if far > reach:
            reach = far
        if reach == k:
            cuts[k + 1] = 1
    return cuts


def commits_in_pieces(store: Store) -> bool:
    """Whether a bulk run on this store commits a file in pieces by default (SQLite)."""
    return store.commit_every is not None


def _drop_sent(batch: _Batch) -> None:
    """Forget the listens handed to the writer (``out_*`` up to ``sent``)."""
    del batch.out_tracks[: batch.sent]
    del batch.out_times[: batch.sent]
    del batch.out_clients[: batch.sent]
    batch.sent = 0


def _chunks(items: Iterable[Listen], size: int) -> Iterator[list[Listen]]:
    it = iter(items)
    while chunk := list(islice(it, size)):
        yield chunk


class BulkSubmitter:
    """Imports a listen stream with the per-listen path's exact result, in bulk."""

    def __init__(
        self,
        store: Store,
        settings: MatchSettings | None = None,
        *,
        batch_size: int | None = None,
        chunk_size: int = CHUNK,
        resolve_step: int | None = None,
        user_id: int = DEFAULT_USER_ID,
        progress: Callable[[int], None] | None = None,
        commit_every: float | None = None,
        in_pieces: bool | None = None,
        on_skip: Callable[[Listen, str], None] | None = None,
        on_commit: Callable[[float], None] | None = None,
        match_ahead: bool = True,
        second_reader: bool = True,
        ahead_rows: int | None = None,
    ) -> None:
        if (
            (batch_size is not None and batch_size < 1)
            or chunk_size < 1
            or (resolve_step is not None and resolve_step < 1)
        ):
            raise ValueError("batch_size, chunk_size and resolve_step must be at least 1")
        self.store = store
        self.settings = settings or MatchSettings()
        #: Keys per batch (a run in one transaction) or per catalog (a run in pieces);
        #: None: ``BATCH_KEYS`` or ``PIECES_CATALOG_KEYS``.
        self.batch_size = batch_size or BATCH_KEYS
        self.catalog_keys = batch_size or PIECES_CATALOG_KEYS
        #: Listens normalized per call (the progress granularity too).
        self.chunk_size = chunk_size
        #: Listens resolved per step. None: a chunk while slice queries are cheap (always
        #: on SQLite; on PostgreSQL while the catalog is small), else the whole batch.
        #: Any value gives the same result (tests vary it); only the speed differs.
        self.resolve_step = resolve_step
        self.max_batch_listens = 8 * self.batch_size
        self.user_id = user_id
        self.progress = progress
        #: Told of every listen skipped here (invalid once normalized), for --skipped.
        self.on_skip = on_skip
        #: Told, after each commit of a run in pieces, the share of the file written.
        self.on_commit = on_commit
        #: A run in pieces matches outside the write lock (while the file is read, and
        #: between transactions) and takes the lock to write (``_match_ahead``); False:
        #: matching happens under the lock too (the result is the same).
        self.match_ahead = match_ahead
        #: A run in one transaction reads its first catalog through a second connection
        #: where the store offers one (``BulkWriter.snapshot_reader``), so that matching
        #: never waits for the writer thread; False: through the run's own connection
        #: (the result is the same).
        self.second_reader = second_reader
        #: Rows matched ahead of a transaction at most; None: ``commit_every`` seconds
        #: at ``AHEAD_ROWS_PER_SECOND``.
        self.ahead_rows = ahead_rows
        #: Set by the last ``run`` in pieces: transactions that wrote what was matched
        #: ahead, and matchings ahead thrown away (another writer committed meanwhile).
        self.ahead_taken = 0
        self.ahead_dropped = 0
        #: The second connection catalogs read through (a run in pieces; the first batch
        #: of a run in one transaction), if any.
        self._via: Any = None
        #: Set by the last ``run``: lookups that fell outside the prefetched slice.
        self.lazy_loads = 0
        #: Set by the last ``run``: resolve steps taken (rounds of slice queries).
        self.resolve_steps = 0
        #: Seconds of write lock per transaction (None: the store's ``commit_every``).
        self.commit_every = commit_every
        #: Commit in pieces: None where the store does (SQLite), else True/False.
        self.in_pieces = in_pieces
        #: Set by the last ``run`` in pieces: its transactions and the longest one (s),
        #: and per transaction (lock taken, last moment under the lock, positions
        #: written up to), in ``time.perf_counter`` seconds.
        self.pieces = 0
        self.longest_piece = 0.0
        self.piece_log: list[tuple[float, float, int]] = []
        # Per-run and per-batch state (see run/_process).
        #: (track, second) of every listen this run wrote -> hash of the key that wrote
        #: it (to tell an exact duplicate from another key's listen across batches).
        self._written = _normalize.ListenMap()
        #: The run's writer thread (see ``writebehind``).
        self._behind = WriteBehind()
        #: (first, last) second of the user's listens before the run, None when none.
        self._span: tuple[int, int] | None = None
        #: Listens the database held before the run (``_already_heard``), not matched.
        self._heard = 0

    # --- the run -----------------------------------------------------------------------

    def run(self, listens: Iterable[Listen]) -> BulkResult:
        """Import the listens (one transaction); raises whatever the input or database raise."""
        # The run allocates hundreds of thousands of small, acyclic objects; the cyclic
        # garbage collector would rescan them all again and again (it doubled the time
        # of matching in measurements). Nothing here builds cycles worth collecting early.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        # The writer thread needs the GIL back after each statement, and by default waits
        # up to 5 ms for matching to hand it over: a run makes hundreds of statements
        # (measured at 49k: 0.3 s of the main thread waiting for writes, 0.16 s at 0.2 ms).
        interval = sys.getswitchinterval()
        sys.setswitchinterval(min(interval, SWITCH_INTERVAL))
        try:
            return self._run(listens)
        finally:
            sys.setswitchinterval(interval)
            if gc_was_enabled:
                gc.enable()

    def _run(self, listens: Iterable[Listen]) -> BulkResult:
        started = clock.perf_counter()
        result = BulkResult()
        skipped: Counter[str] = Counter()
        self._written = _normalize.ListenMap()
        self._span = None
        self._heard = 0
        self.lazy_loads = 0
        self.resolve_steps = 0
        self.pieces = 0
        self.longest_piece = 0.0
        self.piece_log = []
        self.ahead_taken = self.ahead_dropped = 0
        writer = self.store.bulk_writer()
        self._behind = WriteBehind()
        every = self.commit_every if self.commit_every is not None else self.store.commit_every
        pieces = self.in_pieces if self.in_pieces is not None else commits_in_pieces(self.store)
        try:
            if not pieces or self.store.in_transaction:
                self._run_whole(listens, writer, result, skipped)
            else:
                # The writer's settings (the import's page cache) from the start: a run
                # in pieces matches ahead, and so reads, while the file is read.
                writer.begin()
                try:
                    self._run_in_pieces(listens, writer, result, skipped, every or 0.0)
                finally:
                    writer.end()
        finally:
            # The writer's ``end`` closed the second connection, if there was one.
            self._via = None
        self._written = _normalize.ListenMap()
        result.already_present += self._heard
        result.skipped = skipped
        result.seconds = clock.perf_counter() - started
        if self.progress is not None:
            self.progress(result.read)
        return result

    def _run_whole(
        self,
        listens: Iterable[Listen],
        writer: BulkWriter,
        result: BulkResult,
        skipped: Counter[str],
    ) -> None:
        """One transaction, matching each chunk as it arrives (PostgreSQL, nested runs)."""
        salt = self.settings.salt
        chunk_size = min(self.chunk_size, self.batch_size)
        # The first catalog reads through a second connection, so that its queries never
        # wait for the writer thread: what it cannot see there, the transaction's own
        # rows, it holds in memory. Not when the transaction has written before this
        # run (a caller's earlier work), nor for a later batch's catalog, which must
        # see the rows of the batches before it.
        own = not self.store.wrote_in_transaction()
        with ExitStack() as stack:
            opened = False
            batch: _Batch | None = None
            catalog_rows: int | None = None
            for chunk in _chunks(listens, chunk_size):
                result.read += len(chunk)
                if batch is None:
                    if not opened:
                        # The transaction begins with the first chunk: chunks may be
                        # resolved as they arrive, while the rest of the file is parsed.
                        self._open(stack, writer)
                        opened = True
                        if own and self.second_reader:
                            self._via = writer.snapshot_reader()
                        catalog_rows = writer.catalog_rows(SMALL_CATALOG)
                        self._span = self.store.listen_span(self.user_id)
                    batch = _Batch()
                    batch.catalog = self._catalog(writer)
                    batch.step = self._step(catalog_rows, result, chunk_size)
                self._add(chunk, salt, batch, skipped)
                full = (
                    len(batch.first) >= self.batch_size or len(batch.gids) >= self.max_batch_listens
                )
                if full or len(batch.gids) - batch.pending >= batch.step:
                    self._resolve(batch, writer, skipped)
                    # Handed to the writer: only the run's ListenMap needs them now.
                    _drop_sent(batch)
                    heap.trim()
                if full:
                    self._finish(batch, writer, result)
                    batch = None
                    self._via = None
                if self.progress is not None:
                    self.progress(result.read)
            if batch is not None:
                # Read: the keys' strings are not needed any more (see ``_run_in_pieces``).
                batch.key_ids, batch.shared = {}, {}
                heap.trim()
                self._resolve(batch, writer, skipped)
                self._finish(batch, writer, result)

    def _run_in_pieces(
        self,
        listens: Iterable[Listen],
        writer: BulkWriter,
        result: BulkResult,
        skipped: Counter[str],
        every: float,
    ) -> None:
        """Read the whole file, then match and write it in transactions of ``every`` seconds.

        Nothing is written before the whole file has been read (a file found broken
        leaves nothing behind). Each transaction ends at a *safe cut* (``safe_cuts``), so
        that a run killed between two commits and run again gives the catalog of a clean
        run. A transaction that finds another writer's commit since the previous one
        starts a new catalog: everything is read again, so the result is the one of the
        file's remaining listens imported after that commit.

        Matching needs no lock: while the file is read and between transactions, the
        next piece is matched ahead (``_match_ahead``), and its transaction only writes
        it, if nobody else committed meanwhile; if somebody did, that matching is thrown
        away and the piece is matched under the lock, as without it.
        """
        salt = self.settings.salt
        batch = _Batch()
        ahead: _Ahead | None = None
        if self.match_ahead and every > 0 and self.store.data_version() is not None:
            ahead = _Ahead()
            # Catalogs read what is committed through a second connection, so that the
            # next piece is matched while this one is written (None: this connection).
            self._via = writer.snapshot_reader()
        cap = self.ahead_rows or max(1, int(every * AHEAD_ROWS_PER_SECOND))
        for chunk in _chunks(listens, self.chunk_size):
            result.read += len(chunk)
            self._add(chunk, salt, batch, skipped)
            if ahead is not None:
                # The parse worker is the slower side of reading: match meanwhile.
                self._match_ahead(batch, writer, result, ahead, len(batch.gids), cap, None)
            if self.progress is not None:
                self.progress(result.read)
        # Read: the keys' strings are not needed any more (a few dozen MB at 1M listens).
        batch.key_ids, batch.shared = {}, {}
        heap.trim()
        total = len(batch.gids)
        self._written.reserve(total)
        if not total:
            return
        safe = safe_cuts(batch.times)
        # Listens per step: at most ``chunk_size`` (or the explicit ``resolve_step``), fewer
        # while steps are slow (a new catalog matches everything afresh), so that the
        # budget is checked often enough to be kept.
        most = self.resolve_step or self.chunk_size
        step = most
        gap = self.store.commit_gap
        version: int | None = ahead.version if ahead is not None else None
        committed: float | None = None
        with self.store.exclusive():
            try:
                # Until every position is matched, and what was matched ahead written.
                while batch.pending < total or (ahead is not None and ahead.start is not None):
                    if ahead is not None and committed is not None:
                        # Other writers' turn (see ``SqliteStore``): match the next piece.
                        self._match_ahead(batch, writer, result, ahead, total, cap, safe)
                        version = ahead.version
                    if committed is not None:
                        left = committed + gap - clock.perf_counter()
                        if left > 0:
                            clock.sleep(left)
                    with self.store.transaction():
                        begun = clock.perf_counter()
                        try:
                            now = self.store.data_version()
                            stale = batch.catalog is None or now is None or now != version
                            taken = False
                            if ahead is not None and ahead.start is not None:
                                if stale:
                                    self._drop_ahead(batch, ahead, result)
                                else:
                                    self._take_ahead(ahead, skipped)
                                    taken = True
                            if stale:
                                self._new_catalog(batch, writer, result)
                            version = now
                            if ahead is not None:
                                ahead.version = now
                            writer.refresh()
                            if taken:
                                # Matched ahead: only to the next safe cut, then write.
                                end = batch.pending
                                while not safe[end]:
                                    end += 1
                                if end > batch.pending:
                                    self._resolve(batch, writer, skipped, end)
                            while not taken and batch.pending < total:
                                end = min(batch.pending + step, total)
                                while not safe[end]:
                                    end += 1
                                started, done = clock.perf_counter(), batch.pending
                                self._resolve(batch, writer, skipped, end)
                                if self._full(batch):
                                    if ahead is not None:
                                        break  # a new catalog after the commit
                                    self._new_catalog(batch, writer, result)
                                # Stop before a step that would end past the budget (the
                                # next one, and the last writes, take about as long).
                                now_ = clock.perf_counter()
                                last = now_ - started
                                if self.resolve_step is None and every > 0:
                                    per = max(last, 1e-6) / max(1, end - done)
                                    step = min(most, max(MIN_STEP, int(every / 4 / per)))
                                if now_ - begun + last >= every:
                                    break
                            self._write_changes(batch, writer)
                            upto = batch.pending
                            if (
                                ahead is not None
                                and self._via is not None
                                and upto < total
                                and not self._full(batch)
                            ):
                                # While the writer thread writes this piece, match the
                                # next one (its reads use the second connection).
                                self._match_ahead(
                                    batch, writer, result, ahead, total, cap, safe, now
                                )
                            self._behind.sync()
                            # Still under the lock: the order of commits.
                            ending = clock.perf_counter()
                        except BaseException:
                            # The writer thread must be idle before the rollback.
                            self._behind.close()
                            raise
                    committed = clock.perf_counter()
                    self.pieces += 1
                    self.longest_piece = max(self.longest_piece, committed - begun)
                    self.piece_log.append((begun, ending, upto))
                    if self.on_commit is not None:
                        self.on_commit(upto / total)
                    # Sent and committed: only the run's ListenMap needs them now (what
                    # follows was matched ahead for the next piece).
                    _drop_sent(batch)
                    heap.trim()
                    if upto < total and gap:
                        # A checkpoint in the pause (which ends before the next piece).
                        writer.idle()
            finally:
                self._behind.close()
        if batch.catalog is not None:
            self._count_catalog(batch.catalog, result)
        self._count_listens(batch, result)

    def _full(self, batch: _Batch) -> bool:
        """Whether the catalog holds enough keys or listens for a new one to start (bounds
        memory, as a batch does in one transaction)."""
        return (
            batch.ensured_keys >= self.catalog_keys
            or batch.pending - batch.since >= 8 * self.catalog_keys
        )

    def _match_ahead(
        self,
        batch: _Batch,
        writer: BulkWriter,
        result: BulkResult,
        ahead: _Ahead,
        limit: int,
        cap: int,
        safe: bytearray | None,
        locked: int | None = None,
    ) -> None:
        """Match positions up to ``limit``, writing nothing (outside the write lock, or
        under it while the writer thread writes: ``locked``, the lock's data_version).

        Stops once about ``cap`` rows wait to be written (a transaction's worth), or the
        catalog is full, or (``locked``) the writer thread is done. While the file is
        read, in whole steps; once it is (``safe``), steps end at safe cuts.
        """
        if ahead.start is None:
            if locked is not None:
                # The connection is the writer thread's now; the catalog is current.
                assert batch.catalog is not None and locked == ahead.version
                now: int | None = locked
            else:
                now = self.store.data_version()
            if batch.catalog is None or now != ahead.version or self._full(batch):
                # Everything the old catalog made is written and committed.
                self._new_catalog(batch, writer, result)
                ahead.version = now
            catalog = batch.catalog
            assert catalog is not None
            ahead.start = batch.pending
            ahead.changes = catalog.changes
            ahead.duplicates, ahead.already, ahead.heard = (
                batch.duplicates,
                batch.already,
                self._heard,
            )
        catalog = batch.catalog
        assert catalog is not None
        most = self.resolve_step or self.chunk_size
        while batch.pending < limit:
            rows = 2 * (catalog.changes - ahead.changes) + len(batch.out_tracks) - batch.sent
            if rows >= cap or self._full(batch) or (locked is not None and not self._behind.busy):
                return
            end = min(batch.pending + most, limit)
            if safe is not None:
                while not safe[end]:
                    end += 1
            elif end - batch.pending < most:
                return  # while reading, whole steps only (each is a round of queries)
            self._resolve(batch, writer, Counter(), end, ahead=ahead.skips)

    def _skip(self, skipped: Counter[str], listen: Listen, reason: str) -> None:
        """Count a skipped listen and report it (``--skipped``)."""
        skipped[reason] += 1
        if self.on_skip is not None:
            self.on_skip(listen, reason)

    def _take_ahead(self, ahead: _Ahead, skipped: Counter[str]) -> None:
        """What was matched ahead holds: its skips count now."""
        for listen, reason in ahead.skips:
            self._skip(skipped, listen, reason)
        ahead.skips = []
        ahead.start = None
        self.ahead_taken += 1

    def _drop_ahead(self, batch: _Batch, ahead: _Ahead, result: BulkResult) -> None:
        """Another writer committed since the catalog was made: forget what was matched
        ahead (the catalog too; what it wrote before is counted) and go back."""
        catalog = batch.catalog
        assert catalog is not None and ahead.start is not None
        self.lazy_loads += catalog.lazy_loads
        result.new_artists += len(catalog.real_artists)
        result.new_albums += len(catalog.real_albums)
        result.new_tracks += len(catalog.real_tracks)
        batch.catalog = None
        batch.pending = ahead.start
        batch.duplicates, batch.already, self._heard = (
            ahead.duplicates,
            ahead.already,
            ahead.heard,
        )
        del batch.out_tracks[batch.sent :]
        del batch.out_times[batch.sent :]
        del batch.out_clients[batch.sent :]
        batch.local.clear()
        ahead.skips = []
        ahead.start = None
        self.ahead_dropped += 1

    def _new_catalog(self, batch: _Batch, writer: BulkWriter, result: BulkResult) -> None:
        """Start matching against the database as it is now (what the old catalog knew
        is written and, but for the current transaction, committed)."""
        if batch.catalog is not None:
            self._close_catalog(batch, writer, result)
        batch.catalog = self._catalog(writer)
        batch.memo = array("q")
        # Provisional ids restart with the catalog: the old ones must not match.
        batch.local = {}
        batch.ensured = bytearray(len(batch.first))
        batch.ensured_keys = 0
        batch.since = batch.pending
        self._span = self.store.listen_span(self.user_id)

    def _close_catalog(self, batch: _Batch, writer: BulkWriter, result: BulkResult) -> None:
        """Write what the batch's catalog still holds and count what it created."""
        assert batch.catalog is not None
        self._write_changes(batch, writer)
        self._behind.sync()
        self._count_catalog(batch.catalog, result)

    @staticmethod
    def _count_listens(batch: _Batch, result: BulkResult) -> None:
        result.duplicates += batch.duplicates
        result.inserted += batch.inserted
        result.already_present += batch.already + batch.offered - batch.inserted

    def _count_catalog(self, catalog: MemoryCatalog, result: BulkResult) -> None:
        self.lazy_loads += catalog.lazy_loads
        result.new_artists += len(catalog.new_artists)
        result.new_albums += len(catalog.new_albums)
        result.new_tracks += len(catalog.new_tracks)

    def _step(self, catalog_rows: int | None, result: BulkResult, chunk_size: int) -> int:
        """Listens per resolve step for the next batch (see ``resolve_step``)."""
        if self.resolve_step is not None:
            return self.resolve_step
        if catalog_rows is None or catalog_rows + result.new_tracks < SMALL_CATALOG:
            return chunk_size
        return min(self.max_batch_listens, LARGE_CATALOG_STEP)

    def _open(self, stack: ExitStack, writer: BulkWriter) -> None:
        # LIFO: the writer thread stops before the transaction ends (commit/rollback),
        # which ends before the writer's settings are restored, so SQLite commits with
        # the large page cache still in place.
        stack.callback(writer.end)
        stack.enter_context(self.store.transaction())
        writer.begin()
        stack.callback(self._behind.close)

    def _catalog(self, writer: BulkWriter) -> MemoryCatalog:
        """A new in-memory catalog; its reads wait for the writes queued before them, or
        go through the run's second connection (``_via``)."""
        reader = SliceReader(self.store, writer, self._behind.sync, self._via)
        return MemoryCatalog(reader, self.store.dialect)

    def _add(
        self,
        chunk: list[Listen],
        salt: str,
        batch: _Batch,
        skipped: Counter[str],
    ) -> None:
        prepared, keys, rejected = _normalize.normalize_batch(chunk, salt)
        for index, reason in rejected:
            self._skip(skipped, chunk[index], reason)
        key_ids = batch.key_ids
        gids, times, durations, clients = batch.gids, batch.times, batch.durations, batch.clients
        first, key_hashes = batch.first, batch.key_hashes
        for p, key in zip(prepared, keys, strict=True):
            gid = key_ids.get(key)
            if gid is None:
                gid = key_ids[key] = len(key_ids)
                first.append(_shared(p, batch.shared))
                key_hashes.append(hash(key))
            elif p.entities is not None and p.entities != first[gid].entities:
                batch.variants[len(gids)] = p.entities
            gids.append(gid)
            times.append(p.time)
            durations.append(p.duration)
            clients.append(p.client)

    def _heard_at(self, batch: _Batch, start: int, end: int) -> set[int]:
        """The seconds among positions [start, end) heard before this run (``listen``).

        Only seconds inside the span of the user's earlier listens are asked about, in
        one set query. The database then holds the listens from before the run and the
        run's own inserts (all handed over, after the sync); ``_written`` names the
        latter. A second heard before is skipped whole, so the run never writes a listen
        there: what it wrote is always its own insert.
        """
        if self._span is None:
            return set()
        lo, hi = self._span
        times = {t for t in batch.times[start:end] if lo <= t <= hi}
        if not times:
            return set()
        assert batch.catalog is not None
        written = self._written
        return {
            t
            for t, track_id in batch.catalog.listens_at(times, self.user_id)
            if written.get(track_id, t) is None
        }

    # --- one batch ---------------------------------------------------------------------

    def _load_slice(self, batch: _Batch, start: int, end: int, heard: set[int]) -> None:
        """Load the slice that keys of positions [start, end) new to the catalog can touch
        (not those whose listens are all heard before)."""
        gids, times, first = batch.gids, batch.times, batch.first
        ensured = batch.ensured
        if len(ensured) < len(first):
            ensured.extend(bytes(len(first) - len(ensured)))
        if heard:
            step_keys = {gids[pos] for pos in range(start, end) if times[pos] not in heard}
        else:
            step_keys = set(gids[start:end])
        fresh = [gid for gid in step_keys if not ensured[gid]]
        if fresh:
            seps = self.settings.compiled
            needs = Needs()
            for gid in fresh:
                ensured[gid] = 1
                needs.add(first[gid], seps)
            batch.ensured_keys += len(fresh)
            assert batch.catalog is not None
            batch.catalog.ensure(needs)

    def _resolve(
        self,
        batch: _Batch,
        writer: BulkWriter,
        skipped: Counter[str],
        end: int | None = None,
        *,
        ahead: list[tuple[Listen, str]] | None = None,
    ) -> None:
        """Resolve the pending positions up to ``end`` (default: all), in file order.

        One step: a chunk, or the batch. The catalog slice is loaded only for the keys
        this step brings into the catalog. While a catalog lives only this run writes
        the catalog tables (a run committing in pieces starts a new catalog when another
        writer committed in between), so a key loaded later sees what it would have seen
        at the catalog's start plus the run's own changes, which memory holds.
        """
        seps = self.settings.compiled
        memo = batch.memo
        catalog = batch.catalog
        assert catalog is not None
        gids = batch.gids
        first = batch.first

        self.resolve_steps += 1
        if len(memo) < len(first):
            memo.frombytes(_NO_MEMO * (len(first) - len(memo)))
        end = len(gids) if end is None else end
        start, batch.pending = batch.pending, end
        times = batch.times
        heard = self._heard_at(batch, start, end)
        self._load_slice(batch, start, end, heard)
        # What the previous step created and changed is written while this one is matched
        # (after this step's queries: they must not wait for it). Matching ahead of the
        # write lock (``ahead``) writes nothing and holds its skips back.
        if ahead is None:
            self._write_changes(batch, writer)

        # The stream, in file order.
        variants, key_hashes = batch.variants, batch.key_hashes
        written = self._written
        local = batch.local
        stored_track = catalog.stored_track
        out_tracks, out_times, out_clients = batch.out_tracks, batch.out_times, batch.out_clients
        duplicates = already = 0
        durations, clients = batch.durations, batch.clients
        for pos in range(start, end):
            if heard and times[pos] in heard:
                self._heard += 1
                continue
            gid = gids[pos]
            track_id = memo[gid]
            if track_id < 0:
                listen = first[gid]
                duration = durations[pos]
                entities = variants.get(pos) if variants else None
                if duration != listen.duration or entities is not None:
                    listen = replace(
                        listen,
                        duration=duration,
                        entities=entities if entities is not None else listen.entities,
                    )
                before = catalog.changes
                catalog.start_reads()
                try:
                    track_id = resolve(catalog, listen, seps).track_id
                except InvalidListen as exc:
                    if catalog.changes != before:
                        # The live path would roll such changes back with the listen's
                        # transaction; the memory catalog cannot, so refuse to guess.
                        raise RuntimeError(
                            "the resolver changed the catalog before rejecting a listen"
                        ) from exc
                    if ahead is not None:
                        ahead.append((listen, exc.reason))
                    else:
                        self._skip(skipped, listen, exc.reason)
                    continue
                # A change this resolution made may alter what earlier ones read: those
                # are matched again at their next listen, as Koito would match them.
                for stale in catalog.take_stale():
                    memo[stale] = -1
                if not catalog.volatile:
                    memo[gid] = track_id
                    catalog.watch(gid)
            t = times[pos]
            slot = (track_id, t)
            prev = local.get(slot)
            if prev is not None:
                if prev == gid:
                    duplicates += 1
                else:
                    already += 1
                continue
            stored = track_id if track_id < PROVISIONAL_BASE else stored_track(track_id)
            if stored is not None:
                # A str hash: equal keys hash alike; unequal ones collide with odds of
                # 2**-64, which could only move one listen between two summary counts.
                h = written.get(stored, t)
                if h is not None:
                    if h == key_hashes[gid]:
                        duplicates += 1
                    else:
                        already += 1
                    continue
            local[slot] = gid
            out_tracks.append(track_id)
            out_times.append(t)
            out_clients.append(clients[pos])
        batch.duplicates += duplicates
        batch.already += already

    def _finish(self, batch: _Batch, writer: BulkWriter, result: BulkResult) -> None:
        """Write the batch and count what it did."""
        self._close_catalog(batch, writer, result)
        self._count_listens(batch, result)

    # --- writing -------------------------------------------------------------------------

    def _write_changes(self, batch: _Batch, writer: BulkWriter) -> None:
        """Hand what the batch created or changed since the last call to the writer thread.

        The change set is built here, from the catalog as it is now (later matching
        changes it); the thread only hands it to the store's writer.
        """
        cat = batch.catalog
        assert cat is not None

        def allocate(table: str, count: int) -> list[int]:
            # PostgreSQL asks its sequences, through the second connection if there is
            # one; else the run's connection must be idle (the writer thread done).
            if count and self._via is not None:
                ids = self._via.allocate_ids(table, count)
                if ids is not None:
                    return ids
            if count:
                self._behind.sync()
            return writer.allocate_ids(table, count)

        changes = cat.take_changes(allocate)
        # The listens matched since the last call.
        start, batch.sent = batch.sent, len(batch.out_tracks)
        batch.offered += batch.sent - start
        out_tracks = batch.out_tracks[start:]
        out_times = batch.out_times[start:]
        out_clients = batch.out_clients[start:]
        real = cat.real_track
        for tr, t, c in zip(out_tracks, out_times, out_clients, strict=True):
            if tr < PROVISIONAL_BASE:
                changes.listens.append((tr, t, c))
            else:
                changes.new_track_listens.append((real(tr), t, c))
        user_id = self.user_id

        def write() -> None:
            batch.inserted += writer.write(changes, user_id)

        if changes:
            # One step's write at a time: matching that reads through a second
            # connection never waits for the writer otherwise, and would queue the
            # steps' rows without bound (1M listens in one batch: +70 MB peak).
            self._behind.sync()
            self._behind.submit(write)
        # Remember the run's own listens (real track ids): later batches tell an exact
        # duplicate from another key's listen by them, and the "heard before this run"
        # check leaves them out.
        # ``local`` holds just these listens: from here on ``_written`` answers for them
        # (a run of a million listens would otherwise keep a dict entry for each).
        written, local, key_hashes = self._written, batch.local, batch.key_hashes
        for tr, t in zip(out_tracks, out_times, strict=True):
            written.set(real(tr), t, key_hashes[local[(tr, t)]])
        local.clear()
