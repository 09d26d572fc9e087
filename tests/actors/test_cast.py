"""Casts and presence through the engine: what an absent character never hears.

Ada leaves the scene, the person tells Mira a secret word, Ada comes back
and is addressed: nothing built for Ada (her beat's prompt, her state
updates, her interjection question, her scene summary) holds the word, and
no memory of hers does; Mira's do.
"""

from __future__ import annotations

import pytest

from actors import Engine
from llm import ClassifierRequest, NarrativeRequest, ScriptedBackend
from protocol import MAX_CAST, ChatNote, ChatState, Presence, ProtocolError, Token
from store import Store

SECRET = "marigold"


def text_of(request: NarrativeRequest | ClassifierRequest) -> str:
    return "\n".join(message.content for message in request.messages)


def built_for(request: NarrativeRequest | ClassifierRequest, name: str, bot_id: str) -> bool:
    """Whether the request is made from ``name``'s point of view."""
    if isinstance(request, NarrativeRequest):
        return request.speaker == name
    text = text_of(request)
    if request.name == "state_update":
        return request.messages[-1].content.startswith(f"pair: {bot_id} ->")
    if request.name == "interjection":
        return f"{name} is present but was not addressed" in text
    if request.name == "scene_summary":
        return f"Write {name}'s own account" in text
    return False


async def three(engine: Engine) -> tuple[str, str, str, str]:
    mira = await engine.create_bot("Mira", "Keeps the bar.", "")
    ada = await engine.create_bot("Ada", "A cartographer.", "")
    tobin = await engine.create_bot("Tobin", "A dock hand.", "")
    chat = await engine.create_chat(None, cast=(mira.id, ada.id, tobin.id))
    return chat.id, mira.id, ada.id, tobin.id


async def test_an_absent_character_hears_nothing_and_remembers_nothing(
    engine: Engine, backend: ScriptedBackend
) -> None:
    chat_id, mira, ada, tobin = await three(engine)
    await engine.leave_scene(chat_id, ada)
    backend.push_narrative("Mira nods slowly.")
    await engine.send_turn(chat_id, f'"Mira, the word is {SECRET}. Keep it."')
    await engine.wait_settled(chat_id)
    told = len(backend.requests)
    assert any(SECRET in text_of(r) for r in backend.requests), "Mira's requests hold it"

    await engine.enter_scene(chat_id, ada)
    backend.push_narrative("Ada unrolls a map.")
    await engine.send_turn(chat_id, '"Ada, where does this road go?"')
    await engine.wait_settled(chat_id)

    for_ada = [r for r in backend.requests if built_for(r, "Ada", ada)]
    assert any(isinstance(r, NarrativeRequest) for r in for_ada), "Ada spoke"
    assert any(getattr(r, "name", "") == "state_update" for r in for_ada)
    assert not [r for r in backend.requests[:told] if built_for(r, "Ada", ada)], "she was away"
    assert all(SECRET not in text_of(r) for r in for_ada)

    memories = {
        bot: [m.text for m in await engine.list_memories(bot, chat_id)] for bot in (mira, ada)
    }
    assert any(SECRET in text for text in memories[mira])
    assert memories[ada] and all(SECRET not in text for text in memories[ada])
    assert tobin  # present throughout: he heard it (not asserted further)


async def test_prose_moves_characters_before_anyone_answers(
    engine: Engine, backend: ScriptedBackend
) -> None:
    chat_id, mira, ada, tobin = await three(engine)
    backend.push_narrative("Mira waves him off.", keep=True)
    await engine.send_turn(chat_id, "Tobin leaves. *I turn to the bar.* Tobin, wait!")
    await engine.wait_settled(chat_id)
    chat = next(c for c in await engine.list_chats() if c.id == chat_id)
    assert chat.present == (mira, ada)
    speakers = [r.speaker for r in backend.requests if isinstance(r, NarrativeRequest)]
    assert "Tobin" not in speakers, "who leaves in the prose does not answer"

    await engine.send_turn(chat_id, "Tobin walks in, dripping. Tobin, you're back?")
    await engine.wait_settled(chat_id)
    chat = next(c for c in await engine.list_chats() if c.id == chat_id)
    assert chat.present == (mira, ada, tobin)
    speakers = [r.speaker for r in backend.requests if isinstance(r, NarrativeRequest)]
    assert speakers[-1] == "Tobin", "who walks in may answer"


async def test_the_cast_changes_and_is_broadcast_as_presence_then_the_chat(
    engine: Engine,
) -> None:
    chat_id, mira, ada, tobin = await three(engine)
    wren = await engine.create_bot("Wren", "A fiddler.", "")
    async with engine.watch(chat_id) as messages:
        state = await anext(messages)
        assert isinstance(state, ChatState)
        assert state.chat.cast == (mira, ada, tobin) == state.chat.present
        chat = await engine.add_to_cast(chat_id, wren.id)
        assert chat.cast == (mira, ada, tobin, wren.id)
        await engine.leave_scene(chat_id, ada)
        chat = await engine.remove_from_cast(chat_id, tobin)
        assert chat.cast == (mira, ada, wren.id) and chat.present == (mira, wren.id)
        told = [await anext(messages) for _ in range(6)]
    # Each change: its presence, then the chat as it is after it.
    assert [type(m) for m in told] == [Presence, ChatNote] * 3
    assert [(m.bot_id, m.present) for m in told if isinstance(m, Presence)] == [
        (wren.id, True),
        (ada, False),
        (tobin, False),
    ]
    assert [m.chat for m in told if isinstance(m, ChatNote)][-1] == chat
    await engine.delete_bot(wren.id)
    chat = next(c for c in await engine.list_chats() if c.id == chat_id)
    assert chat.cast == (mira, ada)


async def test_nobody_comes_or_goes_while_a_turn_is_in_flight(
    engine: Engine, backend: ScriptedBackend
) -> None:
    chat_id, _mira, ada, _tobin = await three(engine)
    backend.push_narrative(text="Mira starts a long story", stall_after=2)
    async with engine.watch(chat_id) as messages:
        await engine.send_turn(chat_id, '"Mira, tell me a story."')
        async for message in messages:
            if isinstance(message, Token):
                break
        events = await engine.store.run(Store.event_count)
        with pytest.raises(ProtocolError) as refused:
            await engine.leave_scene(chat_id, ada)
        assert refused.value.code == "busy"
        with pytest.raises(ProtocolError) as refused:
            await engine.mute(chat_id, ada)  # who answers is not changed mid-turn either
        assert refused.value.code == "busy"
        assert await engine.store.run(Store.event_count) == events
        await engine.cancel(chat_id)
    await engine.wait_settled(chat_id)
    await engine.leave_scene(chat_id, ada)  # once the turn settled, she may go


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda e, c, bots: e.enter_scene(c, "nobody"), "not_found"),
        (lambda e, c, bots: e.enter_scene(c, bots[1]), "invalid"),  # already there
        (lambda e, c, bots: e.leave_scene("c99", bots[1]), "not_found"),
        (lambda e, c, bots: e.remove_from_cast(c, bots[0]), "invalid"),  # the host
        (lambda e, c, bots: e.add_to_cast(c, bots[1]), "invalid"),
        (lambda e, c, bots: e.create_chat(None, cast=(bots[0],) * 2), "invalid"),
        (lambda e, c, bots: e.create_chat(None, cast=("x",) * (MAX_CAST + 1)), "invalid"),
        (lambda e, c, bots: e.create_chat(None, cast=()), "invalid"),
        (lambda e, c, bots: e.create_chat(None), "invalid"),
        (lambda e, c, bots: e.create_chat(bots[1], cast=tuple(bots)), "invalid"),
        (lambda e, c, bots: e.create_chat(None, cast=(bots[0], "nobody")), "not_found"),
        (lambda e, c, bots: e.mute(c, "nobody"), "not_found"),
        (lambda e, c, bots: e.mute("c99", bots[1]), "not_found"),
        (lambda e, c, bots: e.unmute(c, bots[1]), "invalid"),  # not muted
        (lambda e, c, bots: e.mute(c, bots[3]), "invalid"),  # not in the cast
    ],
)
async def test_bad_cast_commands_are_refused_and_write_nothing(
    engine: Engine, call: object, code: str
) -> None:
    chat_id, mira, ada, tobin = await three(engine)
    outsider = await engine.create_bot("Wren", "A fiddler.", "")
    events = await engine.store.run(Store.event_count)
    with pytest.raises(ProtocolError) as refused:
        await call(engine, chat_id, [mira, ada, tobin, outsider.id])  # type: ignore[operator]
    assert refused.value.code == code
    assert await engine.store.run(Store.event_count) == events
