"""One connection's outgoing frames: a bounded queue where a beat's tokens merge.

Every frame a connection sends passes through its outbox, so a client that
reads slowly holds up nobody but itself: the direct answers and the chats'
watches of that connection wait for room, and the engine, which never waits
for a watcher, coalesces (and past its own bound resyncs) what that watch has
not taken yet. Queued frames go out through one sender task; a frame that
finds the outbox idle (nothing queued, nothing on its way) may instead be
sent at once by whoever made it, whom :meth:`Outbox.claim` makes the sender
of that one frame: the frames reach the wire in the order they came either
way, and a streaming token costs no trip to the sender task.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import trio

from ._statistics import OutboxStatistics

Frame = dict[str, Any]


def merge_token(queued: Frame, new: Frame) -> Frame | None:
    """The two tokens as one, when ``new`` continues ``queued`` in the same beat."""
    if (
        queued.get("type") == "token"
        and new.get("type") == "token"
        and queued.get("chat_id") == new.get("chat_id")
        and queued.get("beat_id") == new.get("beat_id")
        and queued["offset"] + len(queued["text"]) == new["offset"]
    ):
        return {**queued, "text": queued["text"] + new["text"]}
    return None


class Outbox:
    """A FIFO of frames with room for ``capacity``; a token joins a queued one when it can.

    ``put`` waits while the queue is full; ``get`` waits while it is empty.
    After :meth:`close`, what was queued and every later put are dropped (the
    peer is gone, nobody will read them) and ``get`` raises
    :class:`trio.EndOfChannel`.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("an outbox needs room for at least one frame")
        self.capacity = capacity
        self._frames: deque[Frame] = deque()
        self._readable = trio.lowlevel.ParkingLot()
        self._writable = trio.lowlevel.ParkingLot()
        self._idle = trio.lowlevel.ParkingLot()
        self._sending = 0  # frames taken by get() or claim() and not yet sent()
        self._closed = False
        self.queued = 0
        self.merged = 0
        self.direct = 0
        self.high_water = 0

    def __len__(self) -> int:
        return len(self._frames)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    @property
    def moved(self) -> int:
        """Frames taken in so far: queued, merged into a queued one, or sent at once."""
        return self.queued + self.merged + self.direct

    def statistics(self) -> OutboxStatistics:
        """``depth`` now, ``capacity``, frames ``queued`` and ``merged`` so far, ``high_water``."""
        return OutboxStatistics(
            depth=len(self._frames),
            capacity=self.capacity,
            queued=self.queued,
            merged=self.merged,
            high_water=self.high_water,
        )

    async def put(self, frame: Frame) -> None:
        """Queue a frame, merging a token into the chat's last queued one if it continues it."""
        await trio.lowlevel.checkpoint_if_cancelled()
        if self._merge(frame):
            await trio.lowlevel.cancel_shielded_checkpoint()
            return
        while len(self._frames) >= self.capacity and not self._closed:
            await self._writable.park()
            # The queue moved while we waited: the token may merge now.
            if self._merge(frame):
                await trio.lowlevel.cancel_shielded_checkpoint()
                return
        if self._closed:
            return
        self._push(frame)
        await trio.lowlevel.cancel_shielded_checkpoint()

    def try_put(self, frame: Frame) -> bool:
        """Queue a frame (or merge it) if there is room now, without waiting; False if full.

        For a watch, whose every step already waits on the chat's feed: a
        frame that fits goes in with no further trip through the scheduler.
        """
        if self._closed or self._merge(frame):
            return True
        if len(self._frames) >= self.capacity:
            return False
        self._push(frame)
        return True

    def put_nowait(self, frame: Frame) -> None:
        """Queue a frame at once, past ``capacity`` if need be.

        For a direct answer whose place among the chat's messages is fixed at
        this very step: waiting for room would let the chat move first.
        """
        if self._closed:
            return
        self._push(frame)

    def claim(self) -> bool:
        """Become the sender of one frame now, if the outbox is idle; then call :meth:`sent`.

        Idle is nothing queued and nothing on its way, so the frame the
        caller sends at once goes out after everything that came before it;
        until :meth:`sent`, later frames queue as usual (and the sender task
        sends them after it, in turn).
        """
        if self._frames or self._sending or self._closed:
            return False
        self._sending += 1
        self.direct += 1
        return True

    # The hot path runs once per frame and watcher: a lot nobody waits in is
    # not touched, and an empty queue is not searched.

    def _push(self, frame: Frame) -> None:
        frames = self._frames
        frames.append(frame)
        self.queued += 1
        if len(frames) > self.high_water:
            self.high_water = len(frames)
        if self._readable:
            self._readable.unpark()

    def _merge(self, frame: Frame) -> bool:
        if not self._frames or frame.get("type") != "token" or self._closed:
            return False
        chat_id = frame.get("chat_id")
        # Only the chat's latest queued frame may absorb it: whatever of that chat
        # was queued after a token must still arrive after all of that token's text.
        for index in range(len(self._frames) - 1, -1, -1):
            queued = self._frames[index]
            if queued.get("chat_id") != chat_id:
                continue
            merged = merge_token(queued, frame)
            if merged is None:
                return False
            self._frames[index] = merged
            self.merged += 1
            return True
        return False

    async def get(self) -> Frame:
        """The oldest frame; call :meth:`sent` once it is on the wire."""
        while not self._frames:
            if self._closed:
                raise trio.EndOfChannel
            await self._readable.park()
        frame = self._frames.popleft()
        self._sending += 1
        if self._writable:
            self._writable.unpark()
        return frame

    def sent(self) -> None:
        """A frame from :meth:`get` or :meth:`claim` has gone out (or never will)."""
        if self._sending:
            self._sending -= 1
        if not self._frames and not self._sending and self._idle:
            self._idle.unpark_all()

    async def drained(self) -> None:
        """Wait until every queued frame has gone out (or the outbox closed)."""
        while (self._frames or self._sending) and not self._closed:
            await self._idle.park()
        await trio.lowlevel.checkpoint()

    def close(self) -> None:
        """Drop what is queued and refuse the rest: the peer stopped reading for good."""
        self._closed = True
        self._frames.clear()
        self._sending = 0
        self._readable.unpark_all()
        self._writable.unpark_all()
        self._idle.unpark_all()
