"""Pick the compiled normalization module, or its pure-Python twin.

Set ``KOITO_IMPORT_NO_EXTENSIONS`` to any non-empty value to force the pure-Python
implementation (the same switch aio-libs projects use). The compiled twin is only tried
on CPython (it is built against CPython's C API; PyPy and others get the pure twin), and
the pure twin is used whenever it cannot be imported. ``__impl__`` says which one is
active: ``"c"`` or ``"python"``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping


def wants_extension(implementation: str, environ: Mapping[str, str]) -> bool:
    """Whether to try the compiled twin: on CPython, unless the environment forbids it.

    ``implementation`` is ``sys.implementation.name``; ``environ`` is the process
    environment (``KOITO_IMPORT_NO_EXTENSIONS`` set to any non-empty value says no).
    """
    return implementation == "cpython" and not environ.get("KOITO_IMPORT_NO_EXTENSIONS")


if wants_extension(sys.implementation.name, os.environ):
    try:
        from koito_import._normalize_c import *  # noqa: F403
        from koito_import._normalize_c import __all__ as _names

        __impl__ = "c"
    except ImportError:
        from koito_import._normalize_py import *  # noqa: F403
        from koito_import._normalize_py import __all__ as _names

        __impl__ = "python"
else:
    from koito_import._normalize_py import *  # noqa: F403
    from koito_import._normalize_py import __all__ as _names

    __impl__ = "python"

__all__ = [*_names, "__impl__"]
