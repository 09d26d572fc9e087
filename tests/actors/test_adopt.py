"""A cluster node's engine taking chats over and letting them go (docs/scale-out.md)."""

from __future__ import annotations

from pathlib import Path

from actors import EngineSettings, open_engine
from llm import ScriptedBackend
from protocol import ChatState, Segment
from protocol import events as ev
from store import Store, open_store


def leave_beats_open(path: Path) -> None:
    """Two chats, each with a beat a crashed owner left open (one with a checkpoint)."""
    store = Store.open(path, data_dir=path.parent, recover=False)
    store.append(ev.BotCreated("mira", "Mira", "a barkeep", ""))
    for chat_id in ("c1", "c2"):
        store.append(ev.ChatCreated(chat_id, "T", "mira"))
        (user_id,) = store.append(ev.UserTurn(chat_id, "Hi.", (Segment("narration", "Hi."),))).ids
        (beat,) = store.append(ev.AssistantTurnStarted(chat_id, "mira", user_id)).ids
        store.checkpoint_beat(beat, chat_id, f"Well, {chat_id}")
    store.close()


async def test_adopting_ends_only_the_adopted_chats_beats(tmp_path: Path) -> None:
    path = tmp_path / "troupe.db"
    leave_beats_open(path)
    settings = EngineSettings(db_path=path, data_dir=tmp_path)
    backend = ScriptedBackend()
    async with (
        open_store(path, data_dir=tmp_path, recover=False) as store,
        open_engine(
            settings, narrative=backend, classifier=backend, store=store, resume=False
        ) as engine,
    ):
        assert await store.run(Store.open_beats, "c1") != []
        async with engine.watch("c1") as messages:
            state = await messages.__anext__()
            assert isinstance(state, ChatState)
            assert await engine.adopt_chats(lambda chat_id: chat_id == "c1") == ["c1"]
            # The watch here starts again from the log, which has the ended beat.
            again = await messages.__anext__()
            assert isinstance(again, ChatState) and again.seq > state.seq
            ended = again.timeline[-1]
            assert (ended.text, ended.truncated) == ("Well, c1", True)
        assert await store.run(Store.open_beats, "c1") == []
        assert len(await store.run(Store.open_beats, "c2")) == 1
        replay = await store.run(Store.messages_after, "c1", 0)
        assert replay is not None and replay[-1]["type"] == "beat_complete"


async def test_stopping_chats_stops_only_theirs(tmp_path: Path) -> None:
    settings = EngineSettings(db_path=tmp_path / "troupe.db", data_dir=tmp_path)
    backend = ScriptedBackend()
    async with open_engine(settings, narrative=backend, classifier=backend) as engine:
        mira = await engine.create_bot("Mira", "barkeep", "")
        one = await engine.create_chat(mira.id, None, "One")
        two = await engine.create_chat(mira.id, None, "Two")
        for chat in (one, two):
            backend.push_narrative("Mira nods.")
            await engine.send_turn(chat.id, "Evening.")
            await engine.wait_settled(chat.id)
        assert {one.id, two.id} <= set(engine.active_chats())
        await engine.stop_chats(lambda chat_id: chat_id == one.id)
        assert one.id not in engine.active_chats()
        assert two.id in engine.active_chats()
