"""One node of a cluster: the engine on PostgreSQL, its shards' leases, the bus.

``troupe serve --store postgresql://... --bus redis://...`` runs this in
place of the single process's engine; the gateway in front of it is the
same, with a router (docs/scale-out.md):

- The store is the PostgreSQL one, fenced by the lease keeper: every write
  about a chat is refused unless this node holds the chat's shard at its
  epoch. New chats get ids of this node's own shards.
- When the keeper is granted a shard, the node adopts its chats (forgets
  what it knew of them, ends the beats a dead owner left open from their
  checkpoints, runs their queued turns) and only then writes in it. When a
  shard is lost, its active chats stop at once; when one is handed over,
  its turns are drained first.
- The feeds of chats this node owns are published on the bus; the feeds of
  chats it watches but does not own are relayed from it.
- Commands about a chat run on its owner.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import attrs
import trio

from actors import ChatFeed, Engine, EngineSettings, FeedHooks, Resync, open_engine
from store import open_store

from ._bus import open_bus
from ._leases import LeaseKeeper, LeaseSettings
from ._relay import Follower, Publisher
from ._routing import ClusterRouter
from ._shards import NodeId, node_id, shard_of

log = logging.getLogger("troupe.cluster")

ADOPT_RETRY = 0.5
"""Seconds between two attempts at adopting a granted shard whose chats could not be read."""


@attrs.frozen
class NodeSettings:
    """Where the cluster's parts are, and who this node is."""

    store: str
    bus: str
    host: str
    port: int
    lease_ttl: float = 10.0


class Node:
    """What the gateway and the shard callbacks need of a running node."""

    def __init__(self, me: NodeId) -> None:
        self.me = me
        self.engine: Engine
        self.keeper: LeaseKeeper
        self.router: ClusterRouter
        self.publisher: Publisher
        self.follower: Follower
        self._adopted: set[int] = set()
        self._granted: dict[int, int] = {}
        """Shards granted and not yet adopted, with their epochs."""
        self._nursery: trio.Nursery | None = None
        self.adoptions = 0
        self.recovered_beats = 0

    # --- what this node may write ---

    def writable(self, chat_id: str) -> bool:
        """This node holds the chat's shard and has adopted its chats."""
        shard = shard_of(chat_id)
        return shard in self._adopted and shard in self.keeper.held()

    def epoch_of(self, chat_id: str) -> int | None:
        """The epoch this node writes the chat at; None when it does not own it."""
        return self.keeper.held().get(shard_of(chat_id))

    def owner_of(self, chat_id: str) -> str | None:
        return self.keeper.owner_of(chat_id)

    # --- the keeper's callbacks ---

    async def acquired(self, shard: int, epoch: int) -> None:
        """Granted: adopt the shard's chats once the keeper holds it (its next checkpoint).

        The shards granted in one round are adopted together: one pass over
        the store for all of them, not one each.
        """
        assert self._nursery is not None
        if not self._granted:
            self._nursery.start_soon(self._adopt_granted)
        self._granted[shard] = epoch

    async def _adopt_granted(self) -> None:
        await trio.lowlevel.checkpoint()  # the keeper records the round's other grants first
        granted, self._granted = self._granted, {}

        def ours(chat_id: str) -> bool:
            return shard_of(chat_id) in granted

        for chat_id in self.follower.following():
            if ours(chat_id):
                self.follower.stop(chat_id)
        while True:
            try:
                ended = await self.engine.adopt_chats(ours)
                break
            except Exception:
                # The database may be coming back (a first call after its restart fails):
                # try again while the shards are still ours, else they stay held but
                # unwritable.
                log.exception("%s: adopting shards %s failed; trying again", self.me, granted)
                held = self.keeper.held()
                granted = {s: e for s, e in granted.items() if held.get(s) == e}
                if not granted:
                    return
                await trio.sleep(ADOPT_RETRY)
        held = self.keeper.held()
        for shard, epoch in granted.items():
            if held.get(shard) == epoch:  # not lost again meanwhile
                self._adopted.add(shard)
                self.adoptions += 1
        self.recovered_beats += len(ended)
        for chat_id in ended:
            # Their beats ended here, not through a feed: the other nodes read them afresh.
            self.publisher.tap(chat_id, Resync())

    def lost(self, shard: int) -> None:
        """The shard is no longer ours: stop its chats, follow the ones watched here."""
        self._adopted.discard(shard)
        if self._nursery is not None:
            self._nursery.start_soon(self._let_go, shard)

    async def _let_go(self, shard: int) -> None:
        def ours(chat_id: str) -> bool:
            return shard_of(chat_id) == shard

        await self.engine.stop_chats(ours)
        for chat_id, _feed in self.engine.svc.feeds.items():
            if ours(chat_id):
                self.follower.follow(chat_id)

    async def drain(self, shard: int) -> None:
        """Before handing the shard over: take no new commands, let its turns settle."""
        self._adopted.discard(shard)
        for chat_id in self.engine.active_chats():
            if shard_of(chat_id) == shard:
                await self.engine.wait_settled(chat_id)

    def statistics(self) -> dict[str, object]:
        return {
            "node": self.me,
            "shards": len(self._adopted),
            "epochs": {str(s): e for s, e in sorted(self.keeper.held().items())},
            "adoptions": self.adoptions,
            "recovered_beats": self.recovered_beats,
            "leases": attrs.asdict(self.keeper.statistics()),
            "routing": self.router.statistics(),
            "published": attrs.asdict(self.publisher.stats),
            "relayed": self.follower.statistics(),
        }


@asynccontextmanager
async def open_node(
    settings: NodeSettings,
    engine_settings: EngineSettings,
    *,
    server_version: str,
    start: int | None = None,
) -> AsyncIterator[Node]:
    """Run a node until the block ends; the engine stops first, then the leases run out."""
    me = node_id(settings.host, settings.port, start or int(time.time() * 1000))
    node = Node(me)
    async with (
        open_store(settings.store, data_dir=engine_settings.data_dir, recover=False) as store,
        open_bus(settings.bus, me) as bus,
    ):
        node.keeper = LeaseKeeper(
            settings.store,
            me,
            LeaseSettings(ttl=settings.lease_ttl),
            on_acquired=node.acquired,
            on_lost=node.lost,
            drain=node.drain,
        )
        store.store.fence = node.keeper.fence
        store.store.accept_chat_id = node.writable
        node.publisher = Publisher(bus, node.epoch_of)
        node.follower = Follower(
            bus, store, lambda c: node.epoch_of(c) is not None, _feed_of(node), node.owner_of
        )
        async with trio.open_nursery() as nursery:
            node._nursery = nursery
            await nursery.start(node.follower.run)
            hooks = FeedHooks(
                tap=node.publisher.tap, opened=node.follower.opened, dropped=node.follower.dropped
            )
            async with open_engine(
                engine_settings,
                server_version=server_version,
                store=store,
                feed_hooks=hooks,
                resume=False,
            ) as engine:
                node.engine = engine
                node.router = ClusterRouter(me, bus, node.owner_of, node.writable)
                engine.more_statistics["cluster"] = node.statistics
                nursery.start_soon(node.publisher.run)
                nursery.start_soon(bus.serve, node.router.handler(engine))
                await nursery.start(node.keeper.run)
                log.info("node %s is up", me)
                yield node
            # The engine has stopped, its beats committed while the leases still held.
            nursery.cancel_scope.cancel()
        # Hand the shards over now rather than a lease later (bounded: the others take
        # them when their leases run out anyway).
        with trio.CancelScope(shield=True), trio.move_on_after(settings.lease_ttl / 2):
            await node.keeper.leave()


def _feed_of(node: Node) -> Callable[[str], ChatFeed | None]:
    def feed_of(chat_id: str) -> ChatFeed | None:
        feeds = node.engine.svc.feeds
        return feeds(chat_id) if chat_id in feeds else None

    return feed_of
