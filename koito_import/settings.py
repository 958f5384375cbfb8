"""Settings that change how listens match, read once per run.

Koito reads its artist separators from ``KOITO_ARTIST_SEPARATORS_REGEX`` (several
patterns joined by ``;;``); koito-import honours the same variable so an import matches
the way the user's Koito does. The patterns are Python regular expressions, which agree
with Go's RE2 syntax for the separators people use.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from koito_import import _normalize
from koito_import.errors import UsageError

SEPARATORS_ENV = "KOITO_ARTIST_SEPARATORS_REGEX"


@dataclass(frozen=True)
class MatchSettings:
    separators: tuple[str, ...] = _normalize.DEFAULT_SEPARATORS
    compiled: tuple[re.Pattern[str], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            compiled = _normalize.compile_separators(self.separators)
        except re.error as exc:
            raise UsageError(f"invalid artist separator regex {exc.pattern!r}: {exc}") from exc
        object.__setattr__(self, "compiled", compiled)

    @property
    def salt(self) -> str:
        """Goes into every lookup key: a cache row only serves runs that match alike."""
        return ";;".join(self.separators)

    @classmethod
    def from_value(cls, value: str | None) -> MatchSettings:
        """From a ``;;``-separated list (an option or the env var); empty means Koito's default."""
        value = value if value is not None else os.environ.get(SEPARATORS_ENV, "")
        if not value:
            return cls()
        return cls(tuple(value.split(";;")))
