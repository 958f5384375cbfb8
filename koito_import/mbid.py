"""MusicBrainz ids as Koito keeps them: canonical lower-case UUID strings."""

from __future__ import annotations

import uuid

NIL = "00000000-0000-0000-0000-000000000000"


def parse_mbid(value: object) -> str:
    """Canonical form of a UUID, or ``""`` when it is missing, invalid or the nil UUID.

    Go's uuid.Parse (what Koito uses) accepts the same spellings Python's UUID does for
    the forms found in exports (plain, braced, urn:uuid:); anything else means "no MBID".
    """
    if not isinstance(value, str) or not value:
        return ""
    try:
        text = str(uuid.UUID(value.strip()))
    except ValueError:
        return ""
    return "" if text == NIL else text
