"""How many listens of an input went where: the one shape every path reports.

The bulk path (``BulkResult``), the per-listen path (``submit.replay``) and a file's line
in the summary (``pipeline.FileReport``) all count the same things, so they share this
type and add into each other with ``add`` instead of copying fields one by one.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, fields


@dataclass
class ImportCounts:
    """read == sum(skipped) + duplicates + inserted + already_present."""

    read: int = 0
    #: Reason -> listens skipped for it (by the plugin, the time window, normalization
    #: or matching).
    skipped: Counter[str] = field(default_factory=Counter)
    #: Exact duplicates in the input (same key, same second as an earlier listen).
    duplicates: int = 0
    inserted: int = 0
    #: Listens heard before the run (the user had a listen at that second), listens
    #: whose (track, second) the database already held, and listens whose (track,
    #: second) an earlier listen of this run with a different key already wrote.
    already_present: int = 0
    new_artists: int = 0
    new_albums: int = 0
    new_tracks: int = 0

    def add(self, other: ImportCounts, *, read: bool = True) -> None:
        """Add ``other``'s counts to these (``read=False``: all but ``read``, for a
        report that counted the listens it passed on itself)."""
        for f in fields(ImportCounts):
            if f.name == "skipped":
                self.skipped.update(other.skipped)
            elif read or f.name != "read":
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))
