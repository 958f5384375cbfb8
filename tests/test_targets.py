"""The backend registry: the one place a ``--db`` target string is understood."""

from __future__ import annotations

import inspect

import pytest

from koito_import.stores import BACKENDS, display_target, parse_target, sqlite_path
from koito_import.stores.base import Store


@pytest.mark.parametrize(
    ("target", "backend", "location"),
    [
        ("koito.db", "sqlite", "koito.db"),
        ("/srv/koito/koito.db", "sqlite", "/srv/koito/koito.db"),
        ("sqlite:///srv/k.db", "sqlite", "srv/k.db"),
        ("sqlite:////srv/k.db", "sqlite", "/srv/k.db"),
        ("sqlite://k.db", "sqlite", "k.db"),
        ("sqlite:///", "sqlite", "koito.db"),
        ("postgresql://u:pw@db/koito", "postgresql", "postgresql://u:pw@db/koito"),
        ("postgres://u@db/koito", "postgresql", "postgres://u@db/koito"),
    ],
)
def test_a_target_names_its_backend_and_location(target: str, backend: str, location: str):
    parsed = parse_target(target)
    assert (parsed.backend.name, parsed.location) == (backend, location)
    assert sqlite_path(target) == (location if backend == "sqlite" else None)


def test_no_target_falls_back_to_koitos_variables(monkeypatch: pytest.MonkeyPatch, tmp_path):
    monkeypatch.delenv("KOITO_DATABASE_URL", raising=False)
    monkeypatch.delenv("KOITO_CONFIG_DIR", raising=False)
    assert parse_target(None).location == "koito.db"
    monkeypatch.setenv("KOITO_CONFIG_DIR", str(tmp_path))
    assert parse_target(None).location == str(tmp_path / "koito.db")
    monkeypatch.setenv("KOITO_DATABASE_URL", "postgresql://k@db/koito")
    assert parse_target(None).backend.name == "postgresql"


def test_a_target_is_displayed_without_its_password():
    assert "secret" not in display_target("postgresql://koito:secret@db:5432/koito")
    assert display_target("postgresql://koito:secret@db:5432/koito").startswith(
        "postgresql://koito@"
    )
    assert display_target("sqlite:///srv/k.db") == "srv/k.db"


@pytest.mark.parametrize("backend", BACKENDS, ids=lambda b: b.name)
def test_every_backend_is_a_complete_store(backend):
    """A backend line in the registry names a Store that implements everything a run
    needs, its bulk writer included."""
    cls = backend.store_class()
    assert issubclass(cls, Store)
    assert not inspect.isabstract(cls), sorted(getattr(cls, "__abstractmethods__", ()))


def test_the_default_backend_takes_any_path():
    assert BACKENDS[-1].schemes[-1] == ""
    assert parse_target("weird:name.db").backend is BACKENDS[-1]
