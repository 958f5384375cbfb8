"""The repository documents itself: every cited document is in it, nothing points outside.

Markdown links and ``*.md`` references (in the Markdown files, and in the docstrings and
comments of the Python code) must name files of this repository; no file may cite a
machine path or documents that only existed beside the checkout.
"""

from __future__ import annotations

import ast
import io
import re
import subprocess
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: Where the Python sources whose docstrings and comments are checked live.
PY_DIRS = ("koito_import", "plugins", "benchmarks", "tests")

#: Strings no file may contain: a machine path, or a path out of the checkout. Built by
#: concatenation so that this file does not contain them itself.
OUTSIDE = ("/wo" + "rk/", "../sha" + "red", "shared" + "/spec/")
#: The only file allowed to contain them: it locates Koito's sample assets.
OUTSIDE_ALLOWED = {"tests/conftest.py"}
#: Documents that are not part of the repository (matched case-sensitively).
FOREIGN_DOCS = ("PERF-" + "NOTES", "seed-bulk-" + "import-plan", "DESIGN" + ".md", "KOITO" + ".md")

_MD_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_MD_REF = re.compile(r"(?<![\w./-])([\w./-]*\w\.md)(?![\w/-])")
_URL = re.compile(r"[a-zA-Z][\w+.-]*://\S+")


def _files() -> list[str]:
    """The repository's files: tracked ones and new ones not ignored, that exist."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return sorted({f for f in out.split("\0") if f and (ROOT / f).is_file()})


@pytest.fixture(scope="module")
def files() -> list[str]:
    try:
        return _files()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")


def _resolves(ref: str, source: str) -> bool:
    """Whether ``ref`` (cited in ``source``) names a file or directory of the repository.

    A reference is relative to the citing file's directory, or, as in prose ("see
    docs/decisions.md"), to the repository root.
    """
    ref = ref.split("#", 1)[0]
    if not ref:
        return True  # an anchor in the same document
    for base in ((ROOT / source).parent, ROOT):
        target = (base / ref).resolve()
        if target.is_relative_to(ROOT) and target.exists():
            return True
    return False


def _markdown_refs(text: str) -> set[str]:
    refs = set()
    for m in _MD_LINK.finditer(text):
        link = m.group(1)
        if not re.match(r"[a-zA-Z][\w+.-]*:", link):  # not https:, mailto:, ...
            refs.add(link)
    bare = _URL.sub(" ", _MD_LINK.sub(" ", text))
    refs.update(_MD_REF.findall(bare))
    return refs


def _prose_of_python(text: str) -> str:
    """The docstrings, other bare string statements and comments of a Python source."""
    parts = [
        node.value.value
        for node in ast.walk(ast.parse(text))
        if isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    ]
    for tok in tokenize.generate_tokens(io.StringIO(text).readline):
        if tok.type == tokenize.COMMENT:
            parts.append(tok.string)
    return "\n".join(parts)


def _python_refs(text: str) -> set[str]:
    return set(_MD_REF.findall(_URL.sub(" ", _prose_of_python(text))))


def test_markdown_links_resolve(files: list[str]) -> None:
    broken = [
        f"{name}: {ref}"
        for name in files
        if name.endswith(".md")
        for ref in sorted(_markdown_refs((ROOT / name).read_text(encoding="utf-8")))
        if not _resolves(ref, name)
    ]
    assert not broken, "\n".join(broken)


def test_python_docstrings_and_comments_cite_existing_docs(files: list[str]) -> None:
    broken = [
        f"{name}: {ref}"
        for name in files
        if name.endswith(".py") and name.startswith(tuple(d + "/" for d in PY_DIRS))
        for ref in sorted(_python_refs((ROOT / name).read_text(encoding="utf-8")))
        if not _resolves(ref, name)
    ]
    assert not broken, "\n".join(broken)


def test_no_file_points_outside_the_repository(files: list[str]) -> None:
    found = [
        f"{name}: {needle}"
        for name in files
        if name not in OUTSIDE_ALLOWED
        for needle in OUTSIDE
        if needle.encode() in (ROOT / name).read_bytes()
    ]
    assert not found, "\n".join(found)


def test_no_file_cites_documents_outside_the_repository(files: list[str]) -> None:
    found = [
        f"{name}: {needle}"
        for name in files
        for needle in FOREIGN_DOCS
        if needle.encode() in (ROOT / name).read_bytes()
    ]
    assert not found, "\n".join(found)


@pytest.mark.parametrize(
    "doc", ["README.md", "docs/koito.md", "docs/write-floors.md", "docs/architecture.md"]
)
def test_documentation_exists(doc: str) -> None:
    assert (ROOT / doc).is_file(), f"{doc} is missing"


def test_the_checks_catch_what_they_look_for() -> None:
    """The patterns themselves: a broken link, a bare reference, a URL that is no file."""
    text = (
        "See [the notes](docs/nowhere.md#x), [a site](https://example.org/a.md), "
        "docs/missing.md and [here](#top); https://example.org/b.md is a URL."
    )
    assert _markdown_refs(text) == {"docs/nowhere.md#x", "#top", "docs/missing.md"}
    assert not _resolves("docs/nowhere.md#x", "README.md")
    assert _resolves("#top", "README.md")
    assert _resolves("../README.md", "docs/plugins.md")
    assert _resolves("docs/plugins.md", "koito_import/listen.py")
    source = '"""See docs/gone.md."""\nx = "not/a/doc.md"  # but old.md is\n'
    assert _python_refs(source) == {"docs/gone.md", "old.md"}
