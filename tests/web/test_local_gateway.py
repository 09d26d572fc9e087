"""The real embedded model behind the real gateway: cancels in a row, and a worker killed mid-beat.

The local backend runs llama.cpp in a worker process and holds its one slot
until the worker says a request is done, so a cancelled beat and the turn's
classifier passes never share the model; a worker that dies costs the request
in flight (``model_crashed``) while the server, its sockets and the other
chats carry on.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import trio
from gateway_kit import TOKEN, Client
from trio_websocket import open_websocket_url

from actors import Budgets, EngineSettings, open_engine
from llm import LocalBackend, ModelSettings
from web import Gateway, GatewaySettings

TELL_ME = '"Tell me everything about the harbour, Mira, from the very beginning."'


class PatientClient(Client):
    """A client that waits as long as a real model on a busy machine may take."""

    async def _next(self) -> dict[str, Any]:
        with trio.fail_after(120):
            message: dict[str, Any] = json.loads(await self.ws.get_message())
        return message


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture
async def local(cache_dir: Path) -> AsyncIterator[LocalBackend]:
    # One thread: llama.cpp's threads wait for each other by spinning, which
    # costs dearly on a machine busy with other work.
    backend = LocalBackend(ModelSettings(cache_dir=str(cache_dir), threads=1))
    yield backend
    await backend.aclose()


@asynccontextmanager
async def serve(tmp_path: Path, local: LocalBackend) -> AsyncIterator[str]:
    """An engine on the local model and a gateway in front of it; yields the WebSocket URL."""
    settings = EngineSettings(
        db_path=tmp_path / "troupe.db",
        data_dir=tmp_path,
        # Greedy, so a beat says the same long thing each run; short prompts and a
        # short classifier timeout keep the passes after each beat quick (most
        # take their defaults, and each of those is a stop the worker acknowledges).
        budgets=Budgets(
            soft=500, hard=800, recent_turns=1, relevant_memories=0, max_tokens=40, temperature=0.0
        ),
        classifier_timeout=0.5,
    )
    async with open_engine(settings, narrative=local, classifier=local) as engine:
        gateway = Gateway(engine, GatewaySettings(token=TOKEN, port=0, rate=1000, burst=1000))
        async with trio.open_nursery() as nursery:
            port = await nursery.start(gateway.run)
            yield f"ws://127.0.0.1:{port}/ws?token={TOKEN}"
            nursery.cancel_scope.cancel()


@asynccontextmanager
async def connect(url: str) -> AsyncIterator[PatientClient]:
    async with open_websocket_url(url) as ws:
        yield PatientClient(ws)


async def open_new_chat(client: Client, name: str) -> str:
    """A bot who loves long tales, a chat hosted by it, opened on this socket."""
    persona = "keeps the bar at a harbour tavern and loves long tales"
    bot = (await client.ask("create_bot", name=name, persona=persona))["bot"]
    chat_id = str((await client.ask("create_chat", host_bot_id=bot["id"]))["chat"]["id"])
    assert (await client.ask("open_chat", chat_id=chat_id))["type"] == "chat_state"
    return chat_id


def worker_pid(local: LocalBackend) -> int:
    pid = local.statistics().worker_pid
    assert isinstance(pid, int)
    return pid


async def test_cancel_then_send_again_never_runs_two_completions_at_once(
    tmp_path: Path, local: LocalBackend
) -> None:
    async with serve(tmp_path, local) as url, connect(url) as client:
        chat_id = await open_new_chat(client, "Mira")
        endings: list[str | None] = []
        for round_ in range(8):
            sent = await client.ask("send_turn", chat_id=chat_id, prose=f"{TELL_ME} ({round_})")
            assert sent["type"] == "accepted"
            await client.until("token")
            # The turn's classifier passes start the moment the beat is cancelled.
            assert (await client.ask("cancel", chat_id=chat_id))["type"] == "ok"
            endings.append((await client.until("beat_complete"))["error"])
            await client.until("turn_settled")
        assert all(error in (None, "cancelled", "length") for error in endings), endings
        assert "cancelled" in endings
        # The server is up, and this socket still answers.
        assert chat_id in [c["id"] for c in (await client.ask("list_chats"))["chats"]]
    stats = local.statistics()
    assert stats.overlaps == 0  # the worker never saw a request while one was unfinished
    assert stats.crashes == 0


async def test_a_worker_killed_mid_beat_costs_that_beat_and_nothing_else(
    tmp_path: Path, local: LocalBackend
) -> None:
    async with serve(tmp_path, local) as url, connect(url) as one, connect(url) as two:
        first = await open_new_chat(one, "Mira")
        second = await open_new_chat(two, "Tobias")
        await one.ask("send_turn", chat_id=first, prose=TELL_ME)
        await one.until("token")
        # The second chat's beat queues for the model while the first one streams.
        await two.ask("send_turn", chat_id=second, prose=TELL_ME)
        os.kill(worker_pid(local), signal.SIGKILL)

        crashed = await one.until("beat_complete")
        assert crashed["truncated"] and crashed["error"] == "model_crashed"
        assert crashed["text"].strip()  # what was streamed before the crash is kept
        await one.until("turn_settled")

        # The other chat, on its own socket, carries on from a fresh worker.
        await two.until("token")
        carried = await two.until("beat_complete")
        # A reply that reaches its cap ends at a whole sentence, marked length.
        assert carried["error"] in (None, "length") and carried["text"].strip()
        await two.until("turn_settled")

        # And the crashed chat's next turn streams.
        await one.ask("send_turn", chat_id=first, prose='"Go on."')
        await one.until("token")
        assert (await one.until("beat_complete"))["error"] in (None, "length")
        await one.until("turn_settled")
    stats = local.statistics()
    # One crash, one restart for it; on a loaded machine a worker slow to acknowledge a
    # stop is killed and replaced too, and each such kill is counted.
    assert stats.crashes == 1 and stats.restarts == 1 + stats.kills
    assert stats.overlaps == 0
