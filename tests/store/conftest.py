"""Fixtures of the store tests: a store on a real database file in a temporary folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from storeworld import add_bot, add_chat, open_store

from store import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A fresh store on ``tmp_path/troupe.db``."""
    opened = open_store(tmp_path)
    yield opened
    opened.close()


@pytest.fixture
def world(store: Store) -> dict[str, str]:
    """Two bots, Mira and Tam, and a chat hosted by Mira at the Lantern Inn."""
    mira = add_bot(store, "Mira", greeting="Welcome, traveller.")
    tam = add_bot(store, "Tam")
    chat_id, _ = add_chat(store, mira, location="Lantern Inn")
    return {"mira": mira, "tam": tam, "chat": chat_id}
