"""The cluster under faults: three real nodes on PostgreSQL and Redis, clients on all of them.

Each scenario puts viewers on nodes that do not own their chat on purpose,
so what they see came over the bus, and checks it the way a client draws
it (``cluster_wire.fold``): every numbered message once and in order, every
token at its offset, each beat ending with the text the log committed.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
import trio
from cluster_kit import (
    LEASE_TTL,
    MODEL_WORDS,
    ROUND,
    Cluster,
    Node,
    events,
    leases,
    next_round,
    query,
    settled_on,
)
from cluster_model import beat_text
from cluster_wire import Client, Fold, Message, connect, fold

from cluster import shard_of

FULL = beat_text(MODEL_WORDS)
"""What every beat streams in full."""
PROSE = '*I set a lamp on the bar.* "Count them for me."'
MOVE_WITHIN = LEASE_TTL + 2 * ROUND + 5.0
"""Seconds a dead or paused owner's shards may take to move: its lease, a round, slack."""
TURN_WITHIN = 60.0
SETTLE_WITHIN = 90.0
"""Seconds for every shard to reach its desired owner: a node that finds itself alone
(the first up, or the first back after the database) takes every shard, and hands them
on a few a round."""
_names = itertools.count(1)


def name(prefix: str) -> str:
    return f"{prefix}{next(_names)}"


async def db(fn: Any, *args: Any) -> Any:
    """A database read on a worker thread."""
    return await trio.to_thread.run_sync(fn, *args)


@asynccontextmanager
async def clients(*nodes: Node) -> AsyncIterator[list[Client]]:
    """One client on each node given (a node may come twice)."""
    async with connect([(n.url, name(n.name)) for n in nodes]) as opened:
        for client, node in zip(opened, nodes, strict=True):
            client.store, client.output = node.store, node.output
        yield opened


async def round_of(client: Client) -> None:
    """Until the next lease round of the client's cluster (a write of its lease tables).

    While the database is away nothing is written: then until the client's
    node says something next (each failed round of its leases, it does).
    """
    assert client.store is not None and client.output is not None
    try:
        await next_round(client.store)
    except psycopg.OperationalError:
        await trio.to_thread.run_sync(client.output.wait_more, 2 * LEASE_TTL)


async def available(client: Client, type: str, **fields: Any) -> Message:
    """A command's answer, sent again (same ``command_id``) while it is ``unavailable``."""
    fields.setdefault("command_id", name(f"{type}-"))
    with trio.fail_after(TURN_WITHIN):
        for _ in range(400):
            answer = await client.ask(type, **fields)
            if answer.get("code") != "unavailable":
                assert answer["type"] != "error", f"{type} refused: {answer}"
                return answer
            await round_of(client)  # its chat is moving between nodes: ask again after
    raise AssertionError(f"{type} stayed unavailable")


async def new_chat(maker: Client) -> str:
    """A bot and a chat it hosts, made through ``maker``'s node (the chat is that node's)."""
    bot = await available(maker, "create_bot", name="Mira", persona="keeps the lamps")
    chat = await available(maker, "create_chat", host_bot_id=bot["bot"]["id"])
    return str(chat["chat"]["id"])


async def watch(viewer: Client, chat_id: str) -> Message:
    state = await viewer.ok("open_chat", chat_id=chat_id)
    assert state["type"] == "chat_state", state
    return state


async def send_turn(client: Client, chat_id: str, command_id: str | None = None) -> int:
    """Send a turn (again with the same ``command_id`` while the chat is ``unavailable``)."""
    command_id = command_id or name("turn-")
    answer = await available(
        client, "send_turn", chat_id=chat_id, prose=PROSE, command_id=command_id
    )
    assert answer["type"] == "accepted", answer
    return int(answer["user_turn_id"])


def seen(viewer: Client, chat_id: str) -> Fold:
    return fold(viewer.about(chat_id))


async def ended(viewer: Client, chat_id: str, turn: int) -> tuple[str, bool]:
    """``(text, truncated)`` of the turn's beat once the viewer has seen it end."""
    await viewer.until(lambda: seen(viewer, chat_id).ended(turn) is not None, TURN_WITHIN)
    result = seen(viewer, chat_id).ended(turn)
    assert result is not None
    return result


async def settled(viewer: Client, chat_id: str, turn: int) -> None:
    await viewer.until(lambda: turn in seen(viewer, chat_id).settled, TURN_WITHIN)


async def streaming(viewer: Client, chat_id: str, turn: int, chars: int = 30) -> None:
    """Until the viewer has seen ``chars`` characters of the turn's beat: it is mid-beat."""

    def far_enough() -> bool:
        beat = seen(viewer, chat_id).beat_of(turn)
        return beat is not None and len(beat.streamed) >= chars

    await viewer.until(far_enough, TURN_WITHIN)


def assert_clean(viewer: Client, chat_id: str) -> Fold:
    view = seen(viewer, chat_id)
    assert not view.problems, f"{viewer.name} on chat {chat_id}: {view.problems}"
    return view


def beats_of(store: str, chat_id: str, turn: int) -> list[dict[str, Any]]:
    """The committed ``assistant_turn`` events answering ``turn``."""
    return [p for _, p in events(store, chat_id, "assistant_turn") if p["user_turn_id"] == turn]


def outbox_seqs(store: str, chat_id: str) -> list[int]:
    rows = query(store, "SELECT seq FROM outbox WHERE chat_id = %s ORDER BY seq", (chat_id,))
    return [int(r[0]) for r in rows]


def assert_contiguous(seqs: list[int], what: str) -> None:
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), f"{what}: {seqs}"


async def figures_until(client: Client, check: Any) -> dict[str, Any]:
    """The node's cluster figures once ``check(figures)`` holds, asked after each lease round."""
    with trio.fail_after(MOVE_WITHIN):
        for _ in range(int(MOVE_WITHIN / ROUND) * 4 + 1):
            figures = await client.statistics()
            if check(figures):
                return figures
            await round_of(client)
    raise AssertionError(f"{client.name}: the figures never came to pass")


def other_than(cluster: Cluster, node: Node, index: int = 0) -> Node:
    others = cluster.others(node)
    return others[index % len(others)]


def without_reply_to(message: Message) -> Message:
    return {k: v for k, v in message.items() if k != "reply_to"}


def events_payload(raw: Any) -> dict[str, Any]:
    return raw if isinstance(raw, dict) else json.loads(raw)


def bots_named(store: str, bot_name: str) -> int:
    rows = query(store, "SELECT payload FROM event_log WHERE kind = 'bot_created'")
    payloads = [events_payload(p) for (p,) in rows]
    return sum(1 for p in payloads if p["name"] == bot_name)


def chats_created(store: str, chat_id: str) -> int:
    return len(events(store, chat_id, "chat_created"))


async def moved_within_ttl(cluster: Cluster, check: Any) -> Any:
    """Until ``check`` finds the shard held by another node (a dead owner's lease, a round)."""
    return await settled_on(cluster.store, check, MOVE_WITHIN, "the shard held by another node")


# --- 1. steady streaming -----------------------------------------------------------------


async def test_steady_streaming_reaches_viewers_on_every_node(cluster: Cluster) -> None:
    await cluster.ensure()
    nodes = cluster.alive()[:3]
    async with clients(*nodes) as makers:
        chats = [await new_chat(makers[i % 3]) for i in range(6)]
        owners = [await db(cluster.owner_of, c) for c in chats]
        assert len({o.name for o in owners}) == 3, "the chats should be spread over the nodes"
        for owner, maker_node in zip(owners, itertools.cycle(nodes), strict=False):
            assert owner is maker_node, "a chat is made in a shard of the node that made it"

        far_nodes = [other_than(cluster, o, i) for i, o in enumerate(owners)]
        resyncs: dict[str, int] = {}
        async with clients(*owners) as near, clients(*far_nodes) as far:
            for chat, a, b in zip(chats, near, far, strict=True):
                await watch(a, chat)
                await watch(b, chat)
            # Every turn sent from a node that does not own the chat: routed to its owner.
            turns = [await send_turn(b, chat) for chat, b in zip(chats, far, strict=True)]
            # A viewer that opens a chat mid-beat on a node where nobody watched it: the
            # beat so far comes from its owner, and the rest streams on from there.
            (third,) = [n for n in nodes if n is not owners[0] and n is not far_nodes[0]]
            await streaming(near[0], chats[0], turns[0])
            async with clients(third) as (late,):
                await watch(late, chats[0])
                await settled(late, chats[0], turns[0])
                view = assert_clean(late, chats[0])
                assert view.ended(turns[0]) == (FULL, False)
                joined = view.beat_of(turns[0])
                if joined is not None:  # it joined before the beat ended, as it nearly always does
                    assert joined.streamed == FULL
                    relayed = (await late.statistics())["relayed"]
                    assert relayed["caught_up"] >= 1, relayed
                print(f"a viewer joined the beat mid-way on a third node: {joined is not None}")
            for chat, turn, a, b in zip(chats, turns, near, far, strict=True):
                await settled(a, chat, turn)
                await settled(b, chat, turn)

            async with clients(*nodes) as fresh:
                for i, (chat, turn, a, b) in enumerate(zip(chats, turns, near, far, strict=True)):
                    (committed,) = await db(beats_of, cluster.store, chat, turn)
                    assert committed["text"] == FULL and not committed["truncated"]
                    state = await watch(fresh[i % 3], chat)
                    last = state["timeline"][-1]
                    assert (last["user_turn_id"], last["text"]) == (turn, FULL)
                    for viewer in (a, b):
                        view = assert_clean(viewer, chat)
                        beat = view.beat_of(turn)
                        assert beat is not None and beat.complete is not None
                        assert beat.streamed == beat.complete["text"] == FULL
                        resyncs[viewer.name] = view.resyncs
                stats = [await c.statistics() for c in fresh]
    print(f"fresh chat_state after the first, per viewer: {resyncs}")
    # Each turn was sent to a node that does not own its chat and served by the owner.
    assert sum(s["routing"]["forwarded"] for s in stats) >= len(chats)
    assert sum(s["routing"]["served"] for s in stats) >= len(chats)


# --- 2. retried commands -----------------------------------------------------------------


async def test_a_retried_command_runs_once_on_any_node(cluster: Cluster) -> None:
    await cluster.ensure()
    a, b = cluster.alive()[:2]
    async with clients(a, b, a) as (on_a, on_b, also_a):
        # A bot made twice, through two nodes, with one command_id: one bot.
        bot_name = name("Tobias")
        first = await on_a.ok("create_bot", name=bot_name, persona="x", command_id="bot-1")
        again = await on_b.ok("create_bot", name=bot_name, persona="x", command_id="bot-1")
        assert without_reply_to(first) == without_reply_to(again)
        assert await db(bots_named, cluster.store, bot_name) == 1

        # A chat made twice, through two nodes: one chat, where the first one made it.
        host = first["bot"]["id"]
        chat = await on_a.ok("create_chat", host_bot_id=host, command_id="chat-1")
        again = await on_b.ok("create_chat", host_bot_id=host, command_id="chat-1")
        assert without_reply_to(chat) == without_reply_to(again)
        chat_id = chat["chat"]["id"]
        assert await db(chats_created, cluster.store, chat_id) == 1
        assert await db(cluster.owner_of, chat_id) is a

        # A turn sent to the node that does not own the chat, then again while it
        # streams, to that node and to the owner: one turn.
        await watch(on_b, chat_id)
        turn = await send_turn(on_b, chat_id, "turn-1")
        assert await send_turn(on_b, chat_id, "turn-1") == turn
        assert await send_turn(on_a, chat_id, "turn-1") == turn
        await settled(on_b, chat_id, turn)
        assert await send_turn(on_b, chat_id, "turn-1") == turn

        # A second turn sent at once through both nodes: one turn.
        answers: list[int] = []

        async def send(client: Client) -> None:
            answers.append(await send_turn(client, chat_id, "turn-2"))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(send, on_b)
            nursery.start_soon(send, also_a)
        assert len(set(answers)) == 1 and answers[0] != turn
        await settled(on_b, chat_id, answers[0])

        turns = await db(events, cluster.store, chat_id, "user_turn")
        assert [i for i, _ in turns] == [turn, answers[0]]
        for user_turn in (turn, answers[0]):
            (beat,) = await db(beats_of, cluster.store, chat_id, user_turn)
            assert beat["text"] == FULL
        assert_clean(on_b, chat_id)


# --- 3. the owner killed mid-turn ---------------------------------------------------------


async def test_an_owner_killed_mid_turn_leaves_its_beat_truncated(cluster: Cluster) -> None:
    await cluster.ensure()
    owner = cluster.alive()[0]
    survivor = other_than(cluster, owner)
    async with clients(owner) as (maker,):
        chat_id = await new_chat(maker)
    assert await db(cluster.owner_of, chat_id) is owner
    before = await db(cluster.lease_of, chat_id)

    async with clients(survivor) as (viewer,):
        await watch(viewer, chat_id)
        turn = await send_turn(viewer, chat_id)
        await streaming(viewer, chat_id, turn)
        killed_at = trio.current_time()
        await trio.to_thread.run_sync(owner.kill)

        def moved() -> Any:
            lease = cluster.lease_of(chat_id)
            return lease if lease.live and lease.owner != owner.node_id else None

        after = await moved_within_ttl(cluster, moved)
        took = trio.current_time() - killed_at
        print(f"the dead owner's shard moved in {took:.2f} s (lease TTL {LEASE_TTL:g} s)")
        assert after.epoch > before.epoch

        # The beat is kept as far as it was checkpointed, ended as interrupted.
        text, truncated = await ended(viewer, chat_id, turn)
        (beat,) = await db(beats_of, cluster.store, chat_id, turn)
        assert beat["truncated"] and beat["error"] == "interrupted", beat
        assert (text, truncated) == (beat["text"], True)
        assert FULL.startswith(beat["text"])
        streamed = seen(viewer, chat_id).beat_of(turn)
        assert streamed is not None
        assert streamed.streamed.startswith(beat["text"]) or beat["text"].startswith(
            streamed.streamed
        )
        assert_clean(viewer, chat_id)
        settled_too = turn in seen(viewer, chat_id).settled
        print(f"the interrupted turn settled for the viewer: {settled_too}")

        # The chat goes on with its new owner.
        second = await send_turn(viewer, chat_id)
        await settled(viewer, chat_id, second)
        (beat,) = await db(beats_of, cluster.store, chat_id, second)
        assert beat["text"] == FULL and not beat["truncated"]
        assert_clean(viewer, chat_id)
    assert_contiguous(await db(outbox_seqs, cluster.store, chat_id), "the chat's log")


# --- 4. the owner paused past its lease ----------------------------------------------------


async def test_a_paused_owner_s_late_writes_are_refused(cluster: Cluster) -> None:
    await cluster.ensure()
    owner = cluster.alive()[0]
    other = other_than(cluster, owner)
    async with clients(owner, other) as (on_owner, viewer):
        chat_id = await new_chat(on_owner)
        assert await db(cluster.owner_of, chat_id) is owner
        before = await db(cluster.lease_of, chat_id)
        stats_before = (await on_owner.statistics())["leases"]
        await watch(viewer, chat_id)
        turn = await send_turn(viewer, chat_id)
        await streaming(viewer, chat_id, turn)
        owner.pause()
        try:

            def taken() -> Any:
                lease = cluster.lease_of(chat_id)
                alive = lease.live and lease.owner != owner.node_id
                return lease if alive and lease.epoch > before.epoch else None

            after = await moved_within_ttl(cluster, taken)
        finally:
            owner.resume()

        # Awake again, the old owner finds its lease gone: what it still tries to write
        # is refused, and it says so.
        def refused(figures: dict[str, Any]) -> bool:
            leases_now = figures["leases"]
            return (
                leases_now["fenced_rejections"] > stats_before["fenced_rejections"]
                or leases_now["lost"] > stats_before["lost"]
            )

        figures = await figures_until(on_owner, refused)
        print(f"the paused owner's lease figures after: {figures['leases']}")

        # One end of the beat, by the new owner; nothing of the old one after it.
        text, truncated = await ended(viewer, chat_id, turn)
        (beat,) = await db(beats_of, cluster.store, chat_id, turn)
        assert beat["truncated"] and beat["error"] == "interrupted", beat
        assert (text, truncated) == (beat["text"], True)
        assert FULL.startswith(beat["text"])
        assert_clean(viewer, chat_id)
        lease = await db(cluster.lease_of, chat_id)
        assert lease.epoch >= after.epoch

        # The woken node is live again: its shards come back to it, a few a round. A
        # handover cuts a beat that outlasts its drain, so the next turn waits for them.
        await cluster.settle()
        second = await send_turn(viewer, chat_id)
        await settled(viewer, chat_id, second)
        (beat,) = await db(beats_of, cluster.store, chat_id, second)
        assert beat["text"] == FULL
        assert_clean(viewer, chat_id)
    assert_contiguous(await db(outbox_seqs, cluster.store, chat_id), "the chat's log")
    turns = await db(events, cluster.store, chat_id, "user_turn")
    assert [i for i, _ in turns] == [turn, second]


# --- 5. a node joining --------------------------------------------------------------------


async def test_a_node_joining_takes_its_share_while_chats_stream(cluster: Cluster) -> None:
    await cluster.ensure()
    nodes = cluster.alive()
    before = await cluster.settle()
    async with clients(*nodes) as makers:
        chats = [await new_chat(makers[i % len(nodes)]) for i in range(len(nodes) * 2)]
    owners = [await db(cluster.owner_of, c) for c in chats]
    far_nodes = [other_than(cluster, o, i) for i, o in enumerate(owners)]
    async with clients(*far_nodes) as viewers:
        for chat, viewer in zip(chats, viewers, strict=True):
            await watch(viewer, chat)
        joining = await cluster.start_node()
        # The shards start moving now: the turns stream through the moves.
        turns = [await send_turn(v, c) for c, v in zip(chats, viewers, strict=True)]
        after = await cluster.settle()
        results = [await ended(v, c, t) for c, v, t in zip(chats, viewers, turns, strict=True)]

    moved = {s for s in before if before[s].owner != after[s].owner}
    share = len(before) / len(cluster.alive())
    print(f"{len(moved)} of {len(before)} shards moved to the joining node (1/N: {share:.0f})")
    assert all(after[s].owner == joining.node_id for s in moved), "only to the new node"
    assert share / 2 <= len(moved) <= share * 1.5
    cut = sum(truncated for _, truncated in results)
    print(f"beats cut by a handover: {cut} of {len(results)}")
    for (text, truncated), chat, viewer, turn in zip(results, chats, viewers, turns, strict=True):
        assert_clean(viewer, chat)
        (beat,) = await db(beats_of, cluster.store, chat, turn)
        assert (text, truncated) == (beat["text"], beat["truncated"])
        if shard_of(chat) not in moved:
            assert text == FULL and not truncated, f"chat {chat} did not move yet was cut"
        else:
            assert FULL.startswith(text)


# --- 6. Redis restarted mid-stream --------------------------------------------------------


async def test_redis_restarted_mid_stream_resyncs_the_viewers(cluster: Cluster) -> None:
    await cluster.ensure()
    owner = cluster.alive()[0]
    other = other_than(cluster, owner)
    async with clients(owner, other) as (near, far):
        chat_id = await new_chat(near)
        await watch(near, chat_id)
        await watch(far, chat_id)
        turn = await send_turn(far, chat_id)
        await streaming(far, chat_id, turn)
        mark = len(far.messages)
        await trio.to_thread.run_sync(cluster.redis.restart)

        for viewer in (near, far):
            text, truncated = await ended(viewer, chat_id, turn)
            assert (text, truncated) == (FULL, False), viewer.name
            assert_clean(viewer, chat_id)
        # The owner's own viewer sees the turn through (the far one may have missed its
        # end while Redis was down, and then read the chat afresh).
        await settled(near, chat_id, turn)
        since = [m["type"] for m in far.messages[mark:] if m.get("chat_id") == chat_id]
        assert "chat_state" in since, f"the far viewer was not started afresh: {since}"
        (beat,) = await db(beats_of, cluster.store, chat_id, turn)
        assert beat["text"] == FULL and not beat["truncated"]

        second = await send_turn(far, chat_id)
        for viewer in (near, far):
            await settled(viewer, chat_id, second)
            assert seen(viewer, chat_id).ended(second) == (FULL, False)
            assert_clean(viewer, chat_id)
    turns = await db(events, cluster.store, chat_id, "user_turn")
    assert [i for i, _ in turns] == [turn, second]
    assert_contiguous(await db(outbox_seqs, cluster.store, chat_id), "the chat's log")


# --- 7. PostgreSQL restarted ----------------------------------------------------------------


async def test_postgres_restarted_owners_fence_themselves_and_come_back(
    cluster: Cluster,
) -> None:
    await cluster.ensure()
    nodes = cluster.alive()
    before = await db(leases, cluster.store)
    async with clients(*nodes) as watchers:
        lost_before = [(await c.statistics())["leases"]["lost"] for c in watchers]
        await trio.to_thread.run_sync(cluster.pg.kill)
        try:
            # Without the database no node can renew: each stops writing on its own.
            for client in watchers:
                await figures_until(client, lambda f: f["leases"]["held"] == 0)
        finally:
            await trio.to_thread.run_sync(cluster.pg.start)
        back_at = trio.current_time()
        lost_after = [(await c.statistics())["leases"]["lost"] for c in watchers]
        assert all(a > b for a, b in zip(lost_after, lost_before, strict=True)), lost_after

        # A lease row may outlive its holder's own reckoning by its margin: once the rows
        # run out, every shard is granted again, at a higher epoch.
        def granted_again() -> dict[int, Any] | None:
            table = cluster.balanced()
            if table is None or any(table[s].epoch <= before[s].epoch for s in before):
                return None
            return table

        await settled_on(cluster.store, granted_again, SETTLE_WITHIN, "every lease granted again")
        # Every shard a node holds again, it has adopted: its chats are writable.
        for client in watchers:
            await figures_until(client, lambda f: f["shards"] == f["leases"]["held"])
        took = trio.current_time() - back_at
        print(f"every shard granted again and adopted {took:.1f} s after the database came back")

        chat_id = await new_chat(watchers[0])
        owner = await db(cluster.owner_of, chat_id)
        far = watchers[(nodes.index(owner) + 1) % len(nodes)]
        await watch(far, chat_id)
        turn = await send_turn(far, chat_id)
        await settled(far, chat_id, turn)
        assert seen(far, chat_id).ended(turn) == (FULL, False)
        assert_clean(far, chat_id)
