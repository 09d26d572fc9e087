"""Fixtures of the store tests: a store on a real SQLite file, or on a real PostgreSQL.

Every test that takes ``place`` (or ``store``, ``world``) runs once per
backend: ``sqlite`` (a file in a fresh folder) and ``postgresql`` (a fresh
schema, searched alone, on one server started for the whole run). A test that exercises
SQLite itself (its query plans, its file copies, its full disk) is marked
``sqlite_only`` and is parametrized over ``sqlite`` alone.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from storeworld import Places, Where, add_bot, add_chat, open_store

from store import Store
from tests.support.servers import PostgresServer, postgres_server

BACKENDS = ("sqlite", "postgresql")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "sqlite_only: the test is about SQLite itself")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        only = metafunc.definition.get_closest_marker("sqlite_only") is not None
        metafunc.parametrize("backend", ("sqlite",) if only else BACKENDS)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One PostgreSQL server for the whole run; each test gets databases of its own on it."""
    with postgres_server() as server:
        yield server


@pytest.fixture
def places(backend: str, request: pytest.FixtureRequest) -> Places:
    """Fresh places for stores on the test's backend."""
    server = request.getfixturevalue("postgres") if backend == "postgresql" else None
    return Places(backend, server)


@pytest.fixture
def place(places: Places) -> Iterator[Where]:
    """One fresh place for the test's store (opened again, it is the same database)."""
    with places.fresh() as where:
        yield where


@pytest.fixture
def store(place: Where) -> Iterator[Store]:
    """A fresh store on the test's backend."""
    opened = open_store(place)
    yield opened
    opened.close()


@pytest.fixture
def world(store: Store) -> dict[str, str]:
    """Two bots, Mira and Tam, and a chat hosted by Mira at the Lantern Inn."""
    mira = add_bot(store, "Mira", greeting="Welcome, traveller.")
    tam = add_bot(store, "Tam")
    chat_id, _ = add_chat(store, mira, location="Lantern Inn")
    return {"mira": mira, "tam": tam, "chat": chat_id}
