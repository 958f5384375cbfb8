"""Build glue that pyproject.toml cannot express: the package map and the optional C extension.

The built-in importers live in ``plugins/`` in the source tree but install as
``koito_import.importers`` so that no generic top-level ``plugins`` package lands in
site-packages. The Cython hot path in ``ext/`` is compiled when a compiler is present;
without one the build warns and the pure-Python twin is used (same results, slower).
"""

import os
import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext

PACKAGES = [
    "koito_import",
    "koito_import.schema",
    "koito_import.stores",
    "koito_import.bulk",
    "koito_import.importers",
]


class OptionalBuildExt(build_ext):
    """Build the extension, but never fail the install only because it could not be built."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # pragma: no cover - depends on the build machine
            self._warn(exc)

    def build_extension(self, ext) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:  # pragma: no cover - depends on the build machine
            self._warn(exc)

    @staticmethod
    def _warn(exc: Exception) -> None:
        sys.stderr.write(
            "WARNING: koito-import's C extension could not be built "
            f"({exc}); the pure-Python implementation will be used.\n"
        )


def extensions() -> list:
    if os.environ.get("KOITO_IMPORT_NO_EXTENSIONS"):
        return []
    try:
        from Cython.Build import cythonize
    except ImportError:  # pragma: no cover
        sys.stderr.write("WARNING: Cython is not available; building without the C extension.\n")
        return []
    from setuptools import Extension

    exts = [Extension("koito_import._normalize_c", ["ext/_normalize_c.pyx"])]
    if not os.path.exists(exts[0].sources[0]):
        return []
    try:
        return cythonize(exts, language_level=3, compiler_directives={"binding": False})
    except Exception as exc:  # pragma: no cover - a Cython error must not fail the install
        OptionalBuildExt._warn(exc)
        return []


setup(
    packages=PACKAGES,
    package_dir={"koito_import.importers": "plugins"},
    ext_modules=extensions(),
    cmdclass={"build_ext": OptionalBuildExt},
)
