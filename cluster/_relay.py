"""A chat's feed across nodes: the owner publishes it on the bus, the others follow it.

The owner of a chat taps its feed (``actors.FeedHooks.tap``): every committed
message, token, error and resync it publishes is queued here and sent on the
chat's channel, each stamped with the owner's epoch for the chat's shard.
Tokens that queue up while a publish is on its way are merged into one (the
coalescing of the issue: under load a frame carries several tokens, idle it
carries one, and nothing waits on a timer).

A node that does not own a chat and has watchers of it makes the chat's
feed as any node does, from the log's latest ``seq``, and feeds it from one
subscription to the chat's channel (``ChatFeed.relay``): the watchers there
get what the owner's watchers get, through the same feed and topic. A frame
from an epoch older than one already seen is a stale owner's and is dropped
(and counted). A gap on the bus (Redis restarted, or this node lagged) and a
change of owner restart the feed from the log's latest ``seq``: every watcher
gets a fresh ``chat_state`` read from the database, which has every committed
message whether or not the bus carried it.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import attrs
import trio

import protocol as p
from actors import ChatFeed, Resync, merge_tokens
from store import AsyncStore, Store, StoreError

from ._bus import Bus, BusError, Gap

log = logging.getLogger("troupe.cluster.relay")

MAX_BATCH = 256
"""Items one publishing round takes at most, so one busy chat cannot hold the others back."""
CATCH_UP_WITHIN = 2.0
"""Seconds the owner has to say a beat's text so far."""
RESTART_RETRY = 0.5
"""Seconds between two reads of a chat's latest seq while the database cannot be reached."""


def encode(epoch: int, item: object) -> bytes:
    """One bus frame: the owner's epoch and what the feed published."""
    if isinstance(item, Resync):
        return json.dumps({"epoch": epoch, "resync": True}).encode()
    message = p.to_wire(item)  # type: ignore[arg-type]
    return json.dumps({"epoch": epoch, "message": message}, ensure_ascii=False).encode()


def decode(frame: bytes) -> tuple[int, object]:
    """``(epoch, item)`` of a bus frame; raises ValueError for one that is not ours."""
    data = json.loads(frame)
    epoch = data["epoch"]
    if not isinstance(epoch, int):
        raise ValueError("a bus frame's epoch is not a number")
    if data.get("resync"):
        return epoch, Resync()
    return epoch, p.decode_server(json.dumps(data["message"])).message


@attrs.define
class RelayStatistics:
    published: int = 0
    merged: int = 0
    relayed: int = 0
    stale: int = 0
    """Frames dropped for coming from an older epoch than one already seen."""
    restarts: int = 0
    undecodable: int = 0
    caught_up: int = 0
    """Beats joined mid-way with their text so far, asked of the owner."""


class Publisher:
    """The owner's side: taps the feeds of the chats this node owns."""

    def __init__(self, bus: Bus, epoch_of: Callable[[str], int | None]) -> None:
        self._bus = bus
        self._epoch_of = epoch_of
        self._pending: dict[str, list[object]] = {}
        self._wake = trio.Event()
        self.stats = RelayStatistics()

    def tap(self, chat_id: str, item: object) -> None:
        """A feed published ``item``: queue it for the bus (never blocks, never raises)."""
        if self._epoch_of(chat_id) is None:
            return  # a feed this node relays from the owner, not its own
        queued = self._pending.setdefault(chat_id, [])
        if queued:
            merged = merge_tokens(queued[-1], item)
            if merged is not None:
                queued[-1] = merged
                self.stats.merged += 1
                return
        queued.append(item)
        self._wake.set()

    async def run(self) -> None:
        """Publish what is queued, chat by chat, in order within each chat."""
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            while self._pending:
                chat_id = next(iter(self._pending))
                items = self._pending.pop(chat_id)
                if len(items) > MAX_BATCH:
                    self._pending[chat_id] = items[MAX_BATCH:]
                    items = items[:MAX_BATCH]
                epoch = self._epoch_of(chat_id)
                if epoch is None:
                    continue  # the chat moved away meanwhile: its new owner speaks for it
                for item in items:
                    await self._bus.publish(chat_id, encode(epoch, item))
                    self.stats.published += 1


class Follower:
    """The other nodes' side: one relay per chat this node watches but does not own."""

    def __init__(
        self,
        bus: Bus,
        store: AsyncStore,
        owns: Callable[[str], bool],
        feed_of: Callable[[str], ChatFeed | None],
        owner_of: Callable[[str], str | None] = lambda chat_id: None,
    ) -> None:
        self._bus = bus
        self._owner_of = owner_of
        self._catching_up: set[str] = set()
        self._store = store
        self._owns = owns
        self._feed_of = feed_of
        self._relays: dict[str, trio.CancelScope] = {}
        self._epochs: dict[str, int] = {}
        self._nursery: trio.Nursery | None = None
        self.stats = RelayStatistics()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Hold the relays' tasks until cancelled."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    def opened(self, chat_id: str, feed: ChatFeed) -> None:
        """A feed was made here: follow its owner unless this node is the owner."""
        if not self._owns(chat_id):
            self.follow(chat_id)

    def dropped(self, chat_id: str) -> None:
        """Nobody here watches the chat any more."""
        self.stop(chat_id)

    def follow(self, chat_id: str) -> None:
        if chat_id in self._relays or self._nursery is None:
            return
        scope = trio.CancelScope()
        self._relays[chat_id] = scope
        self._nursery.start_soon(self._relay, chat_id, scope)

    def stop(self, chat_id: str) -> None:
        scope = self._relays.pop(chat_id, None)
        if scope is not None:
            scope.cancel()

    def following(self) -> list[str]:
        return list(self._relays)

    async def restart(self, chat_id: str, *, unless_current: bool = False) -> None:
        """Start the chat's feed here again from the log's latest seq.

        While the database cannot be reached (it is restarting), read again
        until it can: the watchers wait, and the node goes on serving.
        """
        while True:
            try:
                seq = await self._store.run(Store.last_seq, chat_id)
                break
            except StoreError as exc:
                log.warning("chat %s: cannot read its latest seq yet: %s", chat_id, exc)
                await trio.sleep(RESTART_RETRY)
        feed = self._feed_of(chat_id)
        if feed is None:
            return
        if unless_current and feed.published_seq == seq and feed.beat is None:
            return  # its watchers' states are as new as the log: no second chat_state
        feed.restart(seq)
        self.stats.restarts += 1

    async def _relay(self, chat_id: str, scope: trio.CancelScope) -> None:
        with scope:
            try:
                async with self._bus.subscribe(chat_id) as frames:
                    # Subscribed: anything committed before now is in the log. Start from it,
                    # unless the feed already does (it was just made from the log's seq).
                    await self.restart(chat_id, unless_current=True)
                    async for frame in frames:
                        if isinstance(frame, Gap) or isinstance(
                            self._take(chat_id, frame), Resync
                        ):
                            await self.restart(chat_id)
            finally:
                if self._relays.get(chat_id) is scope:
                    del self._relays[chat_id]

    def _take(self, chat_id: str, frame: bytes) -> object:
        """Relay one frame to the chat's feed; a resync is left to the caller. The item."""
        try:
            epoch, item = decode(frame)
        except (ValueError, KeyError, TypeError, p.ServerFrameError):
            self.stats.undecodable += 1
            log.warning("chat %s: a bus frame that is not ours was dropped", chat_id)
            return None
        known = self._epochs.get(chat_id, 0)
        if epoch < known:
            self.stats.stale += 1
            return None
        self._epochs[chat_id] = epoch
        feed = self._feed_of(chat_id)
        if feed is not None and not isinstance(item, Resync):
            self.stats.relayed += 1
            if not feed.relay(item) and chat_id not in self._catching_up:
                # A beat whose start this node missed: ask its owner for it so far.
                self._catching_up.add(chat_id)
                assert self._nursery is not None
                self._nursery.start_soon(self._catch_up, chat_id)
        return item

    async def _catch_up(self, chat_id: str) -> None:
        try:
            owner = self._owner_of(chat_id)
            if owner is None:
                return
            request = json.dumps({"in_flight": chat_id}).encode()
            try:
                reply = json.loads(await self._bus.request(owner, request, CATCH_UP_WITHIN))
            except (BusError, ValueError) as exc:
                log.info("chat %s: the beat so far could not be had: %s", chat_id, exc)
                return
            found = reply.get("in_flight")
            feed = self._feed_of(chat_id)
            if feed is not None:
                feed.catch_up(None if found is None else p.InFlight(**found))
                self.stats.caught_up += 1
        finally:
            self._catching_up.discard(chat_id)

    def statistics(self) -> dict[str, Any]:
        return {**attrs.asdict(self.stats), "following": len(self._relays)}
