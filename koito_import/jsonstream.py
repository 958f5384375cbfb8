"""Read the items of huge JSON exports with bounded memory.

A lifetime of scrobbles is a 0.5–1 GB JSON document; ``orjson.loads`` on the whole file
would need several times that as Python objects. This module walks the document as
bytes, in chunks, and hands out the items of one array at a time:

    for number, item in iter_items(path, ("scrobbles", ITEMS)):   # Maloja
    for (page, number), item in iter_items(path, (ITEMS, "track", ITEMS)):  # Last.fm

How it stays fast in pure Python: the array's items are not found byte by byte.

1. Exporters write every item alike, so the bytes between two items plus the next
   item's first member name (``},\n    {\n      "time":``) recur at each boundary.
   Learned from the first two items, that signature's last occurrence in a window of
   :data:`RUN_BYTES` is found with ``bytes.rfind`` and the items before it are parsed
   by one ``orjson.loads`` call — which also proves the cut: a cut inside an item or a
   string leaves something unclosed and the parse fails.
2. Otherwise (first run, irregular layout, a failed proof) a compiled regular expression
   (run by the ``re`` engine in C) matches a *run* of complete items — strings, and
   objects/arrays nested up to :data:`FAST_DEPTH` levels — and orjson parses that run.
3. Items nested deeper than the expression knows, items larger than a few chunks, and
   anything malformed go through a slower token-by-token scanner that also produces the
   error message.

Python code runs once per run of items, not once per character. Memory stays at about
two chunks, one run's objects and the largest single item (capped by
:data:`MAX_ITEM_BYTES`, so that a garbage file cannot make us read it all).

Errors are :class:`~koito_import.errors.InputError` naming the file and where: a file
that ends early is ``"truncated JSON"`` at the byte where it ends; a bad item is
``"invalid JSON: <orjson's message>"`` at ``"item N, byte X"``. Like Go's
``json.Decoder`` (what Koito uses), anything after the first complete top-level value is
ignored; like Go, a JSON ``null`` where an array or object is expected reads as empty.
Where Go would read a string, orjson's stricter rules are relaxed the way Go relaxes
them: invalid UTF-8 and unpaired UTF-16 surrogate escapes become U+FFFD instead of
failing the file.

JSON Lines (:func:`iter_jsonl`) are read line by line; a line that is not JSON is
reported to the caller (it is one bad item, not a bad file).
"""

from __future__ import annotations

import io
import os
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, Final

import orjson

from koito_import.errors import InputError

__all__ = [
    "CHUNK_SIZE",
    "FAST_DEPTH",
    "ITEMS",
    "MAX_ITEM_BYTES",
    "MAX_LINE_BYTES",
    "RUN_BYTES",
    "BadLine",
    "JsonReader",
    "first_byte",
    "iter_items",
    "iter_jsonl",
    "loads",
    "open_input",
    "peek_items",
    "read_head",
    "top_level_values",
]

#: How much is read from the file at a time.
CHUNK_SIZE: Final = 1 << 20
#: Largest run of items parsed by one orjson call (bounds the objects alive at once).
RUN_BYTES: Final = 256 << 10
#: Nesting depth (inside an item) that the fast expression handles; deeper items still
#: work, through the slow scanner.
FAST_DEPTH: Final = 8
#: One item (a listen) larger than this is not a listen: the file is refused.
MAX_ITEM_BYTES: Final = 64 << 20
#: Longest line :func:`iter_jsonl` accepts; a longer line is reported as a bad line.
MAX_LINE_BYTES: Final = 16 << 20
#: How many bytes :func:`read_head` returns: what ``koito_import_detect`` sees.
HEAD_BYTES: Final = 64 << 10

_BOM = b"\xef\xbb\xbf"


class _Items:
    """The path step meaning "every item of this array"."""

    _instance: _Items | None = None

    def __new__(cls) -> _Items:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "ITEMS"


#: Path step: every item of the array here. Other steps are object keys (``str``).
ITEMS: Final = _Items()

Step = str | _Items

# --- the expressions ------------------------------------------------------------------
#
# Python 3.11 has possessive quantifiers, which make a failed match give up at once;
# 3.10 gets the same language with plain quantifiers, written so that no alternative can
# match the same text two ways (so backtracking stays linear), one character per
# iteration where a possessive run is not available.
_POSSESSIVE = sys.version_info >= (3, 11)
_PLUS = b"+" if _POSSESSIVE else b""
_STR = rb'"[^"\\]*' + _PLUS + rb'(?:\\.[^"\\]*' + _PLUS + rb")*" + _PLUS + rb'"'
_OTHER = rb'[^"\[\]{}]++' if _POSSESSIVE else rb'[^"\[\]{}]'
_STAR = b"*" + _PLUS
_WS = rb"[ \t\r\n]*" + _PLUS
_SCALAR = rb'[^"\[\]{},\s]+' + _PLUS


def _element_pattern(depth: int) -> bytes:
    """An expression for one JSON value whose containers nest at most ``depth`` deep.

    It checks structure only (brackets balance, strings end); orjson checks the rest.
    Opening and closing brackets are not paired by kind — ``{]`` passes here and fails in
    orjson — which keeps the expression's size linear in ``depth``.
    """
    content = rb"(?:" + _STR + b"|" + _OTHER + b")" + _STAR
    container = rb"[\[{]" + content + rb"[\]}]"
    for _ in range(depth - 1):
        content = rb"(?:" + _STR + b"|" + _OTHER + b"|" + container + b")" + _STAR
        container = rb"[\[{]" + content + rb"[\]}]"
    return rb"(?:" + _STR + b"|" + container + b"|" + _SCALAR + b")"


_ELEM = _element_pattern(FAST_DEPTH)
#: A run of complete items, each followed by its comma.
_RUN_RE = re.compile(rb"(?:" + _ELEM + _WS + b"," + _WS + b")" + _STAR, re.S)
#: The array's last item and its closing bracket.
_LAST_RE = re.compile(b"(" + _ELEM + b")" + _WS + rb"\]", re.S)
#: One item and, optionally, the comma after it (to split a run again).
_ONE_RE = re.compile(b"(" + _ELEM + b")" + _WS + b",?" + _WS, re.S)
_VALUE_RE = re.compile(_ELEM, re.S)
#: An object's opening brace and first member name, up to its colon.
_FIRST_KEY_RE = re.compile(rb'\{[ \t\r\n]*"(?:[^"\\]|\\.)*"[ \t\r\n]*:', re.S)
_STR_RE = re.compile(_STR, re.S)
_SCALAR_RE = re.compile(_SCALAR)
_WS_RE = re.compile(_WS)
_TOKEN_RE = re.compile(rb'["\[\]{}]')

_COMMA, _COLON, _QUOTE = ord(","), ord(":"), ord('"')
_LBRACKET, _RBRACKET, _LBRACE, _RBRACE = ord("["), ord("]"), ord("{"), ord("}")

# Escapes, so that unpaired surrogates can be replaced the way Go does.
_ESCAPE_RE = re.compile(
    r"\\\\|\\u([dD][89abAB][0-9a-fA-F]{2})\\u([dD][c-fC-F][0-9a-fA-F]{2})"
    r"|\\u[dD][89a-fA-F][0-9a-fA-F]{2}"
)


def _fix_escape(m: re.Match[str]) -> str:
    text = m.group(0)
    if text == "\\\\" or m.group(1):
        return text
    return "\\ufffd"


def loads(data: bytes | str) -> Any:
    """``orjson.loads``, retried the way Go's decoder is lenient.

    Go replaces invalid UTF-8 bytes and unpaired surrogate escapes with U+FFFD where
    orjson refuses the document; Koito's importers therefore accept such text, and so
    must we. Raises ``orjson.JSONDecodeError`` (a ``ValueError``) when the data is not
    JSON even then.
    """
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        text = data.decode("utf-8", "replace") if isinstance(data, bytes) else data
        if "\\u" in text:
            text = _ESCAPE_RE.sub(_fix_escape, text)
        return orjson.loads(text)


def _describe(byte: int | None) -> str:
    if byte is None:
        return "the end of the file"
    if byte in (_LBRACE,):
        return "an object"
    if byte == _LBRACKET:
        return "an array"
    if byte == _QUOTE:
        return "a string"
    ch = chr(byte)
    if ch in "-0123456789":
        return "a number"
    if ch in "tf":
        return "true/false"
    return f"{ch!r}" if 32 <= byte < 127 else f"byte 0x{byte:02x}"


#: Input files open for reading, by path: how far a parse has got, for the progress bar.
_OPEN: dict[str, _Tracked] = {}


class _Tracked(io.BufferedReader):
    """A buffered input file that can be asked, by path, how far it has been read."""

    def close(self) -> None:
        if _OPEN.get(self.key) is self:
            del _OPEN[self.key]
        super().close()


def position(path: str | os.PathLike[str]) -> int | None:
    """Bytes of ``path`` read so far by the parser reading it here (None: none is).

    Plugins that open their input through :func:`open_input` (every reader of this
    module does) get a progress bar that moves within a file, not only between files.
    """
    fp = _OPEN.get(str(Path(path)))
    try:
        return None if fp is None else fp.tell()
    except (OSError, ValueError):
        return None


def open_input(path: str | os.PathLike[str]) -> IO[bytes]:
    """Open an input file for binary reading; every failure is an InputError."""
    p = Path(path)
    try:
        if p.is_dir():
            raise InputError(str(path), "", "is a directory, not an export file")
        fp = _Tracked(io.FileIO(p, "rb"))  # the caller closes it
        fp.key = str(p)
        _OPEN[fp.key] = fp
        return fp
    except FileNotFoundError:
        raise InputError(str(path), "", "no such file") from None
    except PermissionError:
        raise InputError(str(path), "", "permission denied") from None
    except OSError as exc:
        raise InputError(str(path), "", f"cannot be read: {exc.strerror or exc}") from None


def read_head(path: str | os.PathLike[str], size: int = HEAD_BYTES) -> bytes:
    """The first ``size`` bytes of a file (for format detection); InputError if unreadable."""
    with open_input(path) as fp:
        try:
            return fp.read(size)
        except OSError as exc:
            raise InputError(str(path), "", f"cannot be read: {exc.strerror or exc}") from None


def first_byte(head: bytes) -> int | None:
    """The first byte that is not whitespace or a UTF-8 BOM, or None for an empty text."""
    if head.startswith(_BOM):
        head = head[3:]
    m = _WS_RE.match(head)
    end = m.end() if m else 0
    return head[end] if end < len(head) else None


class JsonReader:
    """A cursor over one JSON document, read in chunks from a binary file.

    ``name`` is what error messages call the file. Positions in messages are byte
    offsets from the start of the file.
    """

    def __init__(self, fp: IO[bytes], name: str, chunk_size: int = CHUNK_SIZE) -> None:
        self.fp = fp
        self.name = name
        self.chunk_size = chunk_size
        self.buf = b""
        self.pos = 0
        #: File offset of ``buf[0]``.
        self.base = 0
        self.eof = False
        self._started = False
        #: Learned item-separator signatures, by array (see :meth:`_signature_run`).
        self._signatures: dict[str, bytes | None] = {}

    # -- buffer -------------------------------------------------------------------------

    def _more(self, grow: bool = False) -> bool:
        """Append a chunk, dropping what was consumed; False at the end of the file.

        ``grow``: read as much again as is buffered (at least a chunk), for callers that
        rescan one growing value from its start — so the rescans stay linear in total.
        """
        if self.eof:
            return False
        size = max(self.chunk_size, len(self.buf) - self.pos) if grow else self.chunk_size
        try:
            data = self.fp.read(size)
        except OSError as exc:
            raise InputError(
                self.name,
                f"byte {self.base + len(self.buf)}",
                f"cannot be read: {exc.strerror or exc}",
            ) from None
        if not data:
            self.eof = True
            return False
        if self.pos:
            self.buf = self.buf[self.pos :] + data
            self.base += self.pos
            self.pos = 0
        else:
            self.buf += data
        return True

    def _error(self, reason: str, pos: int | None = None, item: str = "") -> InputError:
        offset = self.base + (self.pos if pos is None else pos)
        where = f"{item}, byte {offset}" if item else f"byte {offset}"
        return InputError(self.name, where, reason)

    def _truncated(self, inside: str) -> InputError:
        return InputError(
            self.name,
            f"byte {self.base + len(self.buf)}",
            f"truncated JSON: the file ends inside {inside}",
        )

    def _peek(self) -> int | None:
        """The next byte that is not whitespace (consumed up to it), None at the end."""
        while True:
            m = _WS_RE.match(self.buf, self.pos)
            self.pos = m.end() if m else self.pos
            if self.pos < len(self.buf):
                return self.buf[self.pos]
            if not self._more():
                return None

    def _start(self) -> int:
        """Skip a BOM and whitespace; the document's first byte must open an object or array."""
        if not self._started:
            self._started = True
            while len(self.buf) - self.pos < 3 and self._more():
                pass
            if self.buf.startswith(_BOM, self.pos):
                self.pos += 3
        c = self._peek()
        if c is None:
            raise InputError(self.name, "", "is empty (no JSON in it)")
        if c not in (_LBRACE, _LBRACKET):
            raise self._error(f"not a JSON object or array (starts with {_describe(c)})")
        return c

    # -- values -------------------------------------------------------------------------

    def _string_end(self, start: int) -> int:
        """End (index in buf) of the string starting at ``buf[start]``, reading more if needed."""
        rel = start - self.pos
        while True:
            m = _STR_RE.match(self.buf, self.pos + rel)
            if m is not None:
                return m.end()
            if len(self.buf) - self.pos > MAX_ITEM_BYTES:
                raise self._error(f"a string longer than {MAX_ITEM_BYTES >> 20} MiB")
            if not self._more(grow=True):
                raise self._truncated("a string")

    def _read_string(self) -> str:
        end = self._string_end(self.pos)
        try:
            value = loads(self.buf[self.pos : end])
        except ValueError as exc:
            raise self._error(f"invalid JSON: {exc}") from None
        self.pos = end
        return value

    def _value_end(self) -> int:
        """End (index in buf) of the value at ``pos``, reading more as needed (slow scanner)."""
        c = self.buf[self.pos]
        if c == _QUOTE:
            return self._string_end(self.pos)
        if c not in (_LBRACE, _LBRACKET):
            while True:
                m = _SCALAR_RE.match(self.buf, self.pos)
                if m is None:
                    raise self._error(f"invalid JSON: unexpected {_describe(c)}")
                if m.end() < len(self.buf) or not self._more():
                    return m.end()
        # A container: fast expression first, then token by token.
        m = _VALUE_RE.match(self.buf, self.pos)
        if m is not None:
            return m.end()
        depth = 0
        rel = 0
        while True:
            m = _TOKEN_RE.search(self.buf, self.pos + rel)
            if m is None:
                rel = len(self.buf) - self.pos
            else:
                i = m.start()
                c = self.buf[i]
                if c == _QUOTE:
                    s = _STR_RE.match(self.buf, i)
                    if s is not None:
                        rel = s.end() - self.pos
                        continue
                    rel = i - self.pos
                else:
                    depth += 1 if c in (_LBRACE, _LBRACKET) else -1
                    rel = i + 1 - self.pos
                    if depth == 0:
                        return i + 1
                    continue
            if rel > MAX_ITEM_BYTES:
                raise self._error(f"an item larger than {MAX_ITEM_BYTES >> 20} MiB")
            if not self._more(grow=True):
                raise self._truncated("an object or array")

    def _read_value(self, item: str = "") -> Any:
        """Parse the (small) value at ``pos`` in full."""
        if self._peek() is None:
            raise self._truncated("a value")
        end = self._value_end()
        try:
            value = loads(self.buf[self.pos : end])
        except ValueError as exc:
            raise self._error(f"invalid JSON: {exc}", item=item) from None
        self.pos = end
        return value

    def _skip_value(self) -> None:
        """Consume the value at ``pos`` (checking it is JSON) without keeping it."""
        c = self._peek()
        if c is None:
            raise self._truncated("a value")
        if c == _LBRACKET:
            # Possibly huge (the listens of a Koito export): streamed, item by item.
            for _ in self._array_items("an array"):
                pass
        else:
            # Objects are read whole: no Python recursion however deep they nest.
            self._read_value()

    # -- arrays -------------------------------------------------------------------------

    def _load_run(self, start: int, end: int, first: int) -> list[Any]:
        """Parse ``buf[start:end]``, a run of items separated (and maybe ended) by commas."""
        segment = self.buf[start:end].rstrip(b" \t\r\n,")
        try:
            return orjson.loads(b"[" + segment + b"]")
        except orjson.JSONDecodeError:
            pass
        # Find the bad item (and give Go's leniency a chance) one item at a time.
        values = []
        pos, number = 0, first
        while pos < len(segment):
            m = _ONE_RE.match(segment, pos)
            if m is None:  # pragma: no cover - the run matched these same items
                raise self._error("invalid JSON", start + pos, f"item {number}")
            try:
                values.append(loads(m.group(1)))
            except ValueError as exc:
                raise self._error(f"invalid JSON: {exc}", start + pos, f"item {number}") from None
            pos = m.end()
            number += 1
        return values

    def _signature_run(self, signature: bytes) -> list[Any] | None:
        """The fast path for uniformly written arrays of objects; None when it does not apply.

        Exporters write every item the same way, so the bytes between two items plus the
        next item's first member name (``},\n    {\n      "time":``) recur at every
        item boundary. The last occurrence inside the window is a candidate cut, found by
        ``bytes.rfind`` in C; orjson then proves it: the items before a cut parse as an
        array only if the cut lies between items (a cut inside an item or a string leaves
        something unclosed). When the array ends inside the window (a Last.fm page), orjson
        stops where it ends and one more try looks for a cut before that point. Any doubt
        — no occurrence, invalid or lenient-only text — returns None and the
        expression-based path takes over.
        """
        start = self.pos
        limit = start + RUN_BYTES
        for _attempt in range(3):
            cut = self.buf.rfind(signature, start, limit)
            if cut <= start:
                return None
            try:
                values = orjson.loads(b"[" + self.buf[start : cut + 1] + b"]")
            except orjson.JSONDecodeError as exc:
                try:
                    stop = len(exc.doc[: exc.pos].encode("utf-8", "surrogatepass"))
                except Exception:  # pragma: no cover - orjson gave no usable position
                    return None
                if start + stop - 1 >= cut:
                    return None  # failed at the very end: a cut inside an item
                limit = start + stop - 1
                continue
            self.pos = cut + signature.index(b"{")
            return values
        return None

    def _array_items(self, what: str) -> Iterator[tuple[int, Any]]:
        """Yield ``(number, item)`` for the array at ``pos`` (numbers count from 1)."""
        self.pos += 1  # the "["
        number = 1
        c = self._peek()
        if c == _RBRACKET:
            self.pos += 1
            return
        if c is None:
            raise self._truncated(what)
        learned = what in self._signatures
        signature = self._signatures.get(what)
        while True:
            if signature is not None:
                values = self._signature_run(signature)
                if values is not None:
                    for value in values:
                        yield number, value
                        number += 1
                    continue
            # Parse at most RUN_BYTES at a time, so that the Python objects of one run
            # stay small; an item larger than that gets a run of its own.
            m = _RUN_RE.match(self.buf, self.pos, self.pos + RUN_BYTES)
            if m is None or m.end() == self.pos:
                m = _RUN_RE.match(self.buf, self.pos)
            if m is not None and m.end() > self.pos:
                start, end = self.pos, m.end()
                values = self._load_run(start, end, number)
                if not learned:
                    learned, signature = _separator_signature(self.buf, start, end)
                    if learned:
                        self._signatures[what] = signature
                self.pos = end
                for value in values:
                    yield number, value
                    number += 1
                continue
            m = _LAST_RE.match(self.buf, self.pos)
            if m is not None:
                start, end = self.pos, m.end(1)
                values = self._load_run(start, end, number)
                self.pos = m.end()
                yield number, values[0]
                return
            if len(self.buf) - self.pos < 4 * self.chunk_size and self._more():
                continue
            # Deep, huge, or broken: one item the slow way.
            if self._peek() is None:
                raise self._truncated(what)
            item = f"item {number}"
            if self.buf[self.pos] in (_RBRACKET, _RBRACE, _COMMA, _COLON):
                raise self._error(
                    f"invalid JSON: unexpected {_describe(self.buf[self.pos])}", item=item
                )
            yield number, self._read_value(item)
            number += 1
            c = self._peek()
            if c == _COMMA:
                self.pos += 1
                if self._peek() is None:
                    raise self._truncated(what)
            elif c == _RBRACKET:
                self.pos += 1
                return
            elif c is None:
                raise self._truncated(what)
            else:
                raise self._error(
                    f"invalid JSON: expected ',' or ']' after {item}, found {_describe(c)}"
                )

    # -- navigation ---------------------------------------------------------------------

    def _members(
        self, key: str | None, rest: tuple[Step, ...], prefix: tuple[int, ...] = ()
    ) -> Iterator[tuple[tuple[int, ...], Any]]:
        """Walk the object at ``pos``; descend into member ``key``, skip the others."""
        self.pos += 1  # the "{"
        c = self._peek()
        if c == _RBRACE:
            self.pos += 1
            return
        while True:
            if c is None:
                raise self._truncated("an object")
            if c != _QUOTE:
                raise self._error(f"invalid JSON: expected a member name, found {_describe(c)}")
            name = self._read_string()
            if self._peek() != _COLON:
                raise self._error("invalid JSON: expected ':' after a member name")
            self.pos += 1
            if name == key:
                yield from self._walk(rest, prefix, f"member {name!r}")
            else:
                self._skip_value()
            c = self._peek()
            if c == _COMMA:
                self.pos += 1
                c = self._peek()
            elif c == _RBRACE:
                self.pos += 1
                return
            elif c is None:
                raise self._truncated("an object")
            else:
                raise self._error(f"invalid JSON: expected ',' or '}}', found {_describe(c)}")

    def _walk(
        self, steps: tuple[Step, ...], prefix: tuple[int, ...], label: str
    ) -> Iterator[tuple[tuple[int, ...], Any]]:
        c = self._peek()
        if c is None:
            raise self._truncated("a value")
        if not steps:
            yield prefix, self._read_value()
            return
        if c == ord("n"):
            if self._read_value() is not None:
                raise self._error("invalid JSON")
            return  # null reads as empty, as in Go
        step, rest = steps[0], steps[1:]
        if isinstance(step, _Items):
            if c != _LBRACKET:
                raise self._error(f"expected an array for {label}, found {_describe(c)}")
            if not rest:
                for number, value in self._array_items(f"the array for {label}"):
                    yield (*prefix, number), value
                return
            self.pos += 1
            number = 1
            c = self._peek()
            if c == _RBRACKET:
                self.pos += 1
                return
            while True:
                yield from self._walk(rest, (*prefix, number), f"item {number} of {label}")
                number += 1
                c = self._peek()
                if c == _COMMA:
                    self.pos += 1
                elif c == _RBRACKET:
                    self.pos += 1
                    return
                elif c is None:
                    raise self._truncated(f"the array for {label}")
                else:
                    raise self._error(f"invalid JSON: expected ',' or ']', found {_describe(c)}")
        else:
            if c != _LBRACE:
                raise self._error(f"expected an object for {label}, found {_describe(c)}")
            yield from self._members(step, rest, prefix)

    def items(self, steps: Iterable[Step]) -> Iterator[tuple[tuple[int, ...], Any]]:
        """Yield ``(numbers, value)`` for each value at ``steps`` (one number per ITEMS step).

        A missing key yields nothing (Go leaves the field empty). The rest of the
        document is read (and checked) after the last item, so a truncated file is
        reported even when the listens came first.
        """
        self._start()
        yield from self._walk(tuple(steps), (), "the top level")

    def top_level(self, keys: Iterable[str], stop_at: str | None = None) -> dict[str, Any]:
        """Values of the top-level object's members ``keys``; stop before member ``stop_at``."""
        wanted = set(keys)
        found: dict[str, Any] = {}
        if self._start() != _LBRACE:
            return found
        self.pos += 1
        c = self._peek()
        while c is not None and c != _RBRACE:
            if c != _QUOTE:
                raise self._error(f"invalid JSON: expected a member name, found {_describe(c)}")
            name = self._read_string()
            if name == stop_at:
                return found
            if self._peek() != _COLON:
                raise self._error("invalid JSON: expected ':' after a member name")
            self.pos += 1
            if name in wanted:
                found[name] = self._read_value()
            else:
                self._skip_value()
            c = self._peek()
            if c == _COMMA:
                self.pos += 1
                c = self._peek()
            elif c != _RBRACE and c is not None:
                raise self._error(f"invalid JSON: expected ',' or '}}', found {_describe(c)}")
        if c is None:
            raise self._truncated("the top-level object")
        return found


def _separator_signature(buf: bytes, start: int, end: int) -> tuple[bool, bytes | None]:
    """What separates the first two items of a run, plus the second's first member name.

    Returns ``(decided, signature)``: undecided while the run holds a single item;
    decided with None unless both items are objects whose first member has the same
    name (then the signature is very likely to recur at every item boundary).
    """
    first = _ONE_RE.match(buf, start, end)
    if first is None or first.end() >= end:
        return False, None
    if buf[first.end(1) - 1] != _RBRACE:
        return True, None
    key1 = _FIRST_KEY_RE.match(buf, start, end)
    key2 = _FIRST_KEY_RE.match(buf, first.end(), end)
    if key1 is None or key2 is None:
        return True, None
    name1 = key1.group(0)[1:].strip(b" \t\r\n:")
    name2 = key2.group(0)[1:].strip(b" \t\r\n:")
    if name1 != name2:
        return True, None
    return True, buf[first.end(1) - 1 : key2.end()]


def _single(numbers: tuple[int, ...]) -> Any:
    return numbers[0] if len(numbers) == 1 else numbers


def iter_items(
    path: str | os.PathLike[str], steps: Iterable[Step], chunk_size: int = CHUNK_SIZE
) -> Iterator[tuple[Any, Any]]:
    """Stream the values at ``steps`` in a JSON file: ``(number, value)`` pairs.

    ``number`` counts from 1; with several ITEMS steps it is a tuple (``(page, item)``).
    """
    with open_input(path) as fp:
        reader = JsonReader(fp, str(path), chunk_size)
        for numbers, value in reader.items(steps):
            yield _single(numbers), value


def top_level_values(
    path: str | os.PathLike[str],
    keys: Iterable[str],
    stop_at: str | None = None,
    chunk_size: int = CHUNK_SIZE,
) -> dict[str, Any]:
    """The top-level object's members ``keys`` (those present), read in one streaming pass.

    With ``stop_at``, reading stops at that member — cheap when the wanted members come
    first, as in Koito's own exports; without it, large members are skipped (parsed
    batch by batch, never kept) to reach members written after them.
    """
    with open_input(path) as fp:
        return JsonReader(fp, str(path), chunk_size).top_level(keys, stop_at)


def peek_items(head: bytes, steps: Iterable[Step], limit: int = 1) -> list[Any]:
    """Up to ``limit`` values at ``steps`` in the first bytes of a file; never raises.

    For detection: ``head`` is usually cut in the middle of the document, so whatever
    could be read before the cut is returned.
    """
    out: list[Any] = []
    try:
        reader = JsonReader(io.BytesIO(head), "<head>", max(len(head), 1))
        for _numbers, value in reader.items(steps):
            out.append(value)
            if len(out) >= limit:
                break
    except InputError:
        pass
    return out


class BadLine:
    """What :func:`iter_jsonl` yields for a line that is not JSON (the reason says why;
    ``text``: the line as read, for ``--skipped``)."""

    __slots__ = ("reason", "text")

    def __init__(self, reason: str, text: str = "") -> None:
        self.reason = reason
        self.text = text

    def __repr__(self) -> str:
        return f"BadLine({self.reason!r})"


def _skip_newlines(fp: IO[bytes]) -> int:
    """Consume a run of empty lines at I/O speed; return how many.

    Line by line, a file of nothing but newlines (gigabytes of them compress to a tiny
    zip) would take minutes; a buffered reader lets us look ahead and drop them whole.
    """
    peek = getattr(fp, "peek", None)
    if peek is None:
        return 0
    skipped = 0
    while True:
        try:
            buf = peek(1 << 16)
        except (OSError, ValueError):
            return skipped
        run = len(buf) - len(buf.lstrip(b"\n"))
        if run == 0:
            return skipped
        fp.read(run)
        skipped += run


def iter_jsonl(fp: IO[bytes], name: str) -> Iterator[tuple[int, Any]]:
    """Yield ``(line number, value)`` for each non-blank line; :class:`BadLine` for bad ones.

    A line longer than :data:`MAX_LINE_BYTES` is not held in memory: it is skipped and
    reported as a bad line.
    """
    lineno = 0
    while True:
        try:
            line = fp.readline(MAX_LINE_BYTES + 1)
        except OSError as exc:
            raise InputError(name, f"line {lineno + 1}", f"cannot be read: {exc}") from None
        if not line:
            return
        lineno += 1
        if lineno == 1 and line.startswith(_BOM):
            line = line[3:]
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            while line and not line.endswith(b"\n"):
                line = fp.readline(MAX_LINE_BYTES + 1)
            yield lineno, BadLine(f"line longer than {MAX_LINE_BYTES >> 20} MiB", "")
            continue
        if not line.strip():
            lineno += _skip_newlines(fp)
            continue
        try:
            yield lineno, loads(line)
        except ValueError as exc:
            text = line.rstrip(b"\r\n").decode("utf-8", "replace")
            yield lineno, BadLine(str(exc), text)
