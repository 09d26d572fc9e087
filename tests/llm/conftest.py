"""An OpenAI-compatible server on loopback and a backend pointed at it."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.support.openai_server import OpenAIServer, run_openai_server


@pytest.fixture
async def server() -> AsyncIterator[OpenAIServer]:
    async with run_openai_server() as running:
        yield running
