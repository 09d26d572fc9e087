"""The real embedded model: it streams, stops on cancel, and answers schema-valid JSON.

The model runs in a worker process; the crash tests through the engine and
the gateway are in tests/actors/test_local_engine.py and
tests/web/test_local_gateway.py.
"""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

import llm._local
from llm import (
    ClassifierRequest,
    LocalBackend,
    Message,
    ModelError,
    ModelSettings,
    NarrativeRequest,
)
from llm._local import MAX_STARTS
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
    assert local.statistics().busy is False  # the worker acknowledged the stop
    async with local.stream(request(4)) as chunks:
        assert [text async for text in chunks]
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
    async with local.stream(request(4)) as chunks:
        assert [text async for text in chunks]
    assert local.statistics().restarts == 1


def test_a_grammar_call_stops_as_soon_as_the_json_value_is_whole() -> None:
    assert not json_complete("")
    assert not json_complete(' {"significance": ')
    assert not json_complete('{"a": "}"')
    assert json_complete('{"significance": 1}')
    assert json_complete(' {"a": {"b": [1, "}"]}}')
