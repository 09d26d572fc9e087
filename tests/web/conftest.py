"""A real gateway on loopback in front of a real engine with a scripted model."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import trio
from gateway_kit import TOKEN, Client, Server
from trio_websocket import open_websocket_url

from actors import EngineSettings, open_engine
from llm import ScriptedBackend
from web import Gateway, GatewaySettings


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Server]:
    backend = ScriptedBackend()
    settings = EngineSettings(db_path=tmp_path / "t.db", data_dir=tmp_path, classifier_timeout=5)
    async with open_engine(settings, narrative=backend, classifier=backend) as engine:
        gateway = Gateway(engine, GatewaySettings(token=TOKEN, port=0, rate=200, burst=400))
        async with trio.open_nursery() as nursery:
            port = await nursery.start(gateway.run)
            yield Server(engine, backend, gateway, port)
            nursery.cancel_scope.cancel()


@pytest.fixture
async def client(server: Server) -> AsyncIterator[Client]:
    async with open_websocket_url(server.url) as ws:
        yield Client(ws)
