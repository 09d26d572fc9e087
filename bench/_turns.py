"""What the turn benchmarks share: the time a turn takes to settle, and its classifier calls."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

from protocol import BeatComplete, TurnSettled
from tests.support.openai_server import OpenAIServer


async def last_beat_to_settled(messages: AsyncIterator[object]) -> float:
    """Seconds from the turn's last ``beat_complete`` to its ``turn_settled``."""
    last_beat = None
    async for message in messages:
        if isinstance(message, BeatComplete):
            last_beat = time.perf_counter()
        if isinstance(message, TurnSettled):
            assert last_beat is not None, "the turn settled without a beat"
            return time.perf_counter() - last_beat
    raise RuntimeError("the chat's messages ended before the turn settled")


def classifier_calls(server: OpenAIServer, since: int) -> int:
    """Classifier calls (the requests that do not stream) the server has served since ``since``."""
    return sum(1 for body in server.requests[since:] if not body.get("stream"))
