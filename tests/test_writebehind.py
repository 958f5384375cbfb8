"""The writer thread of the bulk path: order, failures, shutdown."""

from __future__ import annotations

import threading
import weakref
from functools import partial

import pytest

from koito_import.bulk.writebehind import WriteBehind


def test_jobs_run_in_order_on_one_other_thread() -> None:
    behind = WriteBehind()
    seen: list[tuple[int, str]] = []
    try:
        for i in range(50):
            behind.submit(lambda i=i: seen.append((i, threading.current_thread().name)))
        behind.sync()
    finally:
        behind.close()
    assert [i for i, _ in seen] == list(range(50))
    assert {name for _, name in seen} == {"koito-import-writer"}


def test_sync_waits_for_every_job() -> None:
    behind = WriteBehind()
    gate = threading.Event()
    done: list[int] = []

    def slow() -> None:
        gate.wait(5)
        done.append(1)

    try:
        behind.submit(slow)
        behind.submit(lambda: done.append(2))
        threading.Timer(0.05, gate.set).start()
        behind.sync()
        assert done == [1, 2]
    finally:
        behind.close()


def test_the_first_failure_stops_later_jobs_and_reaches_the_caller() -> None:
    behind = WriteBehind()
    ran: list[int] = []

    def fail() -> None:
        raise ValueError("disk full")

    try:
        behind.submit(lambda: ran.append(1))
        behind.submit(fail)
        behind.submit(lambda: ran.append(3))
        with pytest.raises(ValueError, match="disk full"):
            behind.sync()
        with pytest.raises(ValueError, match="disk full"):
            behind.submit(lambda: ran.append(4))
    finally:
        behind.close()
    assert ran == [1]


def test_close_lets_queued_jobs_finish_and_stops_the_thread() -> None:
    behind = WriteBehind()
    ran: list[int] = []
    behind.submit(lambda: ran.append(1))
    thread = next(t for t in threading.enumerate() if t.name == "koito-import-writer")
    behind.close()
    assert ran == [1]
    assert not thread.is_alive()
    behind.close()  # a second close is harmless


def test_no_thread_until_something_is_submitted() -> None:
    before = {t.name for t in threading.enumerate()}
    behind = WriteBehind(name="koito-import-idle-writer")
    behind.sync()
    behind.close()
    assert "koito-import-idle-writer" not in before | {t.name for t in threading.enumerate()}


def test_a_finished_job_is_let_go() -> None:
    # A job holds a step's rows; keeping it until the next job arrives would keep a whole
    # batch's rows alive through the next batch.
    class Rows:
        pass

    rows = Rows()
    alive = weakref.ref(rows)
    behind = WriteBehind()
    try:
        behind.submit(partial(id, rows))
        del rows
        behind.sync()
        assert alive() is None
    finally:
        behind.close()
