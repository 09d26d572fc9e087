"""The scripted backend and the tolerant JSON extractor."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from llm import (
    ClassifierRequest,
    Message,
    ModelError,
    ModelOutputError,
    NarrativeRequest,
    ScriptedBackend,
    extract_json,
    split_tokens,
)

SCHEMA = {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}


def narrative(text: str) -> NarrativeRequest:
    return NarrativeRequest((Message("user", text, "Ana"),), speaker="Mira")


async def stream(model: ScriptedBackend, text: str) -> list[str]:
    async with model.stream(narrative(text)) as chunks:
        return [chunk async for chunk in chunks]


async def test_replies_in_order_by_pattern_and_from_a_file(tmp_path: Path) -> None:
    script = tmp_path / "replies.toml"
    script.write_text(
        '[[narrative]]\ntext = "First reply."\n'
        '[[narrative]]\nmatch = "(?i)dragon"\ntext = "Fire!"\n'
        '[[narrative]]\ntext = "Second reply."\n'
        "[[classifier.score]]\njson = { x = 2 }\n"
        '[[classifier.score]]\nraw = "not json"\n'
    )
    model = ScriptedBackend.from_file(script)
    assert "".join(await stream(model, "hello")) == "First reply."
    assert "".join(await stream(model, "a DRAGON!")) == "Fire!"
    assert await stream(model, "hi") == ["Second", " reply."]
    with pytest.raises(ModelError, match="no scripted reply"):
        await stream(model, "more")
    request = ClassifierRequest("score", (Message("user", "rate"),), SCHEMA)
    assert await model.complete_json(request) == {"x": 2}
    with pytest.raises(ModelOutputError):
        await model.complete_json(request)
    assert len(model.requests) == 6


async def test_errors_stalls_and_delays(autojump_clock: trio.testing.MockClock) -> None:
    model = ScriptedBackend()
    model.push_narrative("It sank off the", error="connection reset")
    parts: list[str] = []
    with pytest.raises(ModelError, match="connection reset"):
        async with model.stream(narrative("?")) as chunks:
            async for chunk in chunks:
                parts.append(chunk)
    assert "".join(parts) == "It sank off the"
    model.push_narrative("one two three four", stall_after=2)
    with trio.move_on_after(60) as scope:
        parts = await stream(model, "?")
    assert scope.cancelled_caught
    model.push_narrative("slow and steady", delay=1.5)
    started = trio.current_time()
    assert "".join(await stream(model, "?")) == "slow and steady"
    assert trio.current_time() - started == pytest.approx(4.5)
    model.push_classifier("score", error="timeout")
    with pytest.raises(ModelError, match="timeout"):
        await model.complete_json(ClassifierRequest("score", (), SCHEMA))


def test_tokens_keep_every_character() -> None:
    assert "".join(split_tokens("  Hello,  world! ")) == "  Hello,  world! "


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"x": 1}', {"x": 1}),
        ('Sure: ```json\n{"x": 2}\n```', {"x": 2}),
        ('noise {not json} then {"x": 3, "y": {"z": [1, 2]}} after', {"x": 3, "y": {"z": [1, 2]}}),
        ('[1, 2] and {"x": 4}', {"x": 4}),
    ],
)
def test_extract_json_finds_the_first_object(text: str, expected: dict[str, object]) -> None:
    assert extract_json(text) == expected


@given(
    st.dictionaries(st.text(max_size=8), st.integers() | st.text(max_size=8), max_size=5),
    st.text(alphabet="abc .,!\n", max_size=30),
    st.text(alphabet="abc .,!\n", max_size=30),
)
def test_extract_json_amid_any_prose(value: dict[str, object], before: str, after: str) -> None:
    assert extract_json(before + json.dumps(value) + after) == value


def test_no_object_is_an_output_error() -> None:
    with pytest.raises(ModelOutputError):
        extract_json("no braces here")
