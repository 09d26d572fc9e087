"""Several people at one table, through the engine: personas, seats, and the chat's queue."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import trio

from actors import Engine, EngineSettings, open_engine
from llm import NarrativeRequest, ScriptedBackend
from protocol import (
    YOU_ID,
    BeatComplete,
    ProtocolError,
    Queued,
    SeatTaken,
    Token,
    TurnQueued,
    TurnSettled,
)
from store import Store


async def tavern(engine: Engine) -> tuple[str, str, str]:
    """A chat with Mira and Tobin, and two personas, Bea and Cal, seated at it."""
    mira = await engine.create_bot("Mira", "Mira keeps the bar.", "")
    tobin = await engine.create_bot("Tobin", "Tobin plays dice.", "")
    chat = await engine.create_chat(None, cast=(mira.id, tobin.id), location="The Eel")
    bea = await engine.create_persona("Bea", "A smuggler with a wooden leg.")
    cal = await engine.create_persona("Cal", "A tired courier.")
    await engine.take_seat(chat.id, bea.id)
    await engine.take_seat(chat.id, cal.id)
    return chat.id, bea.id, cal.id


async def events(engine: Engine) -> int:
    return await engine.store.run(Store.event_count)


async def until(messages: AsyncIterator[Any], kind: type, n: int = 1) -> list[Any]:
    """Read the watch until ``n`` messages of ``kind`` came; every message read, in order."""
    seen: list[Any] = []
    for _ in range(500):
        message = await messages.__anext__()
        seen.append(message)
        if sum(isinstance(m, kind) for m in seen) == n:
            return seen
    raise AssertionError(f"no {n} {kind.__name__} in 500 messages")


async def test_a_seated_persona_speaks_its_own_turn(
    engine: Engine, backend: ScriptedBackend
) -> None:
    chat_id, bea, cal = await tavern(engine)
    backend.push_narrative("Mira slides an ale across.")
    await engine.send_turn(chat_id, '"An ale, Mira."', person_id=bea)
    await engine.wait_settled(chat_id)
    state = await engine.chat_state(chat_id)
    assert state.chat.people == (bea, cal)
    user = next(t for t in state.timeline if t.kind == "user")
    assert user.speaker_id == bea
    beat = next(r for r in backend.requests if isinstance(r, NarrativeRequest))
    assert beat.messages[-1].name == "Bea"
    system = beat.messages[0].content
    assert "Bea (the person you are playing with)" in system
    assert "Cal (another person playing)" in system
    memories = await engine.list_memories("mira", chat_id)
    assert memories and memories[0].text.startswith("Bea said:")
    assert {(e.source_id, e.target_id) for e in state.edges} >= {("mira", bea), ("mira", cal)}
    # `you` never sat nor spoke here: not at this table.
    assert YOU_ID not in {e.target_id for e in state.edges}


async def test_a_connection_with_no_seat_is_you_and_joins_the_table_by_speaking(
    engine: Engine, backend: ScriptedBackend
) -> None:
    chat_id, bea, cal = await tavern(engine)
    backend.push_narrative("Mira nods.")
    await engine.send_turn(chat_id, "Evening.")
    await engine.wait_settled(chat_id)
    state = await engine.chat_state(chat_id)
    assert state.chat.people == (bea, cal, YOU_ID)
    assert [t.speaker_id for t in state.timeline if t.kind == "user"] == [YOU_ID]


async def test_turns_queue_in_arrival_order_and_run_once_the_one_ahead_settles(
    engine: Engine, backend: ScriptedBackend
) -> None:
    chat_id, bea, cal = await tavern(engine)
    backend.push_narrative(text="Mira starts a long story about", stall_after=2)
    backend.push_narrative("Mira shrugs.")
    backend.push_narrative("Tobin rolls the dice.")
    async with engine.watch(chat_id) as messages:
        await messages.__anext__()  # the chat_state
        first = await engine.send_or_queue(chat_id, '"Mira, a story!"', person_id=bea)
        assert isinstance(first, int)
        await until(messages, Token)
        second = await engine.send_or_queue(chat_id, '"Mira?"', person_id=cal, queue=True)
        third = await engine.send_or_queue(chat_id, '"Tobin, dice?"', person_id=bea, queue=True)
        assert isinstance(second, Queued) and isinstance(third, Queued)
        assert (second.position, third.position) == (1, 2)
        seen = await until(messages, TurnQueued, 2)
        queues = [m.queue for m in seen if isinstance(m, TurnQueued)]
        assert [[q.persona_id for q in queue] for queue in queues] == [[cal], [cal, bea]]
        assert (await engine.chat_state(chat_id)).queue == queues[-1]
        await engine.cancel(chat_id)  # stops the beat in flight; the queue runs on
        seen = await until(messages, TurnSettled, 3)
    await engine.wait_settled(chat_id)
    timeline = (await engine.chat_state(chat_id)).timeline
    users = [(t.speaker_id, t.text) for t in timeline if t.kind == "user"]
    assert users == [(bea, '"Mira, a story!"'), (cal, '"Mira?"'), (bea, '"Tobin, dice?"')]
    completes = [m for m in seen if isinstance(m, BeatComplete)]
    assert [c.text for c in completes] == ["Mira starts", "Mira shrugs.", "Tobin rolls the dice."]
    drained = [m.queue for m in seen if isinstance(m, TurnQueued)]
    assert [len(q) for q in drained] == [1, 0]
    assert (await engine.chat_state(chat_id)).queue == ()


async def test_the_fifth_queued_turn_is_busy_and_without_queue_busy_stays(
    engine: Engine, backend: ScriptedBackend
) -> None:
    chat_id, bea, cal = await tavern(engine)
    backend.push_narrative(text="One two three four", stall_after=2)
    async with engine.watch(chat_id) as messages:
        await engine.send_turn(chat_id, "Hello", person_id=bea)
        await until(messages, Token)
        for n in range(4):
            queued = await engine.send_or_queue(chat_id, f"Line {n}", person_id=cal, queue=True)
            assert isinstance(queued, Queued) and queued.position == n + 1
        before = await events(engine)
        for queue in (True, False):
            with pytest.raises(ProtocolError) as refused:
                await engine.send_or_queue(chat_id, "One more", person_id=bea, queue=queue)
            assert refused.value.code == "busy"
        assert await events(engine) == before
        assert len((await engine.chat_state(chat_id)).queue) == 4
        await engine.cancel(chat_id, queued_by=cal)
        await engine.cancel(chat_id)
    await engine.wait_settled(chat_id)


async def test_cancel_with_queued_drops_only_the_senders_own_queued_turns(
    engine: Engine, backend: ScriptedBackend
) -> None:
    chat_id, bea, cal = await tavern(engine)
    backend.push_narrative(text="One two three four", stall_after=2)
    backend.push_narrative("Mira hears Cal out.")
    async with engine.watch(chat_id) as messages:
        await engine.send_turn(chat_id, "Hello", person_id=bea)
        await until(messages, Token)
        await engine.send_or_queue(chat_id, "Bea again", person_id=bea, queue=True)
        await engine.send_or_queue(chat_id, "Cal here", person_id=cal, queue=True)
        await engine.send_or_queue(chat_id, "Bea thrice", person_id=bea, queue=True)
        await until(messages, TurnQueued, 3)
        await engine.cancel(chat_id, queued_by=bea)
        (told,) = [m for m in await until(messages, TurnQueued) if isinstance(m, TurnQueued)]
        assert [q.persona_id for q in told.queue] == [cal]
    await engine.wait_settled(chat_id)
    timeline = (await engine.chat_state(chat_id)).timeline
    assert [t.text for t in timeline if t.kind == "user"] == ["Hello", "Cal here"]


async def test_a_queue_is_refused_a_reply_as_that_is_not_present_and_writes_nothing(
    engine: Engine, backend: ScriptedBackend
) -> None:
    chat_id, bea, _cal = await tavern(engine)
    backend.push_narrative(text="One two three four", stall_after=2)
    async with engine.watch(chat_id) as messages:
        await engine.send_turn(chat_id, "Hello", person_id=bea)
        await until(messages, Token)
        before = await events(engine)
        with pytest.raises(ProtocolError) as refused:
            await engine.send_or_queue(chat_id, "Hi", "nobody", person_id=bea, queue=True)
        assert refused.value.code == "not_found"
        assert (await engine.chat_state(chat_id)).queue == ()
        assert await events(engine) == before
        await engine.cancel(chat_id)
    await engine.wait_settled(chat_id)


async def test_seats_need_a_persona_and_a_chat_and_a_second_seat_writes_nothing(
    engine: Engine,
) -> None:
    chat_id, bea, _cal = await tavern(engine)
    before = await events(engine)
    for chat, persona, code in (
        (chat_id, "nobody", "not_found"),
        ("c404", bea, "not_found"),
        (chat_id, "mira", "not_found"),  # a bot is no persona
    ):
        with pytest.raises(ProtocolError) as refused:
            await engine.take_seat(chat, persona)
        assert refused.value.code == code
    assert (await engine.take_seat(chat_id, bea)).id == bea  # already seated
    assert await events(engine) == before
    with pytest.raises(ProtocolError) as refused:
        await engine.send_turn(chat_id, "Hi", person_id="nobody")
    assert refused.value.code == "not_found"
    assert await events(engine) == before


async def test_personas_are_listed_you_first_and_updated_you_included(engine: Engine) -> None:
    bea = await engine.create_persona("Bea", "A smuggler.")
    await engine.update_persona(bea.id, persona="A retired smuggler.")
    await engine.update_persona(YOU_ID, name="Ana")
    personas = await engine.list_personas()
    assert [(p.id, p.name, p.persona) for p in personas] == [
        (YOU_ID, "Ana", ""),
        (bea.id, "Bea", "A retired smuggler."),
    ]
    assert (await engine.you()).name == "Ana"
    for persona_id, name in (("nobody", "X"), (bea.id, " ")):
        with pytest.raises(ProtocolError):
            await engine.update_persona(persona_id, name=name)


async def test_a_seat_is_told_to_the_chats_watchers_once(engine: Engine) -> None:
    chat_id, _bea, _cal = await tavern(engine)
    dee = await engine.create_persona("Dee", "")
    async with engine.watch(chat_id) as messages:
        await messages.__anext__()
        await engine.take_seat(chat_id, dee.id)
        (told,) = [m for m in await until(messages, SeatTaken) if isinstance(m, SeatTaken)]
    assert told.persona == dee and told.chat_id == chat_id


async def test_queued_turns_survive_a_shutdown_and_run_when_the_engine_opens(
    tmp_path: Path,
) -> None:
    settings = EngineSettings(
        db_path=tmp_path / "troupe.db", data_dir=tmp_path, classifier_timeout=5
    )
    first = ScriptedBackend()
    first.push_narrative(text="One two three four", stall_after=2)
    async with open_engine(settings, narrative=first, classifier=first) as engine:
        chat_id, bea, cal = await tavern(engine)
        async with engine.watch(chat_id) as messages:
            await engine.send_turn(chat_id, "Hello", person_id=bea)
            await until(messages, Token)
            await engine.send_or_queue(chat_id, "Still here?", person_id=cal, queue=True)
    # The shutdown cut the beat in flight short; the queued turn waited on disk.
    second = ScriptedBackend()
    second.push_narrative("Mira blinks awake.")
    async with open_engine(settings, narrative=second, classifier=second) as engine:
        # Nobody asks the chat anything: the engine itself starts the queue as it opens.
        with trio.fail_after(10):
            async with engine.watch(chat_id) as messages:
                state = await messages.__anext__()
                if state.queue or state.in_flight is not None:
                    await until(messages, TurnSettled)
        state = await engine.chat_state(chat_id)
    assert state.queue == ()
    users = [(t.speaker_id, t.text) for t in state.timeline if t.kind == "user"]
    assert users == [(bea, "Hello"), (cal, "Still here?")]
    assert [t.text for t in state.timeline if t.kind == "assistant"][-1] == "Mira blinks awake."


async def test_a_regenerated_or_edited_turn_stays_its_personas(
    engine: Engine, backend: ScriptedBackend
) -> None:
    chat_id, bea, _cal = await tavern(engine)
    for text in ("Mira nods.", "Mira nods again.", "Mira shrugs."):
        backend.push_narrative(text)
    await engine.send_turn(chat_id, '"Mira, an ale."', person_id=bea)
    await engine.wait_settled(chat_id)
    for prose in (None, '"Mira, a cider."'):
        latest = (await engine.chat_state(chat_id)).timeline[-1]
        await engine.regenerate(chat_id, latest.event_id, prose)
        await engine.wait_settled(chat_id)
        beat = [r for r in backend.requests if isinstance(r, NarrativeRequest)][-1]
        assert beat.messages[-1].name == "Bea"
    timeline = (await engine.chat_state(chat_id)).timeline
    assert [(t.kind, t.speaker_id) for t in timeline] == [("user", bea), ("assistant", "mira")]
    assert timeline[0].text == '"Mira, a cider."'
