"""Type stub of the compiled normalization module (built from ``ext/_normalize_c.pyx``).

Its API is the same as that of the pure-Python twin ``koito_import._normalize_py``;
``koito_import._normalize`` picks one of the two at import time.
"""

import re
from collections.abc import Sequence
from typing import Final

from koito_import.listen import Listen

MAX_FIELD_CHARS: Final[int]
MIN_TIME: Final[int]
MAX_TIME: Final[int]
DEFAULT_SEPARATORS: tuple[str, ...]

def compile_separators(patterns: Sequence[str]) -> tuple[re.Pattern[str], ...]: ...
def storable(value: str) -> str: ...
def clean(value: str) -> str: ...
def equal_fold(a: str, b: str) -> bool: ...
def parse_artists(artist: str, title: str, separators: Sequence[re.Pattern[str]]) -> list[str]: ...
def prepare(listen: Listen) -> Listen: ...
def lookup_key(listen: Listen, salt: str = "") -> str: ...
def normalize_batch(
    listens: list[Listen], salt: str
) -> tuple[list[Listen], list[str], list[tuple[int, str]]]: ...

class ListenMap:
    def __init__(self) -> None: ...
    def get(self, track: int, time: int) -> int | None: ...
    def set(self, track: int, time: int, value: int) -> None: ...
    def reserve(self, count: int) -> None: ...
    def _capacity(self) -> int: ...
    def __len__(self) -> int: ...

# Test helpers (not part of the twins' shared API).
def _fast_paths() -> dict[str, bool]: ...
def _blake2b_hex(data: bytes) -> str: ...

__all__ = [
    "DEFAULT_SEPARATORS",
    "MAX_FIELD_CHARS",
    "MAX_TIME",
    "MIN_TIME",
    "ListenMap",
    "clean",
    "compile_separators",
    "equal_fold",
    "lookup_key",
    "normalize_batch",
    "parse_artists",
    "prepare",
    "storable",
]
