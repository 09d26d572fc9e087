"""``send_turn(reply_as=...)``: the person forces who answers; a bad bot writes nothing."""

from __future__ import annotations

import pytest

from actors import Engine
from llm import ScriptedBackend
from protocol import ProtocolError


async def _four(engine: Engine) -> tuple[str, list[str]]:
    ids = [
        (await engine.create_bot(name, f"{name} drinks here.", "")).id
        for name in ("Mira", "Ada", "Tobin", "Wren")
    ]
    chat = await engine.create_chat(None, cast=tuple(ids))
    return chat.id, ids


async def test_reply_as_makes_that_character_answer_whoever_is_named(
    engine: Engine, backend: ScriptedBackend
) -> None:
    chat_id, (mira, _ada, tobin, _wren) = await _four(engine)
    backend.push_narrative("Tobin grins.")
    await engine.send_turn(chat_id, '"Mira, a toast!"', reply_as=tobin)
    await engine.wait_settled(chat_id)
    timeline = (await engine.chat_state(chat_id)).timeline
    assert [t.speaker_id for t in timeline if t.kind == "assistant"] == [tobin]
    assert mira != tobin


@pytest.mark.parametrize("which", ["unknown", "away", "outside"])
async def test_an_unknown_or_absent_reply_as_is_refused_and_writes_nothing(
    engine: Engine, backend: ScriptedBackend, which: str
) -> None:
    chat_id, (_mira, ada, _tobin, _wren) = await _four(engine)
    outsider = (await engine.create_bot("Oss", "Counts ships.", "")).id
    await engine.leave_scene(chat_id, ada)
    before = await engine.chat_state(chat_id)
    bot_id = {"unknown": "no-such-bot", "away": ada, "outside": outsider}[which]
    with pytest.raises(ProtocolError) as refused:
        # "Ada walks in" would move her in, were the turn taken: it must not be.
        await engine.send_turn(chat_id, "*Ada walks in.* Hello.", reply_as=bot_id)
    assert refused.value.code == ("not_found" if which == "unknown" else "invalid")
    after = await engine.chat_state(chat_id)
    assert after == before
    assert backend.requests == []
