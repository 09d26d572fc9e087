"""A cluster of real ``troupe serve`` processes on loopback, and what the database says of it.

Each node is its own process group, so a test can crash it (``kill -9``),
pause it (``kill -STOP``) and let it go on (``kill -CONT``) exactly as an
operator or the kernel would. Everything a node prints goes to a log file
of its own; :meth:`Cluster.tails` gives the end of every log for a failure
report.

Who owns what is read where the cluster keeps it: the lease table and the
node table in PostgreSQL. Nothing polls: a wait on a process waits for what
it prints, and a wait on the cluster's state looks again each time the
database says the lease tables were written (``LISTEN``), within a bound.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import attrs
import psycopg
import trio

from cluster import owner_by_rendezvous, shard_of
from tests.support import servers
from tests.support.servers import PostgresServer, redis_server, redis_url

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "cluster-token"
LEASE_TTL = 3.0
"""Seconds of a lease: rounds every second, so faults play out in a few seconds."""
ROUND = LEASE_TTL / 3
MODEL_RATE = 40.0
"""Tokens a second: every beat lasts about two seconds, long enough to fault under it."""
MODEL_WORDS = 80
START_WITHIN = 60.0
"""Seconds a node may take to print its ready line (two cores, several nodes importing)."""
STOP_WITHIN = 15.0
READY = re.compile(r"is ready: http://127\.0\.0\.1:(\d+)/")

T = TypeVar("T")


LEASE_TABLES = ("shard_leases", "nodes")
"""The tables whose writes wake a wait on the cluster's state (every lease round writes them)."""


def wait_until(store: str, check: Callable[[], T | None], within: float, what: str) -> T:
    """``check()`` once it is not None, looked at again at each write of the lease tables."""
    return servers.wait_until(store, LEASE_TABLES, check, within, what)


async def settled_on(store: str, check: Callable[[], T | None], within: float, what: str) -> T:
    """:func:`wait_until` for trio tests, on a worker thread."""
    return await trio.to_thread.run_sync(wait_until, store, check, within, what)


async def next_round(store: str) -> None:
    """Until the lease tables are written next: a lease round ran somewhere."""
    await trio.to_thread.run_sync(
        servers.next_change, store, LEASE_TABLES, 2 * LEASE_TTL, "a lease round"
    )


@attrs.define
class Process:
    """A child process in a process group of its own, its output in a file."""

    name: str
    argv: list[str]
    log: Path
    env: dict[str, str]
    proc: subprocess.Popen[bytes] | None = None
    output: servers.Output | None = None
    stopped: bool = False
    """We stopped it (or killed it): its exit is no crash."""

    def spawn(self) -> None:
        self.proc, self.output = servers.spawn(
            self.argv, self.log, stdin=subprocess.DEVNULL, cwd=ROOT, env=self.env
        )

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, signum: signal.Signals) -> None:
        if self.running:
            assert self.proc is not None
            os.killpg(self.proc.pid, signum)

    def kill(self) -> None:
        """``kill -9`` of the whole group, and wait for it."""
        self.stopped = True
        if self.running:
            assert self.proc is not None
            self.signal(signal.SIGKILL)
            self.proc.wait(timeout=STOP_WITHIN)

    def text(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.text().splitlines()[-lines:])


@attrs.define
class Node(Process):
    """One ``troupe serve`` node."""

    port: int = 0
    node_id: str = ""
    paused: bool = False
    store: str = ""
    """The cluster's database."""

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws?token={TOKEN}"

    @property
    def alive(self) -> bool:
        """Running and not paused: a node the cluster should count on."""
        return self.running and not self.paused

    def wait_ready(self) -> None:
        """Until the node prints its ready line; then read its id from the node table."""

        assert self.output is not None
        self.port = int(self.output.wait_for(READY, START_WITHIN, self.name).group(1))

    def pause(self) -> None:
        """``kill -STOP``: the node stops dead, its sockets and leases as they were."""
        self.signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        """``kill -CONT``: the node goes on as if nothing happened, by its own clock."""
        self.signal(signal.SIGCONT)
        self.paused = False

    def stop(self) -> None:
        """SIGTERM (after SIGCONT), SIGKILL past the bound."""
        self.stopped = True
        if not self.running:
            return
        assert self.proc is not None
        self.resume()
        self.signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=STOP_WITHIN)
        except subprocess.TimeoutExpired:
            self.kill()


# --- the database: leases and nodes -----------------------------------------------------


@attrs.frozen
class LeaseRow:
    """One row of the lease table as the test reads it."""

    owner: str | None
    epoch: int
    live: bool
    """Held and not run out, by the database's clock."""


def query(url: str, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Rows of one statement on a connection of its own (the server may have restarted)."""
    with psycopg.connect(url, autocommit=True, connect_timeout=5) as conn:
        return conn.execute(sql, params).fetchall()


def leases(url: str) -> dict[int, LeaseRow]:
    rows = query(
        url,
        "SELECT shard, owner, epoch, owner IS NOT NULL AND expires_at > clock_timestamp() "
        "FROM shard_leases",
    )
    return {int(s): LeaseRow(o, int(e), bool(live)) for s, o, e, live in rows}


def node_ids(url: str) -> dict[str, str]:
    """The newest node id of every address ``host:port``."""
    rows = query(url, "SELECT address, node_id FROM nodes ORDER BY started_at")
    return {address: node_id for address, node_id in rows}


def events(url: str, chat_id: str, kind: str) -> list[tuple[int, dict[str, Any]]]:
    """``(id, payload)`` of the chat's events of one kind, in log order."""
    rows = query(
        url,
        "SELECT id, payload FROM event_log WHERE chat_id = %s AND kind = %s ORDER BY id",
        (chat_id, kind),
    )
    return [(int(i), p if isinstance(p, dict) else json.loads(p)) for i, p in rows]


def python_env() -> dict[str, str]:
    """The environment of a child: this tree's code first, whatever is installed."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def serve_argv(data: Path, store: str, bus: str, model_url: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "troupe",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--data",
        str(data),
        "--token",
        TOKEN,
        "--store",
        store,
        "--bus",
        bus,
        "--lease-ttl",
        str(LEASE_TTL),
        "--backend",
        "openai",
        "--base-url",
        model_url,
    ]


# --- the cluster ------------------------------------------------------------------------


@attrs.define
class Cluster:
    """PostgreSQL, Redis, the model and the nodes of one test module."""

    folder: Path
    store: str
    """The cluster's database URL."""
    pg: Any
    redis: Any
    bus: str
    model: Process
    model_url: str
    nodes: list[Node] = attrs.Factory(list)

    # --- nodes coming and going ---

    def spawn_node(self) -> Node:
        """Start one more node; :meth:`Node.wait_ready` and :meth:`identify` it after."""
        index = len(self.nodes) + 1
        data = self.folder / f"node{index}"
        data.mkdir()
        node = Node(
            f"node{index}",
            serve_argv(data, self.store, self.bus, self.model_url),
            self.folder / f"node{index}.log",
            python_env(),
            store=self.store,
        )
        node.spawn()
        self.nodes.append(node)
        return node

    def identify(self, node: Node) -> None:
        """Read the node's id from the node table (it registers in its first lease round)."""
        address = f"127.0.0.1:{node.port}"
        node.node_id = wait_until(
            self.store,
            lambda: node_ids(self.store).get(address),
            START_WITHIN,
            f"{node.name} in the node table",
        )

    def start_nodes(self, count: int) -> list[Node]:
        started = [self.spawn_node() for _ in range(count)]
        for node in started:
            node.wait_ready()
            self.identify(node)
        return started

    async def start_node(self) -> Node:
        """One more node, up and registered (the waiting runs on a worker thread)."""
        (node,) = await trio.to_thread.run_sync(self.start_nodes, 1)
        return node

    def alive(self) -> list[Node]:
        return [n for n in self.nodes if n.alive]

    def node(self, node_id: str | None) -> Node:
        """The node of an id from the lease table."""
        for node in self.nodes:
            if node.node_id == node_id:
                return node
        raise LookupError(f"no node {node_id!r} of ours")

    def others(self, node: Node) -> list[Node]:
        return [n for n in self.alive() if n is not node]

    # --- who owns what ---

    def balanced(self) -> dict[int, LeaseRow] | None:
        """The lease table once every shard is held by its desired owner among the live nodes."""
        live = [n.node_id for n in self.alive()]
        table = leases(self.store)
        if len(table) == 0:
            return None
        for shard, lease in table.items():
            if not lease.live or lease.owner != owner_by_rendezvous(shard, live):
                return None
        return table

    def wait_balanced(self, within: float = 90.0) -> dict[int, LeaseRow]:
        return wait_until(self.store, self.balanced, within, "every shard held by its owner")

    async def settle(self, within: float = 90.0) -> dict[int, LeaseRow]:
        """Until every shard is held by its desired owner among the live nodes."""
        return await settled_on(self.store, self.balanced, within, "every shard held by its owner")

    def crashed(self) -> list[Node]:
        """The nodes that exited on their own: a node must ride out every fault we make."""
        return [n for n in self.nodes if n.proc is not None and not n.running and not n.stopped]

    def assert_none_crashed(self) -> None:
        crashed = self.crashed()
        logs = "\n".join(f"--- {n.name}:\n{n.tail(60)}" for n in crashed)
        assert not crashed, f"nodes exited on their own:\n{logs}"

    async def ensure(self, count: int = 3) -> None:
        """At least ``count`` live nodes, every paused one let go on, the shards settled.

        A node that exited on its own fails the scenario first: a new node in its
        place would hide the crash.
        """
        self.assert_none_crashed()
        for node in self.nodes:
            if node.paused:
                node.resume()
        while len(self.alive()) < count:
            await self.start_node()
        await self.settle()

    def owner_of(self, chat_id: str) -> Node:
        lease = leases(self.store)[shard_of(chat_id)]
        assert lease.live, f"nobody holds chat {chat_id}'s shard"
        return self.node(lease.owner)

    def lease_of(self, chat_id: str) -> LeaseRow:
        return leases(self.store)[shard_of(chat_id)]

    # --- the end ---

    def stop(self) -> None:
        """Every node stopped (SIGTERM, then SIGKILL), then the model."""
        for node in self.nodes:
            node.stopped = True
            node.resume()
            node.signal(signal.SIGTERM)
        for node in self.nodes:
            node.stop()
        self.model.kill()

    def tails(self, lines: int = 40) -> str:
        parts = [f"--- {n.name} ({n.node_id or '?'}):\n{n.tail(lines)}" for n in self.nodes]
        parts.append(f"--- model:\n{self.model.tail(10)}")
        return "\n".join(parts)


def start_model(folder: Path, rate: float, words: int) -> tuple[Process, str]:
    """The OpenAI-compatible test server as a process; its base URL."""
    model = Process(
        "model",
        [
            sys.executable,
            "-m",
            "tests.cluster_e2e.cluster_model",
            "--rate",
            str(rate),
            "--words",
            str(words),
        ],
        folder / "model.log",
        python_env(),
    )
    model.spawn()

    assert model.output is not None
    said = model.output.wait_for(re.compile(r"^\{.*\}$", re.M), START_WITHIN, "the model server")
    url: str = json.loads(said.group(0))["url"]
    return model, url


@contextlib.contextmanager
def open_cluster(
    pg: PostgresServer, folder: Path, database: str, rate: float, words: int
) -> Iterator[Cluster]:
    """Redis, the model at ``rate`` tokens a second and no nodes yet, on a fresh database.

    Every process it starts is stopped on the way out; on a failure the
    tail of every node's log is printed first.
    """
    with redis_server() as redis:
        model, model_url = start_model(folder, rate, words)
        cluster = Cluster(
            folder=folder,
            store=pg.fresh_database(database),
            pg=pg,
            redis=redis,
            bus=redis_url(redis),
            model=model,
            model_url=model_url,
        )
        try:
            yield cluster
        except BaseException:
            print(cluster.tails(), file=sys.stderr)
            raise
        finally:
            cluster.stop()
