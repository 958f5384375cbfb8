"""``--skipped FILE``: every item that did not become a listen, and what it was.

The summary counts skips by reason; this says which items they were, one JSON object a
line: ``{"file", "where", "reason", "raw"}``. ``where`` is the plugin's position (a line
or item number); an item skipped after parsing (outside ``--since``/``--until``, or
invalid once normalized: an over-long name) has no position of its own, so it is
located by its time (``"listen at 2021-01-31T16:49:00Z"``) and ``raw`` holds the listen
as read. Undecodable bytes in the input were read as U+FFFD (as Koito's Go readers do);
they appear so here.
"""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

import orjson

from koito_import.errors import UsageError
from koito_import.listen import Listen
from koito_import.records import Skip


def _line(record: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(record) + b"\n"
    except TypeError:  # integers beyond 64 bits, odd types from a third-party plugin
        return json.dumps(record, ensure_ascii=False, default=str).encode() + b"\n"


def _when(t: int) -> str:
    try:
        return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return str(t)


class SkipLog:
    """JSON Lines of skipped items, written as they are found."""

    def __init__(self, path: Path, names: dict[str, str] | None = None) -> None:
        self.path = path
        self.names = names or {}
        self.count = 0
        try:
            self._fp: IO[bytes] = path.open("wb")
        except OSError as exc:
            raise UsageError(
                f"--skipped {path}: cannot be written: {exc.strerror or exc}"
            ) from None

    def _write(self, file: str, where: str, reason: str, raw: Any) -> None:
        self.count += 1
        name = self.names.get(file, file)
        self._fp.write(_line({"file": name, "where": where, "reason": reason, "raw": raw}))

    def item(self, path: str, skip: Skip) -> None:
        self._write(path, skip.where, skip.reason, skip.raw)

    def listen(self, path: str, listen: Listen, reason: str) -> None:
        raw = {f.name: getattr(listen, f.name) for f in fields(listen) if f.name != "entities"}
        self._write(path, f"listen at {_when(listen.time)}", reason, raw)

    def close(self) -> None:
        self._fp.close()

    def __enter__(self) -> SkipLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
