"""The house rules of docs/architecture.md that a test can check.

All SQL lives under ``koito_import/stores/`` and ``koito_import/schema/``; the matching
rules and the bulk path import no backend; the stores never import the bulk path.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "koito_import"
SQL_HOMES = ("stores", "schema")
#: Statement shapes, not words: prose in comments and docstrings may name them freely.
SQL = re.compile(
    r"\bSELECT\b.*\bFROM\b|\bINSERT\b(\s+OR\s+\w+)?\s+INTO\b|\bUPDATE\s+\w+\s+SET\b|\bDELETE\s+FROM\b"
    r"|\bPRAGMA\s+\w+|\bCREATE\s+(TEMP\s+)?(TABLE|INDEX|VIEW)\b|\bCOPY\s+\w+\s*\(",
    re.DOTALL,
)


def _modules(*, outside: tuple[str, ...] = ()) -> list[Path]:
    return [
        p for p in sorted(PACKAGE.rglob("*.py")) if p.relative_to(PACKAGE).parts[0] not in outside
    ]


def _code_strings(path: Path) -> list[tuple[int, str]]:
    """String literals of a module that are not docstrings (f-strings' literal parts too)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                docstrings.add(id(body[0].value))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            text = "".join(v.value for v in node.values if isinstance(v, ast.Constant))
            out.append((node.lineno, text))
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and id(node) not in docstrings
        ):
            out.append((node.lineno, node.value))
    return out


def test_the_sql_detector_sees_sql():
    assert SQL.search("SELECT a.id FROM artists a")
    assert SQL.search("INSERT INTO listens (track_id) VALUES (?)")
    assert SQL.search("INSERT OR IGNORE INTO listens (track_id) VALUES (?)")
    assert SQL.search("UPDATE tracks SET duration = ? WHERE id = ?")
    assert not SQL.search("select the plugin from the list")


@pytest.mark.parametrize(
    "path", _modules(outside=SQL_HOMES), ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_no_sql_outside_stores_and_schema(path: Path):
    found = [(line, text) for line, text in _code_strings(path) if SQL.search(text)]
    assert not found, f"SQL in {path.relative_to(PACKAGE)} (lines {[n for n, _ in found]})"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize(
    ("room", "forbidden"),
    [
        ("stores", ("koito_import.bulk", "koito_import.pipeline", "koito_import.cli")),
        (
            "bulk",
            (
                "koito_import.pipeline",
                "koito_import.cli",
                "koito_import.stores.sqlite",
                "koito_import.stores.postgres",
                "psycopg",
                "sqlite3",
            ),
        ),
        ("resolver.py", ("koito_import.stores", "koito_import.bulk")),
        ("cli.py", ("koito_import.stores.sqlite", "koito_import.stores.postgres", "sqlite3")),
        ("pipeline.py", ("koito_import.stores.sqlite", "koito_import.stores.postgres", "sqlite3")),
        ("catalog.py", ("koito_import.stores", "koito_import.bulk")),
    ],
)
def test_imports_point_downward(room: str, forbidden: tuple[str, ...]):
    target = PACKAGE / room
    paths = sorted(target.rglob("*.py")) if target.is_dir() else [target]
    assert paths
    for path in paths:
        bad = {n for n in _imports(path) if n.startswith(forbidden)}
        assert not bad, f"{path.relative_to(PACKAGE)} imports {sorted(bad)}"
