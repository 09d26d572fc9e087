"""Chats stay apart at the gateway: a watch that fails, a watcher that never reads, and a
feed that lives only while its chat is in use touch no other chat.

Over real WebSockets to a real engine; nothing sleeps: each step waits for a
message, an actor stopping, or every task to block.
"""

from __future__ import annotations

from pathlib import Path

import trio
import trio.testing
from gateway_kit import Client, Server, open_server
from trio_websocket import open_websocket_url


class NotAMessage:
    """Something no codec can put on the wire: published, it breaks the watches it reaches."""

    seq = None


async def two_chats(client: Client) -> tuple[str, str]:
    """Chats hosted by Mira and by Tobias (each bot's replies are scripted by name)."""
    ids = []
    for name in ("Mira", "Tobias"):
        bot = (await client.ask("create_bot", name=name, persona="keeps a bar"))["bot"]
        ids.append((await client.ask("create_chat", host_bot_id=bot["id"]))["chat"]["id"])
    return ids[0], ids[1]


async def test_a_failing_watch_ends_that_chat_alone(client: Client, server: Server) -> None:
    broken, other = await two_chats(client)
    await client.ask("open_chat", chat_id=broken)
    await client.ask("open_chat", chat_id=other)
    async with open_websocket_url(server.url) as ws:
        bystander = Client(ws)
        await bystander.ask("open_chat", chat_id=other)

        server.engine.feed(broken).topic.publish(NotAMessage())
        error = await client.until("error")
        assert (error["code"], error["chat_id"], error["reply_to"]) == ("internal", broken, None)

        # The connection and its other chat go on, and so does everyone else's.
        server.backend.push_narrative("Tobias polishes a glass.", match="Tobias")
        await client.ask("send_turn", chat_id=other, prose="Evening.")
        for watcher in (client, bystander):
            complete = await watcher.until("beat_complete")
            assert (complete["chat_id"], complete["text"]) == (other, "Tobias polishes a glass.")
            assert (await watcher.until("turn_settled"))["chat_id"] == other

    # The broken chat's watch is gone until the client opens it again; then it streams.
    stats = (await client.ask("statistics"))["statistics"]
    assert stats["per_connection"][0]["watching"] == [other]
    await client.ask("open_chat", chat_id=broken)
    server.backend.push_narrative("Mira nods.", match="Mira")
    await client.ask("send_turn", chat_id=broken, prose="Hello.")
    complete = await client.until("beat_complete", lambda m: m["chat_id"] == broken)
    assert complete["text"] == "Mira nods."


async def test_a_watcher_that_never_reads_holds_up_no_other_chat(server: Server) -> None:
    async with (
        open_websocket_url(server.url) as stuck_ws,
        open_websocket_url(server.url) as reader_ws,
    ):
        stuck, reader = Client(stuck_ws), Client(reader_ws)
        flooded, quiet = await two_chats(reader)
        await stuck.ask("open_chat", chat_id=flooded)  # and never reads again
        await reader.ask("open_chat", chat_id=quiet)
        words = " ".join(f"w{i}" for i in range(3000))
        server.backend.push_narrative(words, match="Mira")
        server.backend.push_narrative("Tobias shrugs.", match="Tobias")
        await reader.ask("send_turn", chat_id=flooded, prose="Tell me everything.")
        await reader.ask("send_turn", chat_id=quiet, prose="Anything new?")
        complete = await reader.until("beat_complete")
        assert (complete["chat_id"], complete["text"]) == (quiet, "Tobias shrugs.")
        await reader.until("turn_settled")
        # The flooded chat's turn ran to its end too: its publisher never waits for a reader.
        with trio.fail_after(10):
            await server.engine.wait_settled(flooded)
        state = await reader.ask("open_chat", chat_id=flooded)
        assert state["timeline"][-1]["text"] == words


async def test_a_chats_feed_lives_while_a_websocket_watches_it_or_its_actor_runs(
    tmp_path: Path,
) -> None:
    async with open_server(
        tmp_path, engine={"chat_idle_timeout": 0.3}, rate=1000, burst=1000
    ) as server:
        engine = server.engine

        def feeds() -> set[str]:
            return set(engine.statistics()["chats"])

        async def passivated(chat_id: str) -> None:
            actor = engine.system.actor(f"chat:{chat_id}")
            if actor is not None:
                with trio.fail_after(10):
                    await actor.wait_stopped()

        async with open_websocket_url(server.url) as ws:
            stays = Client(ws)
            async with open_websocket_url(server.url) as leaving_ws:
                leaves = Client(leaving_ws)
                left, kept = await two_chats(leaves)
                await leaves.ask("open_chat", chat_id=left)
                await stays.ask("open_chat", chat_id=kept)
                for chat_id, name in ((left, "Mira"), (kept, "Tobias")):
                    server.backend.push_narrative(f"{name} waves.", match=name)
                    await leaves.ask("send_turn", chat_id=chat_id, prose="Hi.")
                    await engine.wait_settled(chat_id)
                assert feeds() == {left, kept}
            await trio.testing.wait_all_tasks_blocked()  # the gateway has let that socket go
            await passivated(left)
            await passivated(kept)
            # Nobody watches the one and its actor sleeps: its feed is gone. The other
            # is still watched over its socket, and still hears its chat.
            assert feeds() == {kept}
            await stays.until("turn_settled")  # the turn it watched before
            server.backend.push_narrative("Tobias again.", match="Tobias")
            await stays.ask("send_turn", chat_id=kept, prose="Still here?")
            complete = await stays.until("beat_complete")
            assert (complete["chat_id"], complete["text"]) == (kept, "Tobias again.")
        await trio.testing.wait_all_tasks_blocked()
        await passivated(kept)
        assert feeds() == set()
