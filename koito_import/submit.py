"""The live path: one listen in, one listen written, as Koito's SubmitListen would.

Every listen is matched from scratch against the database, in one transaction, exactly
as Koito matches a scrobble: no cache stands between the listen and the catalog, so
nothing another writer did since (Koito's own scrobbles, enrichment, edits in its UI)
can be missed. Looping this over a file is the per-listen reference path the bulk path
is checked against.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from koito_import import _normalize
from koito_import.catalog import Resolved
from koito_import.counts import ImportCounts
from koito_import.errors import InvalidListen
from koito_import.listen import DEFAULT_USER_ID, Listen
from koito_import.resolver import resolve
from koito_import.settings import MatchSettings
from koito_import.stores import Store


@dataclass(frozen=True, slots=True)
class SubmitResult:
    #: False when the same listen (track and second) was already there.
    inserted: bool
    resolved: Resolved


def submit_listen(
    store: Store,
    listen: Listen,
    settings: MatchSettings | None = None,
    *,
    user_id: int = DEFAULT_USER_ID,
) -> SubmitResult:
    """Write one listen; raises ``InvalidListen`` when it cannot be imported."""
    settings = settings or MatchSettings()
    prepared = _normalize.prepare(listen)
    with store.transaction():
        resolved = resolve(store.catalog(), prepared, settings.compiled)
        inserted = store.insert_listen(resolved.track_id, prepared.time, prepared.client, user_id)
    return SubmitResult(inserted, resolved)


def replay(
    store: Store,
    listens: Iterable[Listen],
    settings: MatchSettings | None = None,
    *,
    user_id: int = DEFAULT_USER_ID,
    progress: Callable[[int], None] | None = None,
    on_skip: Callable[[Listen, str], None] | None = None,
) -> ImportCounts:
    """Import listens one by one, each matched from scratch: the per-listen reference path.

    A listen heard before this run (``listen``: the user had a listen at that second) is
    counted as already present and not matched, exactly as the bulk path does; the
    run's own inserts never count as heard before.
    """
    out = ImportCounts()
    before = store.counts()
    span = store.listen_span(user_id)
    mine: set[tuple[int, int]] = set()
    for listen in listens:
        out.read += 1
        try:
            prepared = _normalize.prepare(listen)
            t = prepared.time
            if span is not None and span[0] <= t <= span[1]:
                heard = store.tracks_heard_at(t, user_id)
                if any((track, t) not in mine for track in heard):
                    out.already_present += 1
                    continue
            result = submit_listen(store, prepared, settings, user_id=user_id)
        except InvalidListen as exc:
            out.skipped[exc.reason] += 1
            if on_skip is not None:
                on_skip(listen, exc.reason)
            continue
        if result.inserted:
            # The run's own listen: it never makes a later one "heard before".
            mine.add((result.resolved.track_id, t))
            out.inserted += 1
        else:
            out.already_present += 1
        if progress is not None and out.read % 1000 == 0:
            progress(out.read)
    # The live path does not say what it created: count the tables around the run.
    after = store.counts()
    out.new_artists = after.artists - before.artists
    out.new_albums = after.albums - before.albums
    out.new_tracks = after.tracks - before.tracks
    return out
