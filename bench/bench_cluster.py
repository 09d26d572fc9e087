"""The cluster's figures: latency across nodes, failover, a paused owner, scaling, memory.

Run: PYTHONPATH=. .venv/bin/python bench/bench_cluster.py   (two to three minutes;
starts its own PostgreSQL and redis-server on loopback; writes
bench/results/cluster.json)

Real ``troupe serve`` nodes on PostgreSQL and Redis, each a process of its
own, started and watched by the cluster scenarios' own kit
(tests/cluster_e2e/cluster_kit.py); the model is the OpenAI-compatible test
server in a process of its own; the clients (WebSocket connections, each
message stamped on arrival) run in this process. Every bot has a real
persona and greeting, every beat is 124 tokens.

Two clusters, one after the other:

- **Scaling** (the model at 200 tokens a second, so that the nodes and not
  the model set the pace): one node first. *Memory*: the node's resident
  size (``VmRSS``) idle, after ``CHATS_K`` chats each ran one turn and sit
  idle, and after ``CONNECTIONS`` more WebSocket connections that said
  hello and sit idle; the growth per chat actor and per connection.
  *Throughput*: ``LOAD_CHATS`` of those chats (each with some history), two
  viewers each (one on the chat's owner, one on another node when there is
  one), every chat ``LOAD_TURNS`` turns one after the other; turns a second
  and tokens delivered a second with 1, then 2, then 3 nodes (a node joins,
  the shards settle, the same chats again), each the best of
  ``LOAD_ROUNDS`` rounds, against 1 node. The
  machine has 2 cores, shared by the nodes, PostgreSQL, Redis, the model
  and the clients: 3 nodes cannot scale linearly here, and the CPU each
  process used is reported beside the figures.
- **Faults** (the model at 20 tokens a second, a beat about six seconds),
  three nodes started together, leases of ``LEASE_TTL`` seconds.
  *Latency*: chats owned by node A, watched by two viewers on A and one on
  B; each token's arrival on B minus its arrival on A (matched by the
  text's offset, so merged tokens count), against the same difference
  between the two viewers on A (the measurement's own floor); and the time
  from ``send_turn`` to the first token on A and on B. *Failover*: the
  owner of some chats is killed (``kill -9``); the time until other nodes
  hold all its shards (the lease table), and until a turn in one of its
  chats sent to a surviving node is accepted. *Pause*: the owner of a chat
  is stopped (``kill -STOP``) mid-beat until another node holds the shard,
  then let go on (``kill -CONT``); its fenced rejections (its
  ``get_statistics``) must be above 0, and the viewers on both nodes must
  see no duplicate and no gap, the log one end of the beat.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import resource
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench"), str(ROOT / "tests" / "cluster_e2e")]

import trio  # noqa: E402
from _load import GREETING, PERSONA, PROSE, percentile  # noqa: E402
from _report import report  # noqa: E402
from cluster_kit import (  # noqa: E402
    LEASE_TTL,
    ROUND,
    Cluster,
    Node,
    events,
    leases,
    open_cluster,
    query,
)
from cluster_wire import Client, Message, connect, fold  # noqa: E402
from trio_websocket import ConnectionClosed  # noqa: E402

from tests.support.servers import PostgresServer, postgres_server  # noqa: E402

WORDS = 120
"""Words of every beat after its four-word opening: 124 tokens."""
FAST_RATE = 200.0
SLOW_RATE = 20.0
MODEL_CONNECTIONS = 64
"""Model requests a node runs at once (the default, 4, would cap a node's turns)."""
CHATS_K = 120
CONNECTIONS = 200
CONTROLS = 8
"""Connections that make and drive the memory phase's chats."""
LOAD_CHATS = 48
LOAD_TURNS = 5
LOAD_ROUNDS = 2
"""Rounds of the load on each number of nodes: the best counts (the machine is shared)."""
LATENCY_CHATS = 3
LATENCY_TURNS = 2
TURN_WITHIN = 120.0
MOVE_WITHIN = LEASE_TTL + 2 * ROUND + 10.0
_WORD = re.compile(r"\s*\S+")
_names = itertools.count(1)


# --- clients -------------------------------------------------------------------------------


class Viewer(Client):
    """A client that stamps every message on arrival and keeps a few tallies as they come."""

    def __init__(self, name: str, ws: Any) -> None:
        super().__init__(name, ws)
        self.arrivals: list[float] = []
        self.settled: dict[str, set[int]] = defaultdict(set)
        self.streamed: dict[str, int] = defaultdict(int)
        """Characters of token text seen, per chat."""
        self.tokens = 0

    async def _read(self) -> None:
        try:
            while True:
                raw = await self.ws.get_message()
                now = time.perf_counter()
                message = json.loads(raw)
                self.messages.append(message)
                self.arrivals.append(now)
                kind = message.get("type")
                if kind == "token":
                    self.tokens += len(_WORD.findall(message["text"]))
                    self.streamed[message["chat_id"]] += len(message["text"])
                elif kind == "turn_settled":
                    self.settled[message["chat_id"]].add(message["user_turn_id"])
                elif kind == "chat_state":
                    # Started afresh (a resync): a turn whose beat the state shows is over,
                    # though its turn_settled may have gone by unseen.
                    self.settled[message["chat_id"]].update(
                        t["user_turn_id"] for t in message["timeline"] if t["kind"] == "assistant"
                    )
                self._arrived.set()
                self._arrived = trio.Event()
        except ConnectionClosed:
            pass
        finally:
            self.closed = True
            self._arrived.set()

    def tokens_of(self, chat_id: str) -> list[tuple[int, int, float]]:
        """``(beat_id, end offset, arrival)`` of every token frame of the chat."""
        return [
            (m["beat_id"], m["offset"] + len(m["text"]), at)
            for m, at in zip(self.messages, self.arrivals, strict=True)
            if m.get("type") == "token" and m.get("chat_id") == chat_id
        ]

    def first_token_after(self, chat_id: str, since: float) -> float | None:
        for m, at in zip(self.messages, self.arrivals, strict=True):
            if at >= since and m.get("type") == "token" and m.get("chat_id") == chat_id:
                return at
        return None


@contextlib.asynccontextmanager
async def viewers(nodes: list[Node]) -> AsyncIterator[list[Viewer]]:
    """One :class:`Viewer` per node given, said hello; all closed when the block ends."""
    urls = [(node.url, f"{node.name}-{next(_names)}") for node in nodes]
    async with connect(urls, Viewer) as opened:
        yield opened


async def available(client: Client, type: str, **fields: Any) -> Message:
    """A command's answer, sent again while it is ``unavailable``, ``rate_limited`` or ``busy``.

    A command that writes carries a ``command_id``, the same each time, so it runs once.
    """
    if type not in ("open_chat", "close_chat", "get_statistics"):
        fields.setdefault("command_id", f"{type}-{next(_names)}")
    with trio.fail_after(TURN_WITHIN):
        while True:
            answer = await client.ask(type, **fields)
            if answer.get("code") not in ("unavailable", "rate_limited", "busy"):
                if answer["type"] == "error":
                    raise RuntimeError(f"{type} refused: {answer}")
                return answer
            await trio.sleep(ROUND / 8)  # the chat is moving, or we sent too fast: again


async def new_bot(client: Client, n: int) -> str:
    bot = await available(
        client, "create_bot", name=f"Mira {n}", persona=PERSONA, greeting=GREETING
    )
    return str(bot["bot"]["id"])


async def new_chat(client: Client, bot_id: str) -> str:
    chat = await available(client, "create_chat", host_bot_id=bot_id, location="The Gilded Eel")
    return str(chat["chat"]["id"])


async def send_turn(client: Client, chat_id: str) -> int:
    answer = await available(client, "send_turn", chat_id=chat_id, prose=PROSE)
    assert answer["type"] == "accepted", answer
    return int(answer["user_turn_id"])


async def settled(viewer: Viewer, chat_id: str, turn: int) -> None:
    await viewer.until(lambda: turn in viewer.settled[chat_id], TURN_WITHIN)


async def turn_through(viewer: Viewer, chat_id: str) -> int:
    """A turn sent through ``viewer`` (which watches the chat), once it has settled."""
    turn = await send_turn(viewer, chat_id)
    await settled(viewer, chat_id, turn)
    return turn


def ended(viewer: Viewer, chat_id: str, turn: int) -> bool:
    """Whether the viewer knows the turn's beat ended (its end, or a fresh state with it)."""
    return fold(viewer.about(chat_id)).ended(turn) is not None


async def db(fn: Callable[..., Any], *args: Any) -> Any:
    return await trio.to_thread.run_sync(fn, *args)


async def owner_of(cluster: Cluster, chat_id: str) -> Node:
    node: Node = await db(cluster.owner_of, chat_id)
    return node


# --- processes -----------------------------------------------------------------------------


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


async def steady_rss(node: Node) -> int:
    """The node's resident size once it has been quiet a moment: the median of three looks."""
    assert node.proc is not None
    looks = []
    for _ in range(3):
        await trio.sleep(0.5)  # a quiet node's size, looked at three times
        looks.append(rss_kib(node.proc.pid))
    return int(statistics.median(looks))


def tree_cpu(root: int) -> float:
    """CPU seconds of a process and all its descendants (a server and its workers, which
    may each be a process group of its own), the children they reaped included."""
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    spent: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        pid = int(stat.parent.name)
        parents[pid] = int(fields[1])
        spent[pid] = sum(int(f) for f in fields[11:15])
    family = {root}
    for _ in range(8):  # a server's tree is a few levels deep
        family |= {pid for pid, parent in parents.items() if parent in family}
    return sum(spent.get(pid, 0) for pid in family) / tick


def machine_busy() -> float:
    """CPU seconds the whole machine has been busy, every core, whoever ran."""
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextlib.contextmanager
def cluster_of(pg: PostgresServer, folder: Path, rate: float, database: str) -> Iterator[Cluster]:
    """Redis, the model at ``rate`` tokens a second and no nodes yet, on a fresh database."""
    folder.mkdir()
    with open_cluster(pg, folder, database, rate, WORDS) as cluster:
        yield cluster


# --- memory --------------------------------------------------------------------------------


async def activate(controls: list[Viewer], chats: list[str]) -> None:
    """One turn in each chat, all at once, then close them: idle chat actors on their owner.

    The chats are shared among several connections: each may send only so
    many commands a second.
    """

    async def one(control: Viewer, chat_id: str) -> None:
        await available(control, "open_chat", chat_id=chat_id)
        await turn_through(control, chat_id)
        await available(control, "close_chat", chat_id=chat_id)

    async with trio.open_nursery() as nursery:
        for i, chat_id in enumerate(chats):
            nursery.start_soon(one, controls[i % len(controls)], chat_id)


async def memory(cluster: Cluster) -> tuple[dict[str, Any], list[str]]:
    """The one node's growth per idle chat actor and per idle connection; the chats made."""
    (node,) = cluster.alive()
    async with viewers([node] * CONTROLS) as controls:
        bots = [await new_bot(controls[n], n) for n in range(CONTROLS)]
        chats: list[str] = []

        async def make(n: int) -> None:
            for _ in range(n, CHATS_K + 4, CONTROLS):
                chats.append(await new_chat(controls[n], bots[n]))

        async with trio.open_nursery() as nursery:
            for n in range(CONTROLS):
                nursery.start_soon(make, n)
        await activate(controls, chats[:4])  # the first turns load what every turn uses
        idle = await steady_rss(node)
        await activate(controls, chats[4:])
        with_chats = await steady_rss(node)
        async with viewers([node] * CONNECTIONS):
            with_connections = await steady_rss(node)
    per_chat = (with_chats - idle) / CHATS_K
    per_connection = (with_connections - with_chats) / CONNECTIONS
    return {
        "idle_rss_kib": idle,
        "chats": CHATS_K,
        "rss_with_chats_kib": with_chats,
        "connections": CONNECTIONS,
        "rss_with_connections_kib": with_connections,
        "kib_per_idle_chat_actor": per_chat,
        "kib_per_idle_connection": per_connection,
        "chats_over_idle": with_chats / idle,
        "connections_over_idle": with_connections / with_chats,
    }, chats[4:]


# --- throughput ----------------------------------------------------------------------------


async def load(cluster: Cluster, chats: list[str]) -> dict[str, Any]:
    """``LOAD_TURNS`` turns in every chat, one after another, two viewers a chat."""
    nodes = cluster.alive()
    owners = [await owner_of(cluster, c) for c in chats]
    near = owners
    far = [nodes[(nodes.index(o) + 1) % len(nodes)] for o in owners]
    async with viewers(near) as first, viewers(far) as second:
        for chat_id, a, b in zip(chats, first, second, strict=True):
            await available(a, "open_chat", chat_id=chat_id)
            await available(b, "open_chat", chat_id=chat_id)

        async def warm(chat_id: str, a: Viewer) -> None:
            await turn_through(a, chat_id)

        async with trio.open_nursery() as nursery:  # the new owner reads its chats
            for chat_id, a in zip(chats, first, strict=True):
                nursery.start_soon(warm, chat_id, a)
        tokens_before = sum(v.tokens for v in first + second)
        roots = {n.name: n.proc.pid for n in nodes if n.proc is not None}
        for name, server in (("model", cluster.model), ("postgresql", cluster.pg)):
            assert server.proc is not None
            roots[name] = server.proc.pid
        roots["redis"] = cluster.redis.proc.pid
        cpu_before = {name: tree_cpu(pid) for name, pid in roots.items()}
        own_before = own_cpu()
        busy_before = machine_busy()
        started = time.perf_counter()

        async def turns(chat_id: str, a: Viewer, b: Viewer) -> None:
            for _ in range(LOAD_TURNS):
                turn = await turn_through(a, chat_id)
                await settled(b, chat_id, turn)

        async with trio.open_nursery() as nursery:
            for chat_id, a, b in zip(chats, first, second, strict=True):
                nursery.start_soon(turns, chat_id, a, b)
        elapsed = time.perf_counter() - started
        cpu = {name: tree_cpu(pid) - cpu_before[name] for name, pid in roots.items()}
        cpu["clients"] = own_cpu() - own_before
        cpu["rest_of_machine"] = max(0.0, machine_busy() - busy_before - sum(cpu.values()))
        tokens = sum(v.tokens for v in first + second) - tokens_before
        done = len(chats) * LOAD_TURNS
        problems = sum(len(fold(v.about(c)).problems) for v in first for c in chats)
    return {
        "nodes": len(nodes),
        "turns": done,
        "seconds": elapsed,
        "turns_per_second": done / elapsed,
        "tokens_delivered_per_second": tokens / elapsed,
        "cpu_seconds": cpu,
        "cpu_ms_per_turn_nodes": sum(v for k, v in cpu.items() if k.startswith("node"))
        / done
        * 1000,
        "cpu_ms_per_turn_all": (sum(cpu.values()) - cpu["rest_of_machine"]) / done * 1000,
        "chats_per_node": {n.name: sum(o is n for o in owners) for n in nodes},
        "cpu_share_of_machine": sum(cpu.values()) / (elapsed * (os.cpu_count() or 1)),
        "viewer_problems": problems,
    }


async def throughput(cluster: Cluster, chats: list[str]) -> dict[str, Any]:
    """The same load on 1, then 2, then 3 nodes (each joining, the shards settled first)."""
    chosen = chats[:LOAD_CHATS]
    runs = {}
    for count in (1, 2, 3):
        while len(cluster.alive()) < count:
            await cluster.start_node()
        await cluster.settle()
        rounds = [await load(cluster, chosen) for _ in range(LOAD_ROUNDS)]
        runs[str(count)] = max(rounds, key=lambda run: run["turns_per_second"])
        runs[str(count)]["every_round_turns_per_second"] = [r["turns_per_second"] for r in rounds]
        print(f"  {count} node(s): {runs[str(count)]['turns_per_second']:.2f} turns/s")
    for run in runs.values():
        run["turns_per_second_over_1_node"] = (
            run["turns_per_second"] / runs["1"]["turns_per_second"]
        )
        run["tokens_per_second_over_1_node"] = (
            run["tokens_delivered_per_second"] / runs["1"]["tokens_delivered_per_second"]
        )
    return {
        "chats": len(chosen),
        "viewers_per_chat": 2,
        "turns_per_chat": LOAD_TURNS,
        "rounds": LOAD_ROUNDS,
        **runs,
    }


# --- latency across nodes -------------------------------------------------------------------


def deltas(later: Viewer, earlier: Viewer, chat_id: str) -> list[float]:
    """For each token frame ``earlier`` got: how much later ``later`` had that text, in s.

    Matched by the text's end offset in its beat: the first frame of ``later``
    whose text reaches as far, so tokens merged into one frame count.
    """
    theirs: dict[int, list[tuple[int, float]]] = defaultdict(list)
    for beat, end, at in later.tokens_of(chat_id):
        theirs[beat].append((end, at))
    found = []
    for beat, end, at in earlier.tokens_of(chat_id):
        match = next((t for e, t in theirs.get(beat, []) if e >= end), None)
        if match is not None:
            found.append(match - at)
    return found


def ms(values: list[float], q: float) -> float:
    """The ``q`` quantile in milliseconds, to 0.1 ms (a difference may be below zero: the
    other viewer's frame was read first)."""
    return round(percentile(values, q) * 1000, 1) + 0.0  # + 0.0: never "-0.0"


async def latency(cluster: Cluster) -> dict[str, Any]:
    """Token arrival on a node that does not own the chat, against its owner."""
    a, b = cluster.alive()[:2]
    cross: list[float] = []
    same: list[float] = []
    first_a: list[float] = []
    first_b: list[float] = []
    problems = 0
    async with viewers([a, a, b]) as (near, also_near, far):
        bot = await new_bot(near, 0)
        chats = [await new_chat(near, bot) for _ in range(LATENCY_CHATS)]
        for chat_id in chats:
            assert await owner_of(cluster, chat_id) is a
            for viewer in (near, also_near, far):
                await available(viewer, "open_chat", chat_id=chat_id)

        async def turns(chat_id: str) -> None:
            for _ in range(LATENCY_TURNS):
                sent = time.perf_counter()
                turn = await send_turn(near, chat_id)
                await settled(near, chat_id, turn)
                await settled(far, chat_id, turn)
                at_a = near.first_token_after(chat_id, sent)
                at_b = far.first_token_after(chat_id, sent)
                if at_a is not None and at_b is not None:
                    first_a.append(at_a - sent)
                    first_b.append(at_b - sent)

        async with trio.open_nursery() as nursery:
            for chat_id in chats:
                nursery.start_soon(turns, chat_id)
        for chat_id in chats:
            cross += deltas(far, near, chat_id)
            same += deltas(also_near, near, chat_id)
            problems += sum(len(fold(v.about(chat_id)).problems) for v in (near, far))
    figures = {
        "chats": LATENCY_CHATS,
        "turns_per_chat": LATENCY_TURNS,
        "model_tokens_per_second": SLOW_RATE,
        "tokens_compared": len(cross),
        "cross_node_extra_p50_ms": ms(cross, 0.5),
        "cross_node_extra_p99_ms": ms(cross, 0.99),
        "same_node_extra_p50_ms": ms(same, 0.5),
        "same_node_extra_p99_ms": ms(same, 0.99),
        "first_token_same_node_p50_ms": ms(first_a, 0.5),
        "first_token_same_node_p99_ms": ms(first_a, 0.99),
        "first_token_cross_node_p50_ms": ms(first_b, 0.5),
        "first_token_cross_node_p99_ms": ms(first_b, 0.99),
        "viewer_problems": problems,
    }
    figures["first_token_cross_over_same_p50"] = (
        figures["first_token_cross_node_p50_ms"] / figures["first_token_same_node_p50_ms"]
    )
    return figures


# --- failover -------------------------------------------------------------------------------


async def failover(cluster: Cluster) -> dict[str, Any]:
    """``kill -9`` of an owner: until its shards are held elsewhere, until a turn is accepted."""
    victim = cluster.alive()[-1]
    survivor = cluster.others(victim)[0]
    async with viewers([victim]) as (maker,):
        bot = await new_bot(maker, 0)
        chat_id = await new_chat(maker, bot)
        await available(maker, "open_chat", chat_id=chat_id)
        await turn_through(maker, chat_id)
    assert await owner_of(cluster, chat_id) is victim
    table = await db(leases, cluster.store)
    theirs = {s for s, lease in table.items() if lease.live and lease.owner == victim.node_id}
    times: dict[str, float] = {}
    async with viewers([survivor]) as (client,):
        await available(client, "open_chat", chat_id=chat_id)
        killed = time.perf_counter()
        await trio.to_thread.run_sync(victim.kill)

        async def shards_held() -> None:
            with trio.fail_after(MOVE_WITHIN):
                while True:
                    now = await db(leases, cluster.store)
                    held = [s for s in theirs if now[s].live and now[s].owner != victim.node_id]
                    if held and "first_shard_s" not in times:
                        times["first_shard_s"] = time.perf_counter() - killed
                    if len(held) == len(theirs):
                        times["all_shards_s"] = time.perf_counter() - killed
                        return
                    await trio.sleep(0.02)  # polling the lease table

        async def turn_accepted() -> None:
            turn = await send_turn(client, chat_id)
            times["turn_accepted_s"] = time.perf_counter() - killed
            await settled(client, chat_id, turn)
            times["turn_settled_s"] = time.perf_counter() - killed

        async with trio.open_nursery() as nursery:
            nursery.start_soon(shards_held)
            nursery.start_soon(turn_accepted)
    if "all_shards_s" in times:
        times["all_shards_over_ttl"] = times["all_shards_s"] / LEASE_TTL
    return {"lease_ttl_s": LEASE_TTL, "round_s": ROUND, "shards_moved": len(theirs), **times}


# --- the paused owner -----------------------------------------------------------------------


async def pause(cluster: Cluster) -> dict[str, Any]:
    """``kill -STOP`` of an owner mid-beat past its lease, then ``kill -CONT``."""
    owner = cluster.alive()[0]
    other = cluster.others(owner)[0]
    async with viewers([owner, other]) as (near, far):
        bot = await new_bot(near, 0)
        chat_id = await new_chat(near, bot)
        assert await owner_of(cluster, chat_id) is owner
        before = await db(cluster.lease_of, chat_id)
        stats_before = (await near.statistics())["leases"]
        for viewer in (near, far):
            await available(viewer, "open_chat", chat_id=chat_id)
        turn = await send_turn(far, chat_id)
        await far.until(lambda: far.streamed[chat_id] >= 40, TURN_WITHIN)
        owner.pause()
        paused = time.perf_counter()
        try:
            with trio.fail_after(MOVE_WITHIN):
                while True:
                    lease = await db(cluster.lease_of, chat_id)
                    if lease.live and lease.owner != owner.node_id and lease.epoch > before.epoch:
                        break
                    await trio.sleep(0.05)  # polling the lease table
            taken = time.perf_counter() - paused
            # Past the whole TTL, not only past the lease's expiry (a renewal came
            # up to a round before the pause).
            await trio.sleep(max(0.0, paused + LEASE_TTL + ROUND - time.perf_counter()))
        finally:
            owner.resume()
            paused_for = time.perf_counter() - paused
        for viewer in (near, far):
            await viewer.until(lambda v=viewer: ended(v, chat_id, turn), TURN_WITHIN)
        # Awake again, the old owner finds its lease gone; what it still tried to write
        # was refused (asked again for a while: the count comes as its tasks wake).
        stats = (await near.statistics())["leases"]
        with trio.move_on_after(MOVE_WITHIN):
            while stats["fenced_rejections"] == stats_before["fenced_rejections"]:
                await trio.sleep(0.2)  # asking the woken node again
                stats = (await near.statistics())["leases"]
        views = {v.name: fold(v.about(chat_id)) for v in (near, far)}
    committed = [p for _, p in await db(events, cluster.store, chat_id, "assistant_turn")]
    beats = [p for p in committed if p["user_turn_id"] == turn]
    rows = await db(
        query, cluster.store, "SELECT seq FROM outbox WHERE chat_id = %s ORDER BY seq", (chat_id,)
    )
    seqs = [int(r[0]) for r in rows]
    log_gaps = sum(1 for x, y in itertools.pairwise(seqs) if y != x + 1)
    view_problems = [p for view in views.values() for p in view.problems]
    duplicates = sum("duplicate" in p for p in view_problems)
    gaps = sum(("gap" in p or "hole" in p) for p in view_problems)
    return {
        "lease_ttl_s": LEASE_TTL,
        "paused_s": paused_for,
        "shard_taken_after_s": taken,
        "fenced_rejections": stats["fenced_rejections"] - stats_before["fenced_rejections"],
        "fenced_by_database": stats["fenced_by_database"] - stats_before["fenced_by_database"],
        "shards_lost": stats["lost"] - stats_before["lost"],
        "duplicates": duplicates + max(0, len(beats) - 1),
        "gaps": gaps + log_gaps,
        "as_required": stats["fenced_rejections"] > stats_before["fenced_rejections"]
        and duplicates + max(0, len(beats) - 1) == 0
        and gaps + log_gaps == 0,
        "beat_ends_in_log": len(beats),
        "resyncs": {name: view.resyncs for name, view in views.items()},
        "viewer_problems": view_problems,
    }


# --- the run --------------------------------------------------------------------------------


def measure() -> dict[str, Any]:
    os.environ["TROUPE_MAX_CONNECTIONS"] = str(MODEL_CONNECTIONS)
    figures: dict[str, Any] = {"cores": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="troupe-bench-") as tmp, postgres_server() as pg:
        with cluster_of(pg, Path(tmp) / "scaling", FAST_RATE, "bench_scaling") as cluster:
            cluster.start_nodes(1)
            cluster.wait_balanced()
            print("memory ...")
            figures["memory"], chats = trio.run(memory, cluster)
            print("throughput ...")
            figures["throughput"] = trio.run(throughput, cluster, chats)
        with cluster_of(pg, Path(tmp) / "faults", SLOW_RATE, "bench_faults") as cluster:
            cluster.start_nodes(3)
            cluster.wait_balanced()
            print("latency ...")
            figures["latency"] = trio.run(latency, cluster)
            print("failover ...")
            figures["failover"] = trio.run(failover, cluster)
            print("pause ...")
            figures["pause"] = trio.run(pause, cluster)
    return figures


def main() -> None:
    started = time.perf_counter()
    figures = measure()
    figures["seconds"] = time.perf_counter() - started
    lat, fail, paused, mem = (figures[k] for k in ("latency", "failover", "pause", "memory"))
    put = figures["throughput"]
    rows = [
        ("cores", f"{figures['cores']} (shared by every process below)"),
        (
            "token on B after A, p50 / p99",
            f"{lat['cross_node_extra_p50_ms']:.1f} / {lat['cross_node_extra_p99_ms']:.1f} ms",
        ),
        (
            "  baseline: 2nd viewer on A, p50 / p99",
            f"{lat['same_node_extra_p50_ms']:.1f} / {lat['same_node_extra_p99_ms']:.1f} ms",
        ),
        (
            "send to first token on A, p50 / p99",
            f"{lat['first_token_same_node_p50_ms']:.0f} / "
            f"{lat['first_token_same_node_p99_ms']:.0f} ms",
        ),
        (
            "send to first token on B, p50 / p99",
            f"{lat['first_token_cross_node_p50_ms']:.0f} / "
            f"{lat['first_token_cross_node_p99_ms']:.0f} ms",
        ),
        ("  ratio B / A (p50)", f"{lat['first_token_cross_over_same_p50']:.2f}x"),
        (
            f"failover (TTL {fail['lease_ttl_s']:g} s): shards held elsewhere",
            f"{fail.get('all_shards_s', float('nan')):.2f} s "
            f"(first {fail.get('first_shard_s', float('nan')):.2f} s, "
            f"{fail['shards_moved']} shards; {fail.get('all_shards_over_ttl', 0):.2f}x the TTL)",
        ),
        (
            "failover: a turn accepted via a survivor",
            f"{fail.get('turn_accepted_s', float('nan')):.2f} s",
        ),
        (
            f"pause {paused['paused_s']:.1f} s (shard taken after "
            f"{paused['shard_taken_after_s']:.1f} s)",
            f"fenced rejections {paused['fenced_rejections']}, duplicates "
            f"{paused['duplicates']}, gaps {paused['gaps']} "
            f"({'as' if paused['as_required'] else 'NOT as'} required: > 0 / 0 / 0)",
        ),
    ]
    for count in ("1", "2", "3"):
        run = put[count]
        nodes_cpu = sum(v for k, v in run["cpu_seconds"].items() if k.startswith("node"))
        rows += [
            (
                f"throughput, {count} node(s)",
                f"{run['turns_per_second']:.2f} turns/s "
                f"({run['turns_per_second_over_1_node']:.2f}x), "
                f"{run['tokens_delivered_per_second']:,.0f} tokens/s delivered "
                f"({run['tokens_per_second_over_1_node']:.2f}x)",
            ),
            (
                "  machine busy; of it, the nodes",
                f"{run['cpu_share_of_machine']:.0%}; "
                f"{nodes_cpu / (run['seconds'] * (figures['cores'] or 1)):.0%} "
                f"(chats per node {sorted(run['chats_per_node'].values(), reverse=True)})",
            ),
            (
                "  CPU per turn: the nodes; all the run's processes",
                f"{run['cpu_ms_per_turn_nodes']:.0f} ms; {run['cpu_ms_per_turn_all']:.0f} ms",
            ),
        ]
    rows += [
        ("node RSS idle", f"{mem['idle_rss_kib'] / 1024:.1f} MiB"),
        (
            f"per idle chat actor ({mem['chats']})",
            f"{mem['kib_per_idle_chat_actor']:.1f} KiB "
            f"({mem['chats_over_idle']:.3f}x idle with all)",
        ),
        (
            f"per idle connection ({mem['connections']})",
            f"{mem['kib_per_idle_connection']:.1f} KiB "
            f"({mem['connections_over_idle']:.3f}x with all)",
        ),
        ("whole run", f"{figures['seconds']:.0f} s"),
    ]
    report("cluster", rows, figures)


if __name__ == "__main__":
    main()
