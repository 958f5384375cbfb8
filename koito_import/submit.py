"""The live path: one listen in, one listen written, as Koito's SubmitListen would.

A lookup-cache hit costs exactly one SELECT and one INSERT. A miss runs the full match
inside one transaction, writes the listen and remembers the resolution, so the next
identical listen is a hit. Looping this over a file is the per-listen reference path
the bulk path is checked against.
"""

from __future__ import annotations

from dataclasses import dataclass

from koito_import import _normalize
from koito_import.catalog import Resolved
from koito_import.listen import DEFAULT_USER_ID, Listen
from koito_import.resolver import resolve
from koito_import.settings import MatchSettings
from koito_import.stores import Store


@dataclass(frozen=True, slots=True)
class SubmitResult:
    #: False when the same listen (track and second) was already there.
    inserted: bool
    #: True when the lookup cache answered without matching.
    cache_hit: bool
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
    key = _normalize.lookup_key(prepared, settings.salt)
    cached = store.lookup_get(key)
    if cached is not None:
        inserted = store.insert_listen(cached.track_id, prepared.time, prepared.client, user_id)
        return SubmitResult(inserted, True, cached)
    with store.transaction():
        resolved = resolve(store.catalog(), prepared, settings.compiled)
        inserted = store.insert_listen(resolved.track_id, prepared.time, prepared.client, user_id)
        store.lookup_put(key, resolved)
    return SubmitResult(inserted, False, resolved)
