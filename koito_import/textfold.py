"""Go's case-insensitive string comparison, which Koito uses to spot "the same name".

Koito compares names with ``strings.EqualFold``: equal under *simple* Unicode case
folding, one character for one. ``str.casefold`` alone would be wrong ("ß" folds to
"ss", which Go does not do), and so would ``upper()`` ("ı" would equal "i").
"""

from __future__ import annotations


def fold_char(ch: str) -> str:
    """Simple case folding of one character: the class Go's EqualFold compares by."""
    folded = ch.casefold()
    if len(folded) == 1:
        return folded
    lowered = ch.lower()
    return lowered if len(lowered) == 1 else ch


def equal_fold(a: str, b: str) -> bool:
    """Go's ``strings.EqualFold``."""
    if a == b:
        return True
    if len(a) != len(b):
        return False
    if a.isascii() and b.isascii():
        return a.lower() == b.lower()
    return all(x == y or fold_char(x) == fold_char(y) for x, y in zip(a, b, strict=True))


def fold_key(name: str) -> str:
    """A key equal for two names exactly when :func:`equal_fold` says they are equal."""
    if name.isascii():
        return name.lower()
    return "".join(fold_char(ch) for ch in name)
