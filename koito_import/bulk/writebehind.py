"""One background thread that runs a run's database writes while the caller matches.

The bulk path's writes are a few large statements (``INSERT ... SELECT`` over a JSON
array on SQLite, ``COPY`` on PostgreSQL). Both drivers release the GIL while the
database works, so a thread running them overlaps with matching the next chunk in
Python: the write of a chunk costs wall time only where it is longer than the matching
of the next one (BENCHMARKS.md).

The connection is shared, not locked statement by statement: the caller calls ``sync``
before it uses the connection itself, so the connection is only ever used by one thread
at a time, and everything submitted before a ``sync`` is in the database after it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable


class WriteBehind:
    """Runs submitted jobs in order on one thread; the first failure stops the rest."""

    def __init__(self, name: str = "koito-import-writer") -> None:
        self._name = name
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._done = threading.Condition()
        self._pending = 0
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def submit(self, job: Callable[[], None]) -> None:
        """Queue ``job``; raises a failure of an earlier job instead of queueing more."""
        self._raise()
        if self._thread is None:
            # Daemon only as a guard against a hang at exit; ``close`` always joins it.
            self._thread = threading.Thread(target=self._work, name=self._name, daemon=True)
            self._thread.start()
        with self._done:
            self._pending += 1
        self._jobs.put(job)

    def sync(self) -> None:
        """Wait until every submitted job has run; re-raise the first failure."""
        with self._done:
            while self._pending:
                self._done.wait()
        self._raise()

    @property
    def busy(self) -> bool:
        """Whether submitted jobs are still running (matching may go on meanwhile)."""
        return self._pending > 0

    def close(self) -> None:
        """Let the queued jobs finish and stop the thread (failures are left to ``sync``)."""
        if self._thread is not None:
            self._jobs.put(None)
            self._thread.join()
            self._thread = None

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                if self._error is None:
                    job()
            except BaseException as exc:  # re-raised in the caller's thread by sync
                self._error = exc
            finally:
                # A job holds a step's rows (a whole batch's, when a batch is one step):
                # drop it now, not when the next job arrives.
                del job
                with self._done:
                    self._pending -= 1
                    self._done.notify_all()
