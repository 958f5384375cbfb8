"""The live path, on both backends: every listen matched from the catalog itself.

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


def _fields(listen: Listen) -> dict:
    return {f: getattr(listen, f) for f in listen.__dataclass_fields__}


def test_every_listen_is_matched_in_one_transaction(store: Store) -> None:
    submit_listen(store, LISTEN)
    with statements(store) as sent:
        again = submit_listen(store, Listen(**{**_fields(LISTEN), "time": 200}))
    kinds = verbs(sent)
    assert "BEGIN" in kinds and kinds[-1] == "COMMIT"
    # Matched again from the catalog itself: artist, album, track lookups, then the listen.
    assert kinds.count("SELECT") >= 3 and kinds.count("INSERT") >= 1
    assert not any("lookup" in statement.lower() for statement in sent)
    assert again.inserted and again.resolved.track_id == 1
    assert store.execute("SELECT count(*) FROM listens").fetchone()[0] == 2


def test_a_repeat_sees_what_koito_changed_meanwhile(store: Store) -> None:
    """Koito's own edits (here: renaming the track in its UI) change the next match."""
    first = submit_listen(store, LISTEN)
    store.execute(
        "INSERT INTO track_aliases (track_id, alias, source, is_primary) "
        "VALUES (1, 'Song (Live)', 'Manual', ?)",
        (False,),
    )
    store.execute(
        "UPDATE track_aliases SET is_primary = (alias = 'Song (Live)') WHERE track_id = 1"
    )
    again = submit_listen(store, Listen(**{**_fields(LISTEN), "time": 200}))
    # No track has the primary title "Song" any more: Koito makes a new one.
    assert again.resolved.track_id != first.resolved.track_id
    assert store.execute("SELECT count(*) FROM tracks").fetchone()[0] == 2


def test_names_are_case_sensitive_and_storable(store: Store) -> None:
    submit_listen(store, Listen(artist="a\u00e9\U0001f600", title="t", time=1))
    submit_listen(store, Listen(artist="A\u00c9\U0001f600", title="t", time=1))
    assert store.execute("SELECT count(*) FROM artists").fetchone()[0] == 2


def test_featured_artist_listen_does_not_reuse_solo_resolution(store: Store) -> None:
    solo = submit_listen(store, Listen(artist="A", title="T", artist_names=("A",), time=1))
    feat = submit_listen(store, Listen(artist="A", title="T", artist_names=("A", "B"), time=2))
    assert feat.resolved.track_id != solo.resolved.track_id


def test_separator_setting_changes_the_match(store: Store) -> None:
    submit_listen(store, Listen(artist="A & B", title="T", time=1))
    submit_listen(
        store, Listen(artist="A & B", title="T", time=2), MatchSettings.from_value(r"\s*&\s*")
    )
    assert store.execute("SELECT count(*) FROM tracks").fetchone()[0] == 2


def test_deleted_entities_are_made_again(store: Store) -> None:
    submit_listen(store, LISTEN)
    store.execute("DELETE FROM tracks")
    again = submit_listen(store, LISTEN)
    assert again.inserted
    assert store.execute("SELECT count(*) FROM tracks").fetchone()[0] == 1


def test_mbid_replacement_flip_flops_as_in_koito(store: Store) -> None:
    m1, m2 = "11111111-1111-4111-8111-111111111111", "22222222-2222-4222-8222-222222222222"
    submit_listen(store, Listen(artist="N", artist_names=("N",), title="T", time=1))
    first = Listen(artist="N", mbid_mappings=(("N", m1),), title="T", time=2)
    submit_listen(store, first)
    submit_listen(store, Listen(artist="N", mbid_mappings=(("N", m2),), title="T", time=3))
    # Replaying the first listen sets M1 again, as Koito would.
    submit_listen(store, Listen(**{**_fields(first), "time": 4}))
    assert str(store.execute("SELECT musicbrainz_id FROM artists").fetchone()[0]) == m1
