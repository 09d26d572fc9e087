"""create_chat refuses bad input before it writes anything, its id counter included."""

from __future__ import annotations

import pytest

from actors import Engine
from protocol._limits import MAX_LOCATION, MAX_TITLE
from store import Store


@pytest.mark.parametrize(
    "bad",
    [{"title": "t" * (MAX_TITLE + 1)}, {"location": "l" * (MAX_LOCATION + 1)}],
    ids=["title", "location"],
)
async def test_a_refused_chat_writes_nothing_and_uses_no_id(
    engine: Engine, bad: dict[str, str]
) -> None:
    mira = await engine.create_bot("Mira", "barkeep", "")
    assert (await engine.create_chat(mira.id)).id == "c1"
    events = await engine.store.run(Store.event_count)
    with pytest.raises(ValueError, match="at most"):
        await engine.create_chat(mira.id, **bad)
    assert await engine.store.run(Store.event_count) == events
    assert [c.id for c in await engine.list_chats()] == ["c1"]
    # The refused call took no id: the next chat is the very next one.
    assert (await engine.create_chat(mira.id)).id == "c2"
