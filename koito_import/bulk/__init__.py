"""The bulk path: Koito's matching run once per lookup key against memory, written in bulk.

This package only matches. ``submitter`` drives a run (batches, transactions, the memo
of resolutions), ``memcatalog`` answers the resolver from an in-memory slice of the
catalog and records what changed, ``writebehind`` runs the writes on a thread, and
``heap`` hands freed memory back to the system between steps. No
SQL lives here: the slice comes from ``stores.slices``, and what a step changed is
handed to the store's bulk writer as a ``stores.bulkwrite.ChangeSet``.
"""

from koito_import.bulk.submitter import (
    CHUNK,
    BulkResult,
    BulkSubmitter,
    commits_in_pieces,
    safe_cuts,
)

__all__ = ["CHUNK", "BulkResult", "BulkSubmitter", "commits_in_pieces", "safe_cuts"]
