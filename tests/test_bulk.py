"""The bulk path against the per-listen path, on real SQLite and PostgreSQL databases.

Every test feeds the same listens to ``submit_listen`` (looped, the reference) in one
database and to ``BulkSubmitter`` in another, then requires identical databases: the same
rows with the same ids in every catalog table, the same listens and the same lookup-cache
rows (only random image ids may differ, so only whether an image is set is compared).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest

from koito_import.bulk import BulkResult, BulkSubmitter
from koito_import.bulk import submitter as bulk_module
from koito_import.listen import EntityRecord, KoitoEntities, Listen
from koito_import.settings import MatchSettings
from koito_import.stores import Store, open_store
from koito_import.stores.postgres import PostgresStore
from koito_import.submit import replay, submit_listen
from tests.snapshot import catalog_snapshot, table_rows

M1 = "11111111-1111-4111-8111-111111111111"
M2 = "22222222-2222-4222-8222-222222222222"
M3 = "33333333-3333-4333-8333-333333333333"


# --- helpers -----------------------------------------------------------------------------


@dataclass
class Reference:
    inserted: int = 0
    not_inserted: int = 0
    skipped: Counter | None = None


def per_listen(
    store: Store, listens: Iterable[Listen], settings: MatchSettings | None = None
) -> Reference:
    """The cache-free reference path (``submit.replay``)."""
    res = replay(store, listens, settings)
    return Reference(inserted=res.inserted, not_inserted=res.already_present, skipped=res.skipped)


def bulk(store: Store, listens: Iterable[Listen], **kw: Any) -> BulkResult:
    """The bulk path; on SQLite it commits after every resolve step (the most cuts)."""
    if store.dialect == "sqlite" and "commit_every" not in kw:
        kw["commit_every"] = 0.0
        store.commit_gap = 0.0
    return BulkSubmitter(store, **kw).run(listens)


def assert_same(ref_store: Store, bulk_store: Store, *, ids: bool = True) -> None:
    assert catalog_snapshot(bulk_store) == catalog_snapshot(ref_store)
    if ids:
        a, b = table_rows(ref_store), table_rows(bulk_store)
        for table in a:
            assert b[table] == a[table], table


def assert_consistent(result: BulkResult) -> None:
    assert result.read == (
        sum(result.skipped.values()) + result.duplicates + result.inserted + result.already_present
    )


def compare(ref: Store, blk: Store, listens: list[Listen], **kw: Any) -> BulkResult:
    """Per-listen into ``ref``, bulk into ``blk``; both must end identical."""
    reference = per_listen(ref, listens, kw.get("settings"))
    result = bulk(blk, listens, **kw)
    assert_same(ref, blk)
    assert_consistent(result)
    assert result.inserted == reference.inserted
    assert result.duplicates + result.already_present == reference.not_inserted
    assert Counter(result.skipped) == reference.skipped
    return result


def _other_target(target: str, suffix: str) -> tuple[str, str | None]:
    """A second empty database of the same kind (and the PG name to drop, if any)."""
    if not target.startswith(("postgres://", "postgresql://")):
        return str(Path(target).with_name(f"koito-{suffix}.db")), None
    parts = urlsplit(target)
    name = parts.path.lstrip("/") + "_" + suffix
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return urlunsplit(parts._replace(path="/" + name)), name


@pytest.fixture
def stores(db_target: str) -> Iterator[tuple[Store, Store]]:
    """(reference store, bulk store): two fresh databases of the same backend."""
    other, dropme = _other_target(db_target, "bulk")
    ref, blk = open_store(db_target), open_store(other)
    try:
        yield ref, blk
    finally:
        ref.close()
        blk.close()
        if dropme is not None:
            with psycopg.connect(db_target, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{dropme}" WITH (FORCE)')


def L(artist: str = "A", title: str = "T", time: int = 1, **kw: Any) -> Listen:
    return Listen(artist=artist, title=title, time=time, **kw)


# --- matching order and names --------------------------------------------------------------


@pytest.mark.parametrize("order", ["solo_first", "feat_first"])
def test_order_effects(stores: tuple[Store, Store], order: str) -> None:
    solo = L("A", "T", 1, artist_names=("A",), album="X")
    feat = L("A", "T", 2, artist_names=("A", "B"), album="X")
    listens = [solo, feat, replace(solo, time=3)] if order == "solo_first" else [feat, solo]
    ref, blk = stores
    result = compare(ref, blk, listens)
    assert result.new_tracks == (2 if order == "solo_first" else 1)
    assert result.new_artists == 2 and result.new_albums == 1


def test_case_variants_stay_apart(stores: tuple[Store, Store]) -> None:
    listens = [
        L("Ab", "T", 1),
        L("AB", "T", 2),
        L("ab", "t", 3, artist_names=("ab", "AB", "Cd")),  # "AB" folds onto "ab": skipped
        L("Ab", "T", 4, artist_names=("Ab", "aB")),
        L("AB", "T", 5, album="t"),
    ]
    ref, blk = stores
    compare(ref, blk, listens)
    names = {r[0] for r in blk.execute("SELECT name FROM artists_with_name").fetchall()}
    assert {"Ab", "AB", "ab", "Cd"} <= names


def test_featured_artist_subsets(stores: tuple[Store, Store]) -> None:
    listens = [
        L("A feat. B", "Song", 1),
        L("A", "Song (feat. B)", 2),
        L("A · C", "Song", 3),
        L("A", "Song", 4, artist_names=("A", "B")),
        L("A", "Song", 5, artist_names=("B", "A")),
        L("A", "Song", 6, artist_names=("A",)),
        L("A & B", "Song [feat. C, D and E]", 7),
        L("A", "Song", 8, artist_names=("A", "B", "C")),
    ]
    ref, blk = stores
    compare(ref, blk, listens)


def test_shared_titles_on_different_albums(stores: tuple[Store, Store]) -> None:
    listens = [
        L("A", "Intro", 1, album="One"),
        L("A", "Intro", 2, album="Two"),
        L("B", "Intro", 3, album="One"),  # same album title, other artist: a new album
        L("A", "Intro", 4),  # no album: the track title is the album title
        L("A", "One", 5),  # a track named like an album
        L("A", "Intro", 6, album="One", artist_names=("A", "B")),
        L("B", "Intro", 7, album="One", artist_names=("B", "A")),
    ]
    ref, blk = stores
    compare(ref, blk, listens)


def test_mbids_reused_under_other_names(stores: tuple[Store, Store]) -> None:
    listens = [
        L("A", "T", 1, album="X", release_mbid=M1, recording_mbid=M2),
        L("A", "Other title", 2, album="Other album", release_mbid=M1, recording_mbid=M2),
        L("B", "T", 3, mbid_mappings=(("B", M3),)),
        L("Renamed", "T", 4, mbid_mappings=(("Renamed", M3),)),  # found by MBID, not name
        L("C", "U", 5, artist_mbids=(M3,)),  # found by MBID; C never created
        L("D", "U", 6, artist_mbids=(M1,)),  # unknown MBID: fall back to names
        L("E", "U", 7, artist_mbids=("", M3), artist_names=("E",)),  # nil MBID: names
        L("A", "V", 8, album="X", recording_mbid=M3),  # new track gets M3
        L("A", "V", 9, album="X", release_mbid=M2),  # album X by title gets M2
        L("A", "V", 10, album="X", release_mbid=M2, recording_mbid=M3),
    ]
    ref, blk = stores
    compare(ref, blk, listens)


def test_mbid_replacement_flip_flop(stores: tuple[Store, Store]) -> None:
    n1 = L("N", "T", 2, mbid_mappings=(("N", M1),))
    n2 = L("N", "T", 3, mbid_mappings=(("N", M2),))
    listens = [
        L("N", "T", 1, artist_names=("N",)),
        n1,
        n2,
        replace(n1, time=4),  # sets M1 back, as Koito would: no stale reuse
        replace(n2, time=3),  # an exact duplicate of n2, matched again all the same
        replace(n1, time=4),
        L("N", "U", 5, artist_names=("N",), album="Z"),
        replace(n2, time=6),
    ]
    ref, blk = stores
    compare(ref, blk, listens)
    mbid = blk.execute("SELECT musicbrainz_id FROM artists").fetchone()[0]
    assert str(mbid) == M2


def test_lookups_return_fresh_objects(stores: tuple[Store, Store]) -> None:
    """The resolver compares MBIDs of objects it fetched earlier; SqlCatalog returns a new
    object per lookup, so an MBID set through one reference must not show through
    another. Here the stale reference makes M1 count as "already found", so the MBID
    list goes on to M3 (artist Y) instead of falling back to names."""
    listens = [
        L("Y", "T", 1, mbid_mappings=(("Y", M3),)),
        L("N", "T", 2, mbid_mappings=(("N", M1), ("N", M2)), artist_mbids=(M1, M3, M3)),
        L("N", "U", 3, mbid_mappings=(("N", M1), ("N", M2)), artist_mbids=(M1, M3, M3)),
    ]
    ref, blk = stores
    compare(ref, blk, listens)
    linked = blk.execute(
        "SELECT count(DISTINCT artist_id) FROM artist_tracks WHERE track_id = "
        "(SELECT min(id) FROM tracks_with_title WHERE title = 'U')"
    ).fetchone()[0]
    assert linked == 2


def test_mbid_replacement_across_batches_and_existing_lookup_rows(
    stores: tuple[Store, Store],
) -> None:
    base = [
        L("N", "T", 1, artist_names=("N",)),
        L("N", "U", 2, artist_names=("N", "O")),
        L("O", "T", 3, mbid_mappings=(("O", M3),)),
    ]
    flips = [
        L("N", "T", 10, mbid_mappings=(("N", M1),)),
        L("N", "T", 11, artist_names=("N",)),  # cached before; forgotten by the next one?
        L("N", "T", 12, mbid_mappings=(("N", M2),)),
        L("N", "T", 13, artist_names=("N",)),
        L("N", "U", 14, artist_names=("N", "O")),
        L("N", "T", 15, mbid_mappings=(("N", M1),)),
        L("N", "U", 16, artist_names=("N", "O")),
    ]
    ref, blk = stores
    per_listen(ref, base)
    per_listen(blk, base)
    reference = per_listen(ref, flips)
    result = bulk(blk, flips, batch_size=2)
    assert_same(ref, blk)
    assert result.inserted == reference.inserted


# --- Koito exports -------------------------------------------------------------------------


def _koito(
    artists: list[tuple[str, str, str]],
    album: tuple[str, str],
    track: tuple[str, str],
    time: int,
    **kw: Any,
) -> Listen:
    recs = tuple(
        EntityRecord(name, (name, name + " (alias)"), mbid, image) for name, mbid, image in artists
    )
    ent = KoitoEntities(
        recs,
        EntityRecord(album[0], (album[0] + " alt",), album[1], "http://img/" + album[0]),
        EntityRecord(track[0], (track[0] + " alt", track[0]), track[1]),
        various_artists=kw.pop("various", False),
    )
    return Listen(artist=artists[0][0], title=track[0], time=time, entities=ent, **kw)


def test_koito_export_entities(stores: tuple[Store, Store]) -> None:
    listens = [
        _koito(
            [("A", "", "http://x/a.jpg")], ("Alb", ""), ("T", ""), 1, duration=100, client="koito"
        ),
        _koito([("A", "", "")], ("Alb", ""), ("T", ""), 2),
        _koito([("B", M1, "file.jpg"), ("A", "", "")], ("Alb", M2), ("T", M3), 3, various=True),
        _koito([("B", M1, "")], ("Other", M2), ("T", M3), 4),
        L("A", "T", 5, album="Alb"),  # a scrobble meeting the imported catalog
        L("B (alias)", "T", 6, album="Alb"),
        _koito([("A", "", ""), ("A", "", "")], ("Alb", ""), ("T", ""), 7),  # repeated artist
        _koito([("A", "", ""), ("A", "", "")], ("Alb", ""), ("T", ""), 8),
    ]
    ref, blk = stores
    compare(ref, blk, listens)
    images = blk.execute("SELECT count(*) FROM artists WHERE image IS NOT NULL").fetchone()[0]
    assert images == 1


# --- duplicates, skips, re-runs ----------------------------------------------------------------


def test_duplicates_and_skips_are_counted(stores: tuple[Store, Store]) -> None:
    a = L("A", "T", 1, client="x")
    listens = [
        a,
        replace(a, client="y"),  # same key, same second: an exact duplicate
        replace(a, time=2),
        L("A", "T", 1, album="T"),  # other key, same track and second: already present
        L("", "T", 3),
        L("A", "", 3),
        L("A", "  ", 3),  # a blank title is a title: Koito never trims titles
        L("A" * 700, "T", 3),
        replace(a),
        L("(feat. )", "x", 4, artist_mbids=(M1,)),  # no artist can be found
    ]
    ref, blk = stores
    result = compare(ref, blk, listens)
    assert result.read == 10
    assert result.duplicates == 2
    assert result.already_present == 1
    assert result.inserted == 3
    assert result.skipped == {
        "missing_artist": 1,
        "missing_title": 1,
        "field_too_long": 1,
        "no_artist_found": 1,
    }
    rows = blk.execute("SELECT client FROM listens ORDER BY listened_at").fetchall()
    clients = [r[0] for r in rows]
    assert clients == ["x", "x", blk.client_value("")]


def test_rerun_inserts_nothing(stores: tuple[Store, Store]) -> None:
    listens = [L("A", "T", 1), L("A", "T", 1), L("B", "U", 2, album="X"), L("A", "T", 3)]
    ref, blk = stores
    first = compare(ref, blk, listens)
    assert first.inserted == 3 and first.duplicates == 1
    per_listen(ref, listens)
    again = bulk(blk, listens)
    assert again.inserted == 0
    # Every listen was heard before the run (the exact duplicate too): none is matched.
    assert again.already_present == 4 and again.duplicates == 0
    assert again.new_artists == again.new_albums == again.new_tracks == 0
    assert_same(ref, blk)


def test_existing_catalog_then_bulk(stores: tuple[Store, Store]) -> None:
    listens = [
        L("A", "T", 1, album="X"),
        L("A", "T", 2, artist_names=("A", "B"), album="X"),
        L("B", "U", 3, mbid_mappings=(("B", M1),), recording_mbid=M2),
        L("C feat. A", "V", 4),
        L("A", "T", 5, album="X", duration=200),
        L("A", "T", 6, album="X", release_mbid=M3),
        L("B", "W", 7, mbid_mappings=(("B", M2),)),
        L("A", "T", 8, album="X"),
        L("C", "V", 9, artist_names=("C", "A")),
        L("B", "U", 10, mbid_mappings=(("B", M1),), recording_mbid=M2),
        L("D", "T", 11, album="X", artist_names=("D", "A")),
        L("A", "T", 12, artist_names=("A", "B"), album="X", duration=300),
    ]
    half = len(listens) // 2
    ref, blk = stores
    per_listen(ref, listens)
    per_listen(blk, listens[:half])
    submitter = BulkSubmitter(blk)
    submitter.run(listens[half:])
    assert_same(ref, blk)
    assert submitter.lazy_loads == 0


def test_existing_catalog_reloads_by_every_route(stores: tuple[Store, Store]) -> None:
    """Second-half listens reach first-half rows by alias, MBID, title and link."""
    first = [
        _koito([("Known", M1, "")], ("Rec", M2), ("Song", M3), 1),
        L("Other", "Song", 2, album="Rec"),
        L("Other", "Song", 3, album="Rec", artist_names=("Other", "Known")),
    ]
    second = [
        L("Known (alias)", "Song", 4, album="Rec"),
        L("x", "y", 5, artist_mbids=(M1,), release_mbid=M2, recording_mbid=M3),
        L("Other", "Song", 6, album="Rec", artist_names=("Known", "Other")),
        L("Other", "Song", 7, album="Rec", artist_names=("Other", "Known")),
        L("Other", "Song", 8, album="Rec", duration=42),
    ]
    ref, blk = stores
    per_listen(ref, first + second)
    per_listen(blk, first)
    result = bulk(blk, second)
    assert_same(ref, blk)
    assert result.new_artists == 0


@pytest.mark.parametrize(
    ("batch_size", "chunk_size", "step"),
    [
        (1, 1, None),
        (2, 2, None),
        (3, 3, None),
        (3, 2, None),
        (3, 2, 100),
        (50_000, 1, None),
        (50_000, 2, 3),
        (50_000, 4096, None),
    ],
)
def test_batches_do_not_change_the_result(
    stores: tuple[Store, Store], batch_size: int, chunk_size: int, step: int | None
) -> None:
    listens = [
        L("A", "T", 1),
        L("A", "T", 2, artist_names=("A", "B")),
        L("B", "T", 3, artist_names=("B", "A")),
        L("A", "T", 1),
        L("A", "U", 4, mbid_mappings=(("A", M1),)),
        L("A", "T", 5, duration=10),
        L("A", "U", 6, mbid_mappings=(("A", M2),)),
        L("A", "U", 7, mbid_mappings=(("A", M1),)),
        L("A", "T", 2, artist_names=("A", "B")),
        L("C", "T", 8, artist_names=("C",), album="T"),
    ]
    ref, blk = stores
    compare(ref, blk, listens, batch_size=batch_size, chunk_size=chunk_size, resolve_step=step)


def test_resolve_steps_follow_the_cost_of_slice_queries(
    stores: tuple[Store, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunk by chunk on SQLite always; on PostgreSQL only while the catalog is small."""
    ref, blk = stores
    monkeypatch.setattr(bulk_module, "SMALL_CATALOG", 3)
    per_listen(ref, [L(f"A{i}", f"T{i}", i) for i in range(3)])  # 3 tracks: "large"
    per_listen(blk, [L(f"A{i}", f"T{i}", i) for i in range(3)])
    listens = [L(f"B{i % 7}", f"U{i}", 100 + i) for i in range(12)]
    submitter = BulkSubmitter(blk, batch_size=6, chunk_size=2)
    result = submitter.run(listens)
    per_listen(ref, listens)
    assert_same(ref, blk)
    assert result.inserted == 12
    if blk.dialect == "sqlite":
        assert submitter.resolve_steps == 6  # one per chunk
    else:
        assert submitter.resolve_steps == 2  # one per batch of 6 keys
    # An explicit step wins.
    submitter = BulkSubmitter(blk, batch_size=6, chunk_size=2, resolve_step=4)
    later = [replace(x, time=x.time + 1000) for x in listens]  # not heard before
    assert submitter.run(later).inserted == 12
    if blk.dialect == "sqlite":
        assert submitter.resolve_steps == 3  # in pieces: steps of 4 over the whole file
    else:
        assert submitter.resolve_steps == 4  # 4 + 2 listens per batch
    # A large catalog's batch still takes more than one step, so that one step's
    # changes are written while the next is matched.
    monkeypatch.setattr(bulk_module, "LARGE_CATALOG_STEP", 4)
    submitter = BulkSubmitter(blk, batch_size=6, chunk_size=2)
    latest = [replace(x, time=x.time + 2000) for x in listens]
    assert submitter.run(latest).inserted == 12
    per_listen(ref, later + latest)
    assert_same(ref, blk)
    if blk.dialect == "postgresql":
        assert submitter.resolve_steps == 4  # 4 + 2 listens per batch of 6 keys


def test_separator_settings(stores: tuple[Store, Store]) -> None:
    settings = MatchSettings.from_value(r"\s*&\s*;;\s*/\s*")
    listens = [L("A & B", "T", 1), L("A / C", "T", 2), L("A", "T", 3), L("B & A", "T (feat. C)", 4)]
    ref, blk = stores
    compare(ref, blk, listens, settings=settings)


# --- transactions, ids, progress -------------------------------------------------------------


def test_failure_midway_leaves_the_database_unchanged(stores: tuple[Store, Store]) -> None:
    _, blk = stores
    per_listen(blk, [L("A", "T", 1), L("B", "U", 2, mbid_mappings=(("B", M1),))])
    before = table_rows(blk)

    def listens() -> Iterator[Listen]:
        for i in range(40):
            yield L(f"N{i % 7}", f"T{i % 5}", 100 + i, mbid_mappings=(("B", M2 if i % 2 else M1),))
        raise OSError("disk gone")

    with pytest.raises(OSError, match="disk gone"):
        # Small batches: several batches were written inside the transaction already.
        BulkSubmitter(blk, batch_size=3).run(listens())
    assert table_rows(blk) == before
    # The store is usable afterwards.
    assert bulk(blk, [L("A", "T", 5)]).inserted == 1


def _fail_listen_insert(store: Store, at: int) -> None:
    """A real trigger that makes the database refuse the listen at unix second ``at``."""
    if store.dialect == "sqlite":
        store.execute(
            f"CREATE TRIGGER test_refuse BEFORE INSERT ON listens WHEN NEW.listened_at = {at} "
            "BEGIN SELECT RAISE(ABORT, 'writer refused'); END"
        )
        return
    store.execute(
        "CREATE FUNCTION test_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"IF NEW.listened_at = to_timestamp({at}) THEN RAISE EXCEPTION 'writer refused'; "
        "END IF; RETURN NEW; END $$"
    )
    store.execute(
        "CREATE TRIGGER test_refuse BEFORE INSERT ON listens "
        "FOR EACH ROW EXECUTE FUNCTION test_refuse()"
    )


def test_a_failed_write_behind_matching_rolls_everything_back(
    stores: tuple[Store, Store],
) -> None:
    _, blk = stores
    per_listen(blk, [L("A", "T", 1)])
    _fail_listen_insert(blk, 110)
    before = table_rows(blk)
    listens = [L(f"N{i % 9}", f"T{i % 4}", 100 + i) for i in range(60)]
    # Chunks of 4: the listen at second 110 is written by the writer thread while later
    # chunks are matched; its failure must reach the caller and undo the whole run.
    with pytest.raises(Exception, match="writer refused"):
        BulkSubmitter(blk, chunk_size=4).run(listens)
    assert table_rows(blk) == before
    assert bulk(blk, [L("A", "T", 5)]).inserted == 1


def test_ids_match_the_per_listen_path_on_a_fresh_database(stores: tuple[Store, Store]) -> None:
    listens = [
        L(
            f"Artist {i % 23}",
            f"Track {i % 31}",
            1000 + i,
            album=f"Album {i % 11}",
            artist_names=(f"Artist {i % 23}",)
            + ((f"Artist {(i * 7) % 23}",) if i % 4 == 0 else ()),
            duration=i % 3,
        )
        for i in range(300)
    ]
    ref, blk = stores
    compare(ref, blk, listens, batch_size=40)
    # Koito's next own insert must not collide with the ids the bulk path wrote.
    for table in ("artists", "releases", "tracks"):
        top = blk.execute(f"SELECT max(id) FROM {table}").fetchone()[0]
        assert top == ref.execute(f"SELECT max(id) FROM {table}").fetchone()[0]
    submit_listen(blk, L("Brand new", "Brand new", 1))
    submit_listen(ref, L("Brand new", "Brand new", 1))
    assert_same(ref, blk)


def test_inside_an_outer_transaction_and_progress(stores: tuple[Store, Store]) -> None:
    ref, blk = stores
    listens = [L(f"A{i % 50}", f"T{i % 70}", i) for i in range(5_000)]
    seen: list[int] = []
    per_listen(ref, listens)
    with blk.transaction():
        result = BulkSubmitter(blk, progress=seen.append).run(listens)
    assert_same(ref, blk)
    assert result.inserted == 5_000
    assert seen == sorted(seen) and seen[-1] == 5_000 and len(seen) >= 3


def test_a_caller_transaction_that_wrote_is_read_through_its_own_connection(
    stores: tuple[Store, Store],
) -> None:
    """A second connection does not see what the open transaction wrote: inside one that
    already did, the run must match through the transaction's connection, or it would
    make "Early" and its album a second time."""
    ref, blk = stores
    listens = [L("Early", "S", 2), L("Early", "T", 3, album="S"), L("Late", "U", 4)]
    with ref.transaction():
        replay(ref, [L("Early", "S", 1)])
        per_listen(ref, listens)
    with blk.transaction():
        replay(blk, [L("Early", "S", 1)])
        result = BulkSubmitter(blk).run(listens)
    assert_same(ref, blk)
    assert result.inserted == 3
    assert blk.execute("SELECT count(*) FROM artists").fetchone()[0] == 2


def test_a_run_in_one_transaction_reads_through_a_second_connection(pg_url: str) -> None:
    """The first catalog of a PostgreSQL run asks its questions on a second connection
    (matching then never waits for the writer thread), later batches' catalogs on the
    run's own one (only it sees the batches before); the result is the per-listen one."""
    asked: list[str] = []
    opened: list[psycopg.Connection[Any]] = []

    class Counting(psycopg.Connection[Any]):
        def execute(self, query: Any, *args: Any, **kw: Any) -> Any:
            asked.append(str(query))
            return super().execute(query, *args, **kw)

    class SecondCounted(PostgresStore):
        def second_connection(self) -> psycopg.Connection[Any]:
            conn = Counting.connect(pg_url, autocommit=True)
            opened.append(conn)
            return conn

    other, dropme = _other_target(pg_url, "ref")
    ref, blk = open_store(other), SecondCounted(pg_url)
    try:
        listens = [L(f"A{i % 7}", f"T{i % 11}", i, album=f"R{i % 5}") for i in range(200)]
        per_listen(ref, listens)
        result = BulkSubmitter(blk, batch_size=5, chunk_size=8).run(listens)
        assert_same(ref, blk)
        assert result.inserted == 200
        assert len(opened) == 1 and opened[0].closed
        assert any("artist_aliases" in q for q in asked)  # the slice queries
        assert any("nextval" in q for q in asked)  # the ids
    finally:
        ref.close()
        blk.close()
        with psycopg.connect(pg_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dropme}" WITH (FORCE)')


def test_matching_hands_over_one_write_at_a_time(
    stores: tuple[Store, Store], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reads through a second connection never wait for the writer thread, so the hand
    over must: else a fast matcher queues every step's rows at once (memory)."""
    waiting: list[bool] = []

    class Recording(bulk_module.WriteBehind):
        def submit(self, job: Any) -> None:
            waiting.append(self.busy)
            super().submit(job)

    monkeypatch.setattr(bulk_module, "WriteBehind", Recording)
    ref, blk = stores
    listens = [L(f"A{i}", f"T{i}", i) for i in range(300)]
    compare(ref, blk, listens, chunk_size=10)
    assert len(waiting) >= 20 and not any(waiting)


def test_a_refused_second_connection_leaves_the_run_on_its_own(pg_url: str) -> None:
    """A server that refuses the second connection (here: a role allowed one connection)
    leaves the run reading through its own, with the same result, instead of failing."""
    other, dropme = _other_target(pg_url, "ref")
    ref = open_store(other)
    role = f"one_conn_{dropme}"
    with psycopg.connect(pg_url, autocommit=True) as admin:
        open_store(pg_url).close()  # Koito's schema, owned by the test's superuser
        admin.execute(f'CREATE ROLE "{role}" LOGIN CONNECTION LIMIT 1')
        admin.execute(f'GRANT ALL ON ALL TABLES IN SCHEMA public TO "{role}"')
        admin.execute(f'GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO "{role}"')
    parts = urlsplit(pg_url)
    host = parts.netloc.split("@")[-1]
    query = "&".join(p for p in parts.query.split("&") if p and not p.startswith("user="))
    limited = open_store(f"postgresql://{role}@{host}{parts.path}?{query}")
    try:
        assert limited.second_connection() is None
        compare(ref, limited, [L(f"A{i % 3}", f"T{i % 4}", i) for i in range(40)], chunk_size=4)
    finally:
        limited.close()
        ref.close()
        with psycopg.connect(pg_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{dropme}" WITH (FORCE)')
            admin.execute(f'REASSIGN OWNED BY "{role}" TO CURRENT_USER')
            admin.execute(f'DROP OWNED BY "{role}"')
            admin.execute(f'DROP ROLE "{role}"')


def test_a_transaction_knows_whether_it_wrote(pg_url: str) -> None:
    class Undo(Exception):
        pass

    store = open_store(pg_url)
    try:
        assert not store.wrote_in_transaction()
        with pytest.raises(Undo), store.transaction():
            store.execute("SELECT count(*) FROM artists").fetchone()
            assert not store.wrote_in_transaction()  # the advisory lock and a read
            store.execute("INSERT INTO artists DEFAULT VALUES")
            assert store.wrote_in_transaction()
            raise Undo
        assert store.execute("SELECT count(*) FROM artists").fetchone()[0] == 0
    finally:
        store.close()


def test_connection_settings_come_back_after_a_run(stores: tuple[Store, Store]) -> None:
    """A run changes its connection's settings (SQLite page cache, psycopg's prepared
    statements) and puts them back, whether it succeeds or fails."""
    _, blk = stores
    conn: Any = getattr(blk, "conn")  # noqa: B009

    def settings() -> Any:
        if blk.dialect == "sqlite":
            return conn.execute("PRAGMA cache_size").fetchone()[0]
        return conn.prepare_threshold

    before = settings()
    bulk(blk, [L("A", "T", 1), L("B", "U", 2)], chunk_size=1)
    assert settings() == before

    def failing() -> Iterator[Listen]:
        yield L("C", "V", 3)
        raise OSError("gone")

    with pytest.raises(OSError):
        bulk(blk, failing())
    assert settings() == before


def test_user_id_is_written(stores: tuple[Store, Store]) -> None:
    _, blk = stores
    bulk(blk, [L("A", "T", 1)], user_id=1)
    assert blk.execute("SELECT user_id FROM listens").fetchone()[0] == 1


def test_another_users_listen_at_the_same_track_and_second(stores: tuple[Store, Store]) -> None:
    """The listens key leaves the user out, and "heard before" asks only about this
    user's listens: the run offers a listen the key then refuses. On PostgreSQL the
    listens of stored tracks are COPYed first; the collision must fall back to the
    upsert, not fail the run or lose the other listens."""
    for store in stores:
        store.execute(
            "INSERT INTO users (username, password, role) VALUES ('b', ?, 'user')", (b"x",)
        )
        (user_b,) = store.execute("SELECT id FROM users WHERE username = 'b'").fetchone()
        replay(store, [L("A", "T", 5), L("A", "U", 9)], user_id=user_b)
        # The tracks are stored: user 1's listens of them go the stored-track way.
    ref, blk = stores
    listens = [L("A", "T", 4), L("A", "T", 5), L("A", "T", 6), L("A", "U", 7)]
    result = compare(ref, blk, listens)
    assert result.inserted == 3 and result.already_present == 1
    rows = blk.execute("SELECT track_id, listened_at, user_id FROM listens").fetchall()
    assert len(rows) == 5


def test_first_listens_share_equal_strings_and_keep_every_field() -> None:
    """A kept first listen is equal to the parsed one in every field (a field the copy
    forgot would fall back to its default here) and shares repeated values."""
    entities = KoitoEntities(
        artists=(EntityRecord("A"),), album=EntityRecord("R"), track=EntityRecord("T")
    )

    def parsed(title: str) -> Listen:
        # New string objects each time, as a parser makes them.
        return Listen(
            artist="".join(["Art", "ist"]),
            title=title,
            time=1_700_000_000,
            artist_names=("".join(["Art", "ist"]), "".join(["Gu", "est"])),
            album="".join(["Al", "bum"]),
            artist_mbids=("00000000-0000-0000-0000-000000000001", ""),
            mbid_mappings=(("Artist", "00000000-0000-0000-0000-000000000001"),),
            release_mbid="00000000-0000-0000-0000-000000000002",
            recording_mbid="00000000-0000-0000-0000-000000000003",
            duration=215,
            client="maloja",
            entities=entities,
        )

    shared: dict[object, object] = {}
    one, two = parsed("One"), parsed("Two")
    kept_one, kept_two = bulk_module._shared(one, shared), bulk_module._shared(two, shared)
    assert kept_one == one and kept_two == two
    assert kept_two.artist is kept_one.artist and kept_two.album is kept_one.album
    assert kept_two.artist_names is kept_one.artist_names
    assert kept_one.artist_names[0] is kept_one.artist


def test_matching_ahead_is_dropped_when_another_writer_commits(tmp_path: Path) -> None:
    """A commit by another connection while the file is read (and matched ahead) makes
    the run match again under the lock, against what that writer left."""
    listens = [
        L("A", "T", 10, album="X"),
        L("B", "U", 11),
        L("A", "T", 12, album="X"),
        L("C feat. A", "V", 13),
        L("B", "W", 14, mbid_mappings=(("B", M1),)),
    ]
    theirs = L("A", "T", 5, album="X", artist_names=("A", "B"), mbid_mappings=(("A", M2),))
    ref = open_store(str(tmp_path / "ref.db"))
    per_listen(ref, [theirs, *listens])
    blk = open_store(str(tmp_path / "blk.db"))
    other = open_store(str(tmp_path / "blk.db"))
    wrote: list[int] = []

    def progress(read: int) -> None:
        if not wrote:  # after the first listen was matched ahead
            with other.transaction():
                submit_listen(other, theirs)
            wrote.append(read)

    submitter = BulkSubmitter(blk, chunk_size=1, progress=progress)
    result = submitter.run(listens)
    other.close()
    assert wrote == [1]
    assert submitter.ahead_dropped == 1
    assert result.inserted == len(listens)
    assert_consistent(result)
    assert_same(ref, blk)
    ref.close()
    blk.close()


def test_matching_ahead_gives_the_result_of_matching_under_the_lock(tmp_path: Path) -> None:
    listens = [
        L(f"A{i % 5}", f"T{i % 7}", 100 + i, **({"album": f"X{i % 3}"} if i % 4 else {}))
        for i in range(60)
    ]
    ref, blk = open_store(str(tmp_path / "ref.db")), open_store(str(tmp_path / "blk.db"))
    per_listen(ref, listens[:10])
    per_listen(blk, listens[:10])
    ref_sub = BulkSubmitter(ref, chunk_size=4, match_ahead=False)
    ref_result = ref_sub.run(listens[10:])
    sub = BulkSubmitter(blk, chunk_size=4, ahead_rows=6)
    result = sub.run(listens[10:])
    assert ref_sub.ahead_taken == 0
    assert sub.ahead_taken == sub.pieces > 2 and sub.ahead_dropped == 0
    assert (result.inserted, result.new_tracks, result.new_albums, result.new_artists) == (
        ref_result.inserted,
        ref_result.new_tracks,
        ref_result.new_albums,
        ref_result.new_artists,
    )
    assert_same(ref, blk)
    ref.close()
    blk.close()
