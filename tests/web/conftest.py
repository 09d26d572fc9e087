"""A real gateway on loopback in front of a real engine with a scripted model."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from gateway_kit import Client, Server, open_server
from trio_websocket import open_websocket_url


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    # A generous rate limit: these tests are about everything but the rate limit.
    async with open_server(tmp_path, rate=1000, burst=1000) as running:
        yield running


@pytest.fixture
async def client(server: Server) -> AsyncIterator[Client]:
    async with open_websocket_url(server.url) as ws:
        yield Client(ws)
