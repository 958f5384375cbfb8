"""Pick the compiled normalization module, or its pure-Python twin.

Set ``KOITO_IMPORT_NO_EXTENSIONS`` to any non-empty value to force the pure-Python
implementation (the same switch aio-libs projects use). ``__impl__`` says which one is
active: ``"c"`` or ``"python"``.
"""

from __future__ import annotations

import os

if os.environ.get("KOITO_IMPORT_NO_EXTENSIONS"):
    from koito_import._normalize_py import *  # noqa: F403
    from koito_import._normalize_py import __all__ as _names

    __impl__ = "python"
else:
    try:
        from koito_import._normalize_c import *  # type: ignore[import-not-found]  # noqa: F403
        from koito_import._normalize_c import __all__ as _names  # type: ignore[import-not-found]

        __impl__ = "c"
    except ImportError:
        from koito_import._normalize_py import *  # noqa: F403
        from koito_import._normalize_py import __all__ as _names

        __impl__ = "python"

__all__ = [*_names, "__impl__"]
