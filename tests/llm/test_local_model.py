"""The real embedded model: it streams, stops on cancel, and answers schema-valid JSON."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from llm import ClassifierRequest, LocalBackend, Message, ModelSettings, NarrativeRequest

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


async def test_the_local_model_streams_text_and_json(local: LocalBackend) -> None:
    pieces = []
    async with local.stream(request()) as chunks:
        async for text in chunks:
            pieces.append(text)
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
    assert local.statistics()["in_use"] == 0
    async with local.stream(request(4)) as chunks:
        assert [text async for text in chunks]
