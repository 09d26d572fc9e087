"""``continue`` through the real engine and store, against the OpenAI-compatible test
server: the model is asked to go on from the beat's words, the tokens append to the same
beat, and a line spoken for someone else is still cut."""

from __future__ import annotations

import sys
from pathlib import Path

import trio

from actors import open_engine
from llm import GO_ON, ScriptedBackend
from protocol import BeatComplete, BeatStarted, ChatState, Token
from store import Store

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.actors.test_beat import (
    BOUND,
    collect_turn,
    make_pair,
    openai_narrator,
    settings_for,
    until,
)
from tests.support.openai_server import run_openai_server


async def test_continue_on_the_openai_backend_goes_on_from_the_beat(tmp_path: Path) -> None:
    async with run_openai_server() as server:
        narrative = openai_narrator(server.url)
        async with open_engine(
            settings_for(tmp_path), narrative=narrative, classifier=ScriptedBackend()
        ) as engine:
            chat_id = await make_pair(engine)
            async with engine.watch(chat_id) as messages:
                await until(messages, ChatState)
                server.script.text = "Mira nods."
                await engine.send_turn(chat_id, "Mira, what's good here?")
                first = await collect_turn(messages)
                beat = next(m for m in first if isinstance(m, BeatComplete))
                # A chat server answers without the space that joins the two.
                server.script.text = 'She pours the ale.\n**Wren:** "Thanks."'
                await engine.continue_beat(chat_id)
                turn = await collect_turn(messages)
            with trio.fail_after(BOUND):
                await server.disconnected.wait()  # the beat hung up at Wren's line
        started = next(m for m in turn if isinstance(m, BeatStarted))
        assert (started.beat_id, started.continues) == (beat.beat_id, beat.event_id)
        assert started.offset == len("Mira nods.")
        tokens = [m for m in turn if isinstance(m, Token)]
        assert tokens[0].offset == len("Mira nods.")
        assert {t.beat_id for t in tokens} == {beat.beat_id}
        assert "".join(t.text for t in tokens) == " She pours the ale."
        complete = next(m for m in turn if isinstance(m, BeatComplete))
        assert (complete.event_id, complete.text) == (
            beat.event_id,
            "Mira nods. She pours the ale.",
        )
        timeline = await engine_timeline(tmp_path, chat_id)
        assert [t.text for t in timeline][-1] == "Mira nods. She pours the ale."
        # The server was shown the beat as the speaker's own words, then told to go on.
        asked = server.requests[-1]["messages"]
        assert asked[-2] == {"role": "assistant", "content": "Mira nods.", "name": "Mira"}
        assert asked[-1] == {"role": "user", "content": GO_ON}
        await narrative.aclose()


async def engine_timeline(tmp_path: Path, chat_id: str) -> list[object]:
    """The chat's timeline as a store reopened from the file reads it (replayable)."""
    async with open_engine(
        settings_for(tmp_path), narrative=ScriptedBackend(), classifier=ScriptedBackend()
    ) as engine:
        return list(await engine.store.run(Store.timeline, chat_id))
