"""The live path and the lookup cache, on both backends.

Statements are counted where they really go: SQLite's trace callback reports every
statement the engine runs; on PostgreSQL libpq's protocol trace shows every Parse/Query
message the client sends to the server.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from psycopg import pq

from koito_import.listen import Listen
from koito_import.settings import MatchSettings
from koito_import.stores import Store, open_store
from koito_import.submit import submit_listen

_PG_SENT = re.compile(r'^F\t\d+\t(?:Parse\t "[^"]*" "(?P<p>.*)" \d+|Query\t "(?P<q>.*)")', re.S)


@pytest.fixture
def store(db_target: str) -> Iterator[Store]:
    with open_store(db_target) as s:
        yield s


@contextmanager
def statements(store: Store) -> Iterator[list[str]]:
    """Collect the SQL statements the database receives inside the block."""
    sent: list[str] = []
    if store.dialect == "sqlite":
        store.conn.set_trace_callback(sent.append)
        try:
            yield sent
        finally:
            store.conn.set_trace_callback(None)
        return
    with tempfile.TemporaryFile("w+") as trace:
        pgconn = store.conn.pgconn
        pgconn.trace(trace.fileno())
        pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        try:
            yield sent
        finally:
            pgconn.untrace()
            trace.seek(0)
            for line in trace:
                m = _PG_SENT.match(line)
                if m:
                    sent.append(m.group("p") or m.group("q"))


def verbs(sent: list[str]) -> list[str]:
    return [s.split(None, 1)[0].upper() for s in sent]


LISTEN = Listen(artist="Magnify Tokyo", title="Song", album="Album", time=100, client="test")


def test_cache_hit_costs_one_select_and_one_insert(store: Store) -> None:
    first = submit_listen(store, LISTEN)
    assert not first.cache_hit
    with statements(store) as sent:
        again = submit_listen(store, Listen(**{**_fields(LISTEN), "time": 200}))
    assert again.cache_hit and again.inserted
    assert verbs(sent) == ["SELECT", "INSERT"], sent
    assert again.resolved.track_id == first.resolved.track_id
    assert store.execute("SELECT count(*) FROM listens").fetchone()[0] == 2


def test_cache_miss_runs_the_full_match_in_one_transaction(store: Store) -> None:
    with statements(store) as sent:
        submit_listen(store, LISTEN)
    kinds = verbs(sent)
    assert kinds[0] == "SELECT"  # the lookup
    assert "BEGIN" in kinds and kinds[-1] == "COMMIT"
    assert kinds.count("INSERT") >= 6  # artist, alias, album, links, track, listen, lookup row
    row = store.execute("SELECT artist_id, album_id, track_id FROM track_lookup").fetchone()
    assert tuple(row) == (1, 1, 1)


def _fields(listen: Listen) -> dict:
    return {f: getattr(listen, f) for f in listen.__dataclass_fields__}


def test_lookup_key_is_storable_and_case_sensitive(store: Store) -> None:
    submit_listen(store, Listen(artist="a\u00e9\U0001f600", title="t", time=1))
    submit_listen(store, Listen(artist="A\u00c9\U0001f600", title="t", time=1))
    keys = [r[0] for r in store.execute("SELECT lookup_key FROM track_lookup").fetchall()]
    assert len(keys) == 2 and all(re.fullmatch(r"[0-9a-f]{32}", k) for k in keys)
    assert store.execute("SELECT count(*) FROM artists").fetchone()[0] == 2


def test_featured_artist_listen_does_not_reuse_solo_resolution(store: Store) -> None:
    solo = submit_listen(store, Listen(artist="A", title="T", artist_names=("A",), time=1))
    feat = submit_listen(store, Listen(artist="A", title="T", artist_names=("A", "B"), time=2))
    assert not feat.cache_hit
    assert feat.resolved.track_id != solo.resolved.track_id


def test_separator_setting_is_part_of_the_key(store: Store) -> None:
    listen = Listen(artist="A & B", title="T", time=1)
    submit_listen(store, listen)
    other = submit_listen(
        store, Listen(artist="A & B", title="T", time=2), MatchSettings.from_value(r"\s*&\s*")
    )
    assert not other.cache_hit
    assert store.execute("SELECT count(*) FROM tracks").fetchone()[0] == 2


def test_deleting_an_entity_drops_its_lookup_rows(store: Store) -> None:
    submit_listen(store, LISTEN)
    store.execute("DELETE FROM tracks")
    assert store.execute("SELECT count(*) FROM track_lookup").fetchone()[0] == 0
    again = submit_listen(store, LISTEN)
    assert not again.cache_hit and again.inserted


def test_mbid_replacement_invalidates_cached_resolutions(store: Store) -> None:
    m1, m2 = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"
    submit_listen(store, Listen(artist="N", artist_names=("N",), title="T", time=1))
    first = Listen(artist="N", mbid_mappings=(("N", m1),), title="T", time=2)
    submit_listen(store, first)
    submit_listen(store, Listen(artist="N", mbid_mappings=(("N", m2),), title="T", time=3))
    # Replaying the first listen must set M1 again, as Koito would: no stale cache hit.
    replay = submit_listen(store, Listen(**{**_fields(first), "time": 4}))
    assert not replay.cache_hit
    assert str(store.execute("SELECT musicbrainz_id FROM artists").fetchone()[0]) == m1


def test_cache_clear_empties_the_table(store: Store) -> None:
    submit_listen(store, LISTEN)
    assert store.lookup_clear() == 1
    assert store.execute("SELECT count(*) FROM track_lookup").fetchone()[0] == 0
    assert store.execute("SELECT count(*) FROM listens").fetchone()[0] == 1
