"""What installing the project puts on a machine: one package, its data, its plugins.

No generic top-level module named ``plugins`` may land in site-packages (it would clash
with any other distribution's); the built-in importers register through the same
entry-point group as third-party ones (docs/plugins.md).
"""

from __future__ import annotations

import ast
import configparser
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # installs things; independent of the compiled hot path

ROOT = Path(__file__).resolve().parents[1]
BUILTINS = {"maloja", "spotify", "lastfm", "lastfm_csv", "listenbrainz", "koito"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(ROOT),
        ],
        check=True,
    )
    [built] = out.glob("koito_import-*.whl")
    return zipfile.ZipFile(built)


def test_wheel_has_one_top_level_package(wheel: zipfile.ZipFile) -> None:
    tops = {name.split("/", 1)[0] for name in wheel.namelist()}
    assert tops == {"koito_import", next(t for t in tops if t.endswith(".dist-info"))}


def test_wheel_carries_importers_schema_and_extension(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    assert {f"koito_import/importers/{p}.py" for p in BUILTINS} <= names
    assert {"koito_import/schema/sqlite.sql", "koito_import/schema/postgres.sql"} <= names
    assert any(n.startswith("koito_import/_normalize_c") and n.endswith(".so") for n in names)


def test_wheel_registers_builtins_as_entry_points(wheel: zipfile.ZipFile) -> None:
    [ep_file] = [n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt")]
    eps = configparser.ConfigParser()
    eps.read_string(wheel.read(ep_file).decode())
    assert dict(eps["koito_import"]) == {p: f"koito_import.importers.{p}" for p in BUILTINS}
    assert eps["console_scripts"]["koito-import"] == "koito_import.cli:main"


def test_installed_environment_has_no_top_level_plugins_module(tmp_path: Path) -> None:
    probe = (
        "import importlib.util as u, importlib.metadata as m;"
        "print(u.find_spec('plugins') is None,"
        " sorted(e.name for e in m.entry_points(group='koito_import')"
        " if e.value.startswith('koito_import.importers.')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    no_plugins, names = done.stdout.split(" ", 1)
    assert no_plugins == "True"
    assert names.strip() == repr(sorted(BUILTINS))


def test_build_without_a_working_compiler_falls_back(tmp_path: Path) -> None:
    """No compiler must not mean no install: the build warns and ships the Python twin."""
    import os
    import shutil

    src = tmp_path / "src"
    shutil.copytree(
        ROOT, src, ignore=shutil.ignore_patterns(".venv", "build", "*.so", "*.c", "*.db", ".git")
    )
    out = tmp_path / "wheel"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-v",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(out),
            str(src),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "CC": "/bin/false"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "koito-import's C extension could not be built" in done.stdout + done.stderr
    [built] = out.glob("koito_import-*.whl")
    names = zipfile.ZipFile(built).namelist()
    assert not [n for n in names if n.endswith(".so")]
    assert "koito_import/_normalize_py.py" in names


def _stub_names(path: Path) -> set[str]:
    """The names a .pyi defines at module level."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def test_compiled_module_stub_covers_the_public_api() -> None:
    """The .pyi of the compiled twin declares every name ``_normalize`` re-exports."""
    from koito_import import _normalize_py

    stub = ROOT / "koito_import" / "_normalize_c.pyi"
    names = _stub_names(stub)
    missing = set(_normalize_py.__all__) - names
    assert not missing, f"{stub.name} lacks {sorted(missing)}"
    assert "__all__" in names
    assert (ROOT / "koito_import" / "py.typed").is_file()


def test_wheel_carries_the_typing_marker_and_stub(wheel: zipfile.ZipFile) -> None:
    names = set(wheel.namelist())
    assert {"koito_import/py.typed", "koito_import/_normalize_c.pyi"} <= names
