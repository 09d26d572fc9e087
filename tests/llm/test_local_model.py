"""The real embedded model: it streams, stops on cancel, and answers schema-valid JSON;
a reply that reaches its cap ends at a whole sentence and says ``length``; the prompt keeps
its instructions above a separator, and the model stops at another speaker's line.

The model runs in a worker process; the crash tests through the engine and
the gateway are in tests/actors/test_local_engine.py and
tests/web/test_local_gateway.py.
"""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

import llm._local
from llm import (
    ClassifierRequest,
    LocalBackend,
    Message,
    ModelError,
    ModelLength,
    ModelSettings,
    NarrativeRequest,
    transcript,
)
from llm._local import MAX_STARTS, SEPARATOR, SentenceTail
from llm._local_process import WorkerProcess
from llm._local_worker import json_complete

SCORE = {
    "type": "object",
    "properties": {"significance": {"type": "integer", "minimum": 0, "maximum": 3}},
    "required": ["significance"],
}


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture
async def local(cache_dir: Path) -> AsyncIterator[LocalBackend]:
    backend = LocalBackend(ModelSettings(cache_dir=str(cache_dir), context=1024))
    yield backend
    await backend.aclose()


def request(max_tokens: int = 16) -> NarrativeRequest:
    return NarrativeRequest(
        (
            Message("system", "Mira keeps the bar at a harbour tavern."),
            Message("user", "Evening, Mira. Any rooms free tonight?", "Ana"),
        ),
        speaker="Mira",
        max_tokens=max_tokens,
        temperature=0.0,
    )


async def read(local: LocalBackend, req: NarrativeRequest) -> tuple[list[str], bool]:
    """The reply's chunks, and whether it ended at its token cap."""
    pieces: list[str] = []
    try:
        async with local.stream(req) as chunks:
            async for text in chunks:
                pieces.append(text)
    except ModelLength:
        return pieces, True
    return pieces, False


async def test_the_local_model_streams_text_and_json(local: LocalBackend) -> None:
    pieces, _ = await read(local, request())
    reply = "".join(pieces)
    assert reply.strip(), "the model said nothing"
    assert "\nAna:" not in reply  # it stops at the next speaker's tag
    assert len(pieces) <= 16

    answer = await local.complete_json(
        ClassifierRequest(
            "significance",
            (Message("system", "Rate 0 to 3."), Message("user", "Mira reveals her real name.")),
            SCORE,
            max_tokens=24,
        )
    )
    assert answer["significance"] in (0, 1, 2, 3)

    # Leaving the stream early stops generation; the model serves the next call at once.
    async with local.stream(request(200)) as chunks:
        async for _text in chunks:
            break
    assert local.statistics().busy is False  # the worker acknowledged the stop
    assert (await read(local, request(4)))[0]
    stats = local.statistics()
    assert stats.requests == 4 and stats.overlaps == 0
    assert stats.starts == 1 and stats.crashes == 0


async def test_a_model_that_cannot_load_says_why_and_is_not_retried_forever(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "no-such-model.gguf"
    backend = LocalBackend(ModelSettings(model_path=str(missing)))
    try:
        for _ in range(MAX_STARTS):
            with pytest.raises(ModelError, match="could not load"):
                await backend.complete_json(ClassifierRequest("x", (), SCORE))
        # Past the restart budget, requests fail at once without another start.
        with pytest.raises(ModelError, match="not starting it again yet"):
            async with backend.stream(request()) as chunks:
                async for _text in chunks:
                    pass
        assert backend.statistics().starts == MAX_STARTS
    finally:
        await backend.aclose()


async def test_a_worker_that_does_not_acknowledge_a_stop_is_killed_and_replaced(
    local: LocalBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(llm._local, "STOP_TIMEOUT", 0.5)
    async with local.stream(request(200)) as chunks:
        async for _text in chunks:
            pid = local.statistics().worker_pid
            assert pid is not None
            os.kill(pid, signal.SIGSTOP)  # frozen: it can never acknowledge the stop
            break
    # Leaving the stream waited for the acknowledgment, gave up, and killed the worker.
    stats = local.statistics()
    assert stats.kills == 1 and stats.crashes == 0
    assert stats.busy is False and stats.worker_pid is None
    assert (await read(local, request(4)))[0]
    assert local.statistics().restarts == 1


def test_a_grammar_call_stops_as_soon_as_the_json_value_is_whole() -> None:
    assert not json_complete("")
    assert not json_complete(' {"significance": ')
    assert not json_complete('{"a": "}"')
    assert json_complete('{"significance": 1}')
    assert json_complete(' {"a": {"b": [1, "}"]}}')


# --- defects: beats that spoke for the person, looped, printed the rules, ended mid-word ---


async def test_a_reply_at_its_cap_ends_at_a_whole_sentence_and_says_length(
    local: LocalBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent: list[dict[str, Any]] = []
    send = WorkerProcess.send

    async def spy(worker: WorkerProcess, message: dict[str, Any]) -> None:
        sent.append(message)
        await send(worker, message)

    monkeypatch.setattr(WorkerProcess, "send", spy)

    def asked(max_tokens: int) -> NarrativeRequest:
        return NarrativeRequest(
            (
                Message("system", "Mira keeps the bar at a harbour tavern."),
                Message(
                    "assistant",
                    "*Mira sets down a glass.* "
                    '"Rain\'s coming in. You drinking, or just drying off?"',
                    "Mira",
                ),
                Message("user", '"What happened at the lighthouse?"', "Ana"),
            ),
            speaker="Mira",
            max_tokens=max_tokens,
            temperature=0.0,  # the same reply both times, as far as each goes
            stop=("\nAna:",),
        )

    whole, capped = await read(local, asked(120))
    assert not capped
    pieces, capped = await read(local, asked(10))
    reply = "".join(pieces)
    assert capped, f"the reply ended before its cap: {reply!r}"
    assert reply.strip() and "".join(whole).startswith(reply)
    # It ends at a sentence's end (its mark, perhaps a closing quote or asterisk), not
    # where the cap fell.
    assert reply.rstrip("\"'*)”’_")[-1] in ".!?…", reply
    assert local.statistics().errors == 0  # a long reply is no failure

    # The worker was asked for llama.cpp's repetition controls and every speaker-line form.
    op = next(m for m in sent if m.get("op") == "stream")
    assert op["repeat_penalty"] > 1.0 and op["frequency_penalty"] > 0
    assert op["presence_penalty"] > 0
    assert {"\nAna:", "\n- Ana:", "\n**Ana:**", "\n*Ana*:", "\n#"} <= set(op["stop"])


def test_the_transcript_keeps_the_instructions_above_a_separator() -> None:
    prompt, stops = transcript(
        (
            Message("system", "# Mira\nKeeps the bar.\n\n# How to write\n- Stay in character."),
            Message("assistant", "Evening.", "Mira"),
            Message("user", "A room, please.", "Wren"),
        ),
        "Mira",
        ("Wren", "Tobias"),
    )
    rules, story = prompt.split(SEPARATOR)
    assert "# How to write" in rules and "#" not in story
    assert story == "Mira: Evening.\nWren: A room, please.\nMira:"
    assert "\nTobias:" in stops and "\n- Wren:" in stops and "\nMira:" not in stops


def test_the_text_after_the_last_sentence_is_held_only_near_the_cap() -> None:
    tail = SentenceTail(max_tokens=12, tail=6)
    words = ["Mira", " nods", ".", " She", " pours", ".", " The", " rain", " keeps"]
    shown = [tail.feed(w) for w in words]
    assert shown[:6] == words[:6]  # far from the cap: at once
    assert shown[6:] == ["", "", ""]  # near it: only up to a sentence end
    assert tail.at_cap() == ""  # the shown text already ends a sentence
    tail = SentenceTail(max_tokens=12, tail=6)
    for w in [*words[:6], " Then", ' "Go', '."', " She"]:
        tail.feed(w)
    assert tail.at_cap() == ""  # '."' passed once ' She' followed it
    tail = SentenceTail(max_tokens=4, tail=6)
    assert [tail.feed(w) for w in ["No", " end", " in", " sigh"]] == ["", "", "", ""]
    assert tail.at_cap() == "No end in"  # no sentence at all: whole words
    tail = SentenceTail(max_tokens=100)
    assert [tail.feed(w) for w in ["Hi", ".", "\n", " "]] == ["Hi", ".", "", ""]
    assert tail.at_end() == ""  # a reply never ends in whitespace


def test_the_per_turn_notes_follow_the_older_lines_in_the_transcript() -> None:
    system = "# Mira\nKeeps the bar."
    notes = "\n\n# How Mira feels about them\n- Wren: wary"
    prompt, _ = transcript(
        (
            Message("system", system + notes),
            Message("user", "A room, please.", "Wren"),
            Message("assistant", "Room nine.", "Mira"),
            Message("user", "And supper?", "Wren"),
        ),
        "Mira",
        notes_from=len(system),
    )
    rules, story = prompt.split(SEPARATOR)
    assert rules == system
    assert story == (
        "Wren: A room, please.\nMira: Room nine.\n\n"
        "# How Mira feels about them\n- Wren: wary\n\nWren: And supper?\nMira:"
    )


def test_a_continued_reply_ends_the_transcript_with_its_words() -> None:
    messages = (Message("system", "# Mira"), Message("user", "A room, please.", "Wren"))
    prompt, _ = transcript(messages, "Mira", ("Wren",), said="Mira nods.")
    assert prompt.endswith("Wren: A room, please.\nMira: Mira nods.")
    plain, _ = transcript(messages, "Mira", ("Wren",))
    assert plain.endswith("Mira:")


async def test_the_reply_does_not_copy_the_line_just_said_to_it(
    local: LocalBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    line = "I am glad I came in. Honestly, this is the friendliest bar on the coast."
    asked = NarrativeRequest(
        (
            Message("system", "Mira keeps the Gilded Eel, a bar on the coast."),
            Message("user", line, "Wren"),
            Message("assistant", line, "Mira"),
            Message("user", line, "Wren"),
        ),
        speaker="Mira",
        max_tokens=40,
        temperature=0.0,
    )
    pieces, _ = await read(local, asked)
    reply = "".join(pieces).lower()
    assert reply.strip()
    assert "i am glad i came in" not in reply and "friendliest bar on the coast" not in reply

    # Without the ban the same prompt draws the line back, word for word: the ban is
    # what keeps it out, not the prompt.
    monkeypatch.setattr(llm._local, "NGRAM", 0)
    pieces, _ = await read(local, asked)
    assert "friendliest bar on the coast" in "".join(pieces).lower()
