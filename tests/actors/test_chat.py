"""The chat actor through the engine: busy, cancel, crashes, watching, shutdown."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio

from actors import Engine, EngineSettings, open_engine
from llm import NarrativeRequest, ScriptedBackend
from protocol import BeatComplete, BeatStarted, ChatState, ProtocolError, Token, TurnSettled
from store import Store


async def make_chat(engine: Engine, guest: bool = False) -> str:
    mira = await engine.create_bot("Mira", "barkeep", "")
    tom = await engine.create_bot("Tobias", "lamplighter", "") if guest else None
    chat = await engine.create_chat(mira.id, tom.id if tom else None, "The Eel")
    return chat.id


async def events(engine: Engine) -> int:
    return await engine.store.run(Store.event_count)


async def until(messages: AsyncIterator[Any], kind: type) -> Any:
    async for message in messages:
        if isinstance(message, kind):
            return message
    raise AssertionError(f"the watch ended before a {kind.__name__}")


async def test_a_turn_streams_commits_and_settles(
    engine: Engine, backend: ScriptedBackend
) -> None:
    chat_id = await make_chat(engine)
    backend.push_narrative("Mira squints at the key.")
    async with engine.watch(chat_id) as messages:
        state = await messages.__anext__()
        assert isinstance(state, ChatState) and state.in_flight is None
        user_turn_id = await engine.send_turn(chat_id, '"Recognise this key?"')
        seen: list[Any] = []
        async for message in messages:
            seen.append(message)
            if isinstance(message, TurnSettled):
                break
    text = "".join(m.text for m in seen if isinstance(m, Token))
    complete = next(m for m in seen if isinstance(m, BeatComplete))
    assert text == complete.text == "Mira squints at the key."
    assert complete.truncated is False and complete.error is None
    seqs = [m.seq for m in seen if not isinstance(m, Token)]
    assert seqs == list(range(state.seq + 1, state.seq + 1 + len(seqs)))
    assert seen[-1] == TurnSettled(chat_id, user_turn_id, seq=seqs[-1])
    # No classifier call before the first token in a one-to-one chat.
    first = next(i for i, r in enumerate(backend.requests) if isinstance(r, NarrativeRequest))
    assert first == 0


async def test_a_second_turn_while_one_is_in_flight_is_busy_and_writes_nothing(
    engine: Engine, backend: ScriptedBackend
) -> None:
    chat_id = await make_chat(engine)
    backend.push_narrative(text="One two three four", stall_after=2)
    async with engine.watch(chat_id) as messages:
        await engine.send_turn(chat_id, "Hello")
        await until(messages, Token)
        before = await events(engine)
        with pytest.raises(ProtocolError) as info:
            await engine.send_turn(chat_id, "Again")
        assert info.value.code == "busy"
        assert await events(engine) == before
        await engine.cancel(chat_id)
        complete = await until(messages, BeatComplete)
    assert complete.truncated and complete.error == "cancelled"
    assert complete.text == "One two"
    await engine.wait_settled(chat_id)
    await engine.cancel(chat_id)  # nothing in flight: a no-op


class Exploding(ScriptedBackend):
    """A backend with a bug for one speaker: it raises something that is not a ModelError."""

    @asynccontextmanager
    async def stream(self, request: NarrativeRequest) -> AsyncIterator[AsyncIterator[str]]:
        if request.speaker == "Bomb":

            async def tokens() -> AsyncIterator[str]:
                yield "Tick "
                yield "tock "
                raise RuntimeError("a bug in the backend")

            yield tokens()
            return
        async with super().stream(request) as chunks:
            yield chunks


async def test_a_crash_in_one_chat_commits_what_it_had_and_spares_the_other(
    tmp_path: Path,
) -> None:
    backend = Exploding()
    settings = EngineSettings(db_path=tmp_path / "t.db", data_dir=tmp_path)
    async with open_engine(settings, narrative=backend, classifier=backend) as engine:
        bomb = await engine.create_bot("Bomb", "explodes", "")
        calm = await engine.create_bot("Calm", "steady", "")
        bad = (await engine.create_chat(bomb.id)).id
        good = (await engine.create_chat(calm.id)).id
        backend.push_narrative(text="All is well here, friend.", stall_after=3)
        async with engine.watch(good) as calm_messages, engine.watch(bad) as bomb_messages:
            await engine.send_turn(good, "Hi")
            await until(calm_messages, Token)  # the good chat is mid-stream...
            await engine.send_turn(bad, "Hi")  # ...when the other one crashes
            crashed = await until(bomb_messages, BeatComplete)
            assert crashed.truncated and crashed.error == "internal"
            assert crashed.text == "Tick tock "
            settled = await until(bomb_messages, TurnSettled)
            assert settled.user_turn_id == crashed.event_id - 2
            await engine.cancel(good)
            calm_beat = await until(calm_messages, BeatComplete)
        assert calm_beat.text == "All is well" and calm_beat.error == "cancelled"
        await engine.wait_settled(good)
        # The crashed chat was restarted and takes turns again; so does the other.
        backend.push_narrative("Fine.")
        await engine.send_turn(good, "Still there?")
        await engine.wait_settled(good)
        assert (await engine.chat_state(good)).timeline[-1].text == "Fine."
        await engine.wait_settled(bad)
        assert [t.truncated for t in (await engine.chat_state(bad)).timeline] == [False, True]
        stats = engine.statistics()["system"]["registries"]["chat"]
        assert stats["active"] == 2


async def test_a_late_watcher_joins_the_beat_in_flight_without_gaps(
    engine: Engine, backend: ScriptedBackend
) -> None:
    chat_id = await make_chat(engine)
    backend.push_narrative(text="The tide turns at midnight tonight", stall_after=3)
    async with engine.watch(chat_id) as first:
        await engine.send_turn(chat_id, "When?")
        await until(first, BeatStarted)
        token = await until(first, Token)
        await trio.testing.wait_all_tasks_blocked()
        async with engine.watch(chat_id) as late:
            state = await late.__anext__()
            assert isinstance(state, ChatState)
            assert state.in_flight is not None
            assert state.in_flight.beat_id == token.beat_id
            assert state.in_flight.text == "The tide turns"
            await engine.cancel(chat_id)
            complete = await until(late, BeatComplete)
            assert complete.seq == state.seq + 1
            assert complete.text == state.in_flight.text


async def test_resume_after_seq_replays_what_was_missed(
    engine: Engine, backend: ScriptedBackend
) -> None:
    chat_id = await make_chat(engine)
    state = await engine.chat_state(chat_id)
    backend.push_narrative("One.")
    await engine.send_turn(chat_id, "First")
    await engine.wait_settled(chat_id)
    async with engine.watch(chat_id, after_seq=state.seq) as messages:
        replayed = []
        async for message in messages:
            replayed.append(message)
            if message["type"] == "turn_settled":
                break
    assert [m["seq"] for m in replayed] == list(
        range(state.seq + 1, state.seq + 1 + len(replayed))
    )
    assert replayed[0]["type"] == "user_turn"
    assert any(m["type"] == "beat_complete" and m["text"] == "One." for m in replayed)
    async with engine.watch(chat_id, after_seq=10_000) as messages:
        assert isinstance(await messages.__anext__(), ChatState)  # ahead: resync


async def test_shutdown_commits_the_beat_in_flight_as_truncated(
    settings: EngineSettings, backend: ScriptedBackend
) -> None:
    async with open_engine(settings, narrative=backend, classifier=backend) as engine:
        chat_id = await make_chat(engine)
        backend.push_narrative(text="A long story that never ends", stall_after=2)
        async with engine.watch(chat_id) as messages:
            await engine.send_turn(chat_id, "Tell me")
            await until(messages, Token)
    async with open_engine(settings, narrative=backend, classifier=backend) as engine:
        last = (await engine.chat_state(chat_id)).timeline[-1]
        assert last.truncated and last.text == "A long"
        stored = await engine.store.run(Store.get_event, last.event_id)
        assert stored is not None and stored.event.error == "shutdown"  # type: ignore[union-attr]


async def test_bad_commands_are_refused_and_write_nothing(engine: Engine) -> None:
    chat_id = await make_chat(engine)
    before = await events(engine)
    for call, code in [
        (engine.send_turn("nope", "hi"), "not_found"),
        (engine.create_chat("ghost"), "not_found"),
        (engine.regenerate(chat_id, 999), "not_found"),
        (engine.rewind(chat_id, 999), "not_found"),
        (engine.pin_memory(12345, True), "not_found"),
        (engine.list_memories("ghost"), "not_found"),
    ]:
        with pytest.raises(ProtocolError) as info:
            await call
        assert info.value.code == code
    assert await events(engine) == before
