"""Parse input files in worker processes, ahead of the writer, delivered in file order.

The main process resolves and writes (that must stay sequential: matching depends on
order, because each listen is matched against the catalog the listens before it built);
what can move to other processes is reading the files. With ``workers=N`` the files are
dealt round-robin to N worker processes (file i to worker ``i % N``); each worker
detects and parses its files one after another and streams the records to the main
process through its own pipe, in chunks of :data:`CHUNK` records, keeping at most
:data:`AHEAD` chunks ready (bounded memory). The main process reads
file 0 from worker 0, file 1 from worker 1, ... so records reach the writer in exactly
file order, and file order across files, whatever the workers' speeds.

Correctness rules the code keeps:

- **Same errors as in-process.** A worker that fails (``plugins.detect``, the eager
  checks of ``plugins.parse``, or a read/parse error while streaming) sends the
  exception; the main process raises an exception of the same type with the same
  message at the same point of the file's stream (detection errors before the file's
  transaction, streaming errors inside it, so the file is rolled back). The worker's
  traceback is attached as ``__cause__`` for ``--debug``.
- **Same records.** Listens and Skips are pickled as ``Listen(*fields)`` /
  ``Skip(reason, where)`` (a compact reduction: ~30% smaller and ~2x faster than the
  dataclasses' default pickling); the main process unpickles them straight into the
  same objects.
- **No database in workers.** Workers never open or touch a database. With the
  ``fork`` start method (used where available: a worker is ready in milliseconds,
  ``spawn`` re-imports everything and costs ~0.2 s) a worker inherits the parent's open
  SQLite file descriptor or PostgreSQL socket; it never uses them and leaves through
  ``os._exit`` without running finalizers, so it neither closes the parent's SQLite
  connection (which could checkpoint or delete the WAL) nor sends PostgreSQL a
  Terminate message on the shared socket.
- **No leftover processes.** Workers ignore SIGINT (Ctrl-C reaches the whole process
  group; the main process alone handles it). :class:`Prefetcher` is a context manager:
  on success, error or interrupt it terminates and joins (reaps) every worker. A worker
  whose parent died gets EPIPE on its next write and exits.
- **Only where it helps** (:func:`worth_it`). Starting a worker costs ~5 ms plus the
  transfer of every record; below :data:`MIN_PARALLEL_BYTES` of input, and for a single
  file below :data:`SINGLE_FILE_MIN_BYTES`, files are parsed in-process.

The main process resolves each chunk as it arrives (``BulkSubmitter``), so a worker
parsing one file overlaps with matching that same file, not only with the next file.
Normalizing stays in the main process (``_normalize.normalize_batch``, ~0.03 s per 49k
listens): moving it would save less than the transfer of its results costs. Splitting
one large file into chunks parsed by several workers is not done: every worker would
still have to scan the whole JSON document, and on 2 cores the main process already
uses one core.
"""

from __future__ import annotations

import copyreg
import gc
import io
import os
import pickle
import queue
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from multiprocessing import get_all_start_methods, get_context
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from koito_import import jsonstream, plugins
from koito_import.errors import InputError
from koito_import.listen import LISTEN_FIELDS, Listen
from koito_import.records import ParseOptions, Skip

#: The default of ``--workers`` (see BENCHMARKS.md: one parse worker beside the writer
#: is the best setting measured on 2 cores).
DEFAULT_WORKERS = 1
#: Records (listens and skips) per message.
CHUNK = 4096
#: Chunks a worker keeps ready beyond what the pipe holds: its memory bound (~80 bytes a
#: pickled listen: 16 x 4096 listens is ~5 MB). Two resolve steps' worth: more only
#: grows the worker when the main process is the slower side, which at 1M it is (64
#: chunks: +16 MB of worker peak into PostgreSQL, no faster).
AHEAD = 16
#: Below this much input (all files together) no worker is started: the run is too
#: short for the overlap to pay for the worker's start and the records' transfer.
MIN_PARALLEL_BYTES = 2 * 1024 * 1024
#: A single file smaller than this is parsed in-process (BENCHMARKS.md: a 10 MB Maloja
#: file gains ~8% from a worker on SQLite and PostgreSQL; at 4 MB the difference drowns
#: in the noise of this machine).
SINGLE_FILE_MIN_BYTES = 8 * 1024 * 1024


# --- the records on the wire ----------------------------------------------------------------


def _listen_reducer() -> Callable[[Listen], tuple[Any, ...]]:
    """The reducer of Listen, generated from ``LISTEN_FIELDS`` (the one list of its fields).

    It reads the attributes one by one (twice as fast as ``operator.attrgetter`` of them
    all, and it runs once per listen). The last field, ``entities``, is None except in
    Koito exports, so it is sent only when set.
    """
    *args, last = LISTEN_FIELDS
    if last != "entities":  # pragma: no cover - a change to Listen must revisit this
        raise RuntimeError(f"Listen's last field is {last!r}, expected 'entities'")
    fields = ", ".join(f"x.{name}" for name in args)
    source = (
        "def _reduce_listen(x):\n"
        f"    fields = ({fields},)\n"
        "    return Listen, fields if x.entities is None else (*fields, x.entities)\n"
    )
    namespace: dict[str, Any] = {"Listen": Listen}
    exec(compile(source, "<koito_import.parallel: Listen reducer>", "exec"), namespace)
    reduce = namespace["_reduce_listen"]
    reduce.__doc__ = (
        "Pickle a Listen as its constructor arguments: smaller and faster than slot state."
    )
    return reduce


_reduce_listen = _listen_reducer()


def _reduce_skip(x: Skip) -> tuple[Any, ...]:
    return Skip, (x.reason, x.where)


def _reduce_skip_raw(x: Skip) -> tuple[Any, ...]:
    return Skip, (x.reason, x.where, x.raw)


_DISPATCH = copyreg.dispatch_table.copy()
_DISPATCH[Listen] = _reduce_listen
_DISPATCH[Skip] = _reduce_skip
#: The same, keeping what a skipped item was (only when --skipped asks for it).
_DISPATCH_RAW = {**_DISPATCH, Skip: _reduce_skip_raw}


def dumps(message: object, raw: bool = False) -> bytes:
    """Pickle a message with the compact reductions of Listen and Skip."""
    buf = io.BytesIO()
    pickler = pickle.Pickler(buf, pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = _DISPATCH_RAW if raw else _DISPATCH
    pickler.dump(message)
    return buf.getvalue()


# --- exceptions across the process boundary -------------------------------------------------


class RemoteTraceback(Exception):
    """The traceback of an exception raised in a worker (attached as ``__cause__``)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def _same(a: BaseException, b: object) -> bool:
    return type(a) is type(b) and str(a) == str(b)


def _portable(exc: BaseException) -> tuple[str, Any]:
    """A picklable description from which :func:`_rebuild` makes an equal exception.

    Plain pickling fails for exceptions whose ``__init__`` takes other arguments than
    ``args`` (``InputError(path, where, reason)``), so fall back to type + args + dict.
    """
    try:
        data = pickle.dumps(exc)
        if _same(exc, pickle.loads(data)):
            return "pickle", data
    except Exception:
        pass
    try:
        parts = (type(exc), exc.args, dict(getattr(exc, "__dict__", {})))
        data = pickle.dumps(parts)
        if _same(exc, _from_parts(*pickle.loads(data))):
            return "parts", data
    except Exception:
        pass
    return "text", f"{type(exc).__name__}: {exc}"


def _from_parts(
    cls: type[BaseException], args: tuple[Any, ...], state: dict[str, Any]
) -> BaseException:
    exc = cls.__new__(cls, *args)
    exc.args = args
    exc.__dict__.update(state)
    return exc


def _rebuild(kind: str, data: Any, remote_tb: str) -> BaseException:
    if kind == "pickle":
        exc = pickle.loads(data)
    elif kind == "parts":
        exc = _from_parts(*pickle.loads(data))
    else:
        exc = RuntimeError(f"parse worker failed: {data}")
    exc.__cause__ = RemoteTraceback(f'\n"""\n{remote_tb}"""')
    return exc


# --- the worker -------------------------------------------------------------------------------


class _Gone(Exception):
    """The main process no longer reads (it ended or stopped the run)."""


def _die_with_parent(parent: int) -> None:
    """Never outlive the main process, however it ends (SIGKILL included).

    Linux ends us with SIGKILL when the parent dies (PR_SET_PDEATHSIG); if the parent
    died before that took effect, we are already someone else's child: leave. Elsewhere
    the worker notices at its next write to the closed pipe.
    """
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:
        os._exit(0)


def _work(
    conn: Connection,
    tasks: list[tuple[int, str]],
    plugin: str | None,
    options: ParseOptions,
    chunk: int,
    ahead: int,
    parent: int,
    raw: bool = False,
) -> None:
    """Worker process: parse ``tasks`` in order, stream them, then leave via ``os._exit``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Forked with the parent's SIGTERM handler, which raises: a worker ends quietly
    # (the parent reports the signal once).
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with_parent(parent)
    # The parser allocates many small acyclic objects; the collector only slows it down
    # (the bulk path disables it for the same reason). The process is short-lived.
    gc.disable()
    ready: queue.Queue[bytes | None] = queue.Queue(maxsize=ahead)
    broken = threading.Event()

    def send() -> None:
        # Writes release the GIL: parsing goes on while the pipe drains.
        while (data := ready.get()) is not None:
            if broken.is_set():
                continue
            try:
                conn.send_bytes(data)
            except OSError:  # the main process is gone or closed its end
                broken.set()

    sender = threading.Thread(target=send, daemon=True)
    sender.start()

    def put(message: object) -> None:
        if broken.is_set():
            raise _Gone
        ready.put(dumps(message, raw))

    code = 0
    try:
        for index, path in tasks:
            try:
                name = plugin or plugins.detect(path)[0]
                records = plugins.parse(path, name, options)
                put(("file", index, name))
                batch: list[Listen | Skip] = []
                for record in records:
                    batch.append(record)
                    if len(batch) >= chunk:
                        put(("items", batch, jsonstream.position(path)))
                        batch = []
                if batch:
                    put(("items", batch, jsonstream.position(path)))
                put(("end", index))
            except _Gone:
                raise
            except BaseException as exc:
                kind, data = _portable(exc)
                put(("error", index, kind, data, traceback.format_exc()))
                if not isinstance(exc, InputError):
                    break  # not the file's fault: the run stops here
                # A bad file is a row of the summary; the run goes on with the next.
    except BaseException:
        code = 1
    ready.put(None)
    sender.join()
    conn.close()
    # No finalizers, no flushing of inherited stdio, no atexit: nothing inherited from
    # the parent (its database connection above all) is touched on the way out.
    os._exit(code)


# --- the main process's side ------------------------------------------------------------------


class WorkerDied(RuntimeError):
    """A parse worker ended without delivering its file (killed, out of memory...)."""


def start_method() -> str:
    """'fork' where the platform has it (fast start), else 'spawn'."""
    return "fork" if "fork" in get_all_start_methods() else "spawn"


class Prefetcher:
    """Files parsed by worker processes, handed out in file order (a context manager).

    ``open(i)`` returns file i's plugin name and record iterator, raising what detection
    or the eager checks of ``plugins.parse`` raised; the iterator raises what parsing
    raised at the same position. Files must be opened in order, each read to its end
    (or the run abandoned).
    """

    def __init__(
        self,
        paths: Sequence[str | os.PathLike[str]],
        plugin: str | None,
        options: ParseOptions,
        workers: int,
        *,
        chunk: int = CHUNK,
        ahead: int = AHEAD,
        method: str | None = None,
        raw: bool = False,
    ) -> None:
        if workers < 1:
            raise ValueError("a Prefetcher needs at least one worker")
        self.paths = [str(p) for p in paths]
        self.n = max(1, min(workers, len(self.paths)))
        ctx = get_context(method or start_method())
        self._conns: list[Connection] = []
        self._procs: list[Any] = []
        self._next = 0
        #: Bytes of file i parsed when its latest batch was sent (the progress bar's).
        self._positions: dict[int, int] = {}
        try:
            for w in range(self.n):
                tasks = [(i, p) for i, p in enumerate(self.paths) if i % self.n == w]
                reader, writer = ctx.Pipe(duplex=False)
                proc = ctx.Process(
                    target=_work,
                    args=(writer, tasks, plugin, options, chunk, ahead, os.getpid(), raw),
                    name=f"koito-import-parse-{w}",
                    daemon=True,
                )
                self._conns.append(reader)
                self._procs.append(proc)
                proc.start()
                # Only the worker writes: without our copy of its end, EOF means it is gone.
                writer.close()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Prefetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop and reap every worker (idempotent)."""
        for proc in self._procs:
            if proc.is_alive():
                proc.terminate()
        for proc in self._procs:
            proc.join(5)
            if proc.is_alive():  # pragma: no cover - SIGTERM is not ignored by workers
                proc.kill()
                proc.join()
        for conn in self._conns:
            conn.close()
        self._procs, self._conns = [], []

    def _recv(self, index: int) -> tuple[Any, ...]:
        w = index % self.n
        try:
            return pickle.loads(self._conns[w].recv_bytes())
        except (EOFError, OSError):
            proc = self._procs[w]
            proc.join(1)
            raise WorkerDied(
                f"the parse worker for {self.paths[index]} ended unexpectedly "
                f"(exit code {proc.exitcode})"
            ) from None

    def _raise(self, message: tuple[Any, ...]) -> None:
        _, _index, kind, data, remote_tb = message
        raise _rebuild(kind, data, remote_tb)

    def open(self, index: int) -> tuple[str, Iterator[Listen | Skip]]:
        """File ``index``: (plugin name, records). Raises what opening it raised."""
        if index != self._next:
            raise ValueError(f"files must be opened in order: expected {self._next}, got {index}")
        self._next += 1
        message = self._recv(index)
        if message[0] == "error":
            self._raise(message)
        tag, got, name = message
        if tag != "file" or got != index:  # pragma: no cover - protocol bug
            raise RuntimeError(f"parse worker out of step: {tag} for file {got}, expected {index}")
        return name, self._records(index)

    def position(self, index: int) -> int | None:
        """Bytes of file ``index`` parsed so far, as far as its records have arrived."""
        return self._positions.get(index)

    def _records(self, index: int) -> Iterator[Listen | Skip]:
        while True:
            message = self._recv(index)
            tag = message[0]
            if tag == "items":
                if message[2] is not None:
                    self._positions[index] = message[2]
                yield from message[1]
            elif tag == "end":
                return
            else:
                self._raise(message)


def worth_it(paths: Sequence[str | os.PathLike[str]], workers: int) -> bool:
    """Whether starting parse workers can pay off for these inputs (measured, BENCHMARKS.md).

    Several files: the next file is parsed while the current one is resolved and written
    (10 Spotify files of 10k listens: -22% on SQLite, -6% on PostgreSQL). One file: the
    bulk path resolves each chunk as the worker delivers it, so parsing overlaps with
    matching (49k listens, 10 MB: ~-8%). Starting and reaping a worker costs ~5 ms.
    """
    if workers < 1 or not paths:
        return False
    sizes = []
    for p in paths:
        try:
            sizes.append(Path(p).stat().st_size)
        except OSError:
            sizes.append(0)  # parsed in-process or by the worker, it fails the same way
    if len(paths) == 1:
        return sizes[0] >= SINGLE_FILE_MIN_BYTES
    return sum(sizes) >= MIN_PARALLEL_BYTES
