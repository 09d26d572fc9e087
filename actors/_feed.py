"""A chat's outgoing messages: ordered publication, the beat in flight, and watching.

Every chat message with a ``seq`` is committed by the store together with the
event it reports; the chat's journal hands them to the feed in ``seq`` order
as the store commits them (see ``actors/_journal.py``), and the feed
publishes them, and tokens as they stream. A watcher
gets a consistent ``chat_state`` first and then only what came after it.

A message with ``seq`` 0 was not committed: it tells of something the store
could not write (a beat's end on a full disk). It is published at once,
takes no number and is not in the journal, so a client that resumes never
gets it again; seqs start at 1, so 0 is never a real one.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager

import attrs

from protocol import BeatComplete, BeatStarted, ChatMessage, ChatState, Error, InFlight, Token
from runtime import Lagged, Subscription, Topic
from store import WireFrame

log = logging.getLogger("troupe.actors.feed")

Snapshot = Callable[[], Awaitable[ChatState]]

MAX_MISSED = 512
"""Tokens a relayed feed keeps aside while it asks the owner for the beat so far."""

Tap = Callable[[str, object], None]
"""Told ``(chat_id, item)`` of everything a feed publishes, as it publishes it.

The cluster's owner of a chat passes it on to the other nodes (docs/scale-out.md);
it must not block or raise.
"""


class Resync:
    """Published when every watcher must start again from a fresh ``chat_state``."""


def merge_tokens(prev: object, new: object) -> object | None:
    """Coalesce two consecutive tokens of one beat for a subscriber that lags."""
    if (
        isinstance(prev, Token)
        and isinstance(new, Token)
        and prev.beat_id == new.beat_id
        and prev.offset + len(prev.text) == new.offset
    ):
        return attrs.evolve(prev, text=prev.text + new.text)
    return None


@attrs.define
class Beat:
    """The beat being streamed: what a late watcher needs to join it."""

    beat_id: int
    speaker_id: str
    parts: list[str] = attrs.Factory(list)
    length: int = 0

    def text(self) -> str:
        """The text streamed so far."""
        return "".join(self.parts)


class ChatFeed:
    """Publication side of one chat, shared by its actor and the background workers."""

    def __init__(
        self, chat_id: str, last_seq: int, *, max_buffer: int = 512, tap: Tap | None = None
    ) -> None:
        self.chat_id = chat_id
        self.topic: Topic = Topic(merge=merge_tokens, max_buffer=max_buffer)
        self.published_seq = last_seq
        self.beat: Beat | None = None
        self.version = 0
        self._tap = tap
        self._missed: list[Token] = []
        """Tokens relayed from another node that did not carry on from the beat known here."""

    def _publish(self, item: object) -> None:
        self.topic.publish(item)
        if self._tap is not None:
            self._tap(self.chat_id, item)

    # --- publishing ---

    def deliver(self, messages: Sequence[ChatMessage]) -> None:
        """Publish chat messages in the order given: the journal hands them over in seq order.

        A numbered message at or below the feed's seq is already reflected
        (the feed was made after it committed) and is skipped; one that skips
        a seq would be a write nobody published, a bug: every watcher starts
        again from a fresh ``chat_state`` rather than miss it.
        """
        for message in messages:
            seq: int = getattr(message, "seq", 0)  # a token has none
            if seq:
                if seq <= self.published_seq:
                    continue
                if seq != self.published_seq + 1:
                    log.error(
                        "chat %s: seq %d published after %d", self.chat_id, seq, self.published_seq
                    )
                    self.resync()
                self.published_seq = seq
                self.version += 1
            self._publish(message)

    def start_beat(self, beat_id: int, speaker_id: str, text: str = "") -> None:
        """A beat started streaming; ``text``: it goes on from this (``continue``), and its
        tokens' offsets follow it."""
        self.beat = Beat(beat_id, speaker_id, [text] if text else [], len(text))
        self.version += 1

    def token(self, text: str) -> None:
        """Stream a piece of the beat in flight."""
        beat = self.beat
        if beat is None or not text:
            return
        offset = beat.length
        beat.parts.append(text)
        beat.length += len(text)
        self._publish(Token(self.chat_id, beat.beat_id, beat.speaker_id, offset, text))

    def end_beat(self) -> None:
        """The beat in flight ended (its beat_complete is delivered separately)."""
        self.beat = None
        self.version += 1

    def in_flight(self) -> InFlight | None:
        """The beat in flight as the protocol shows it."""
        beat = self.beat
        if beat is None:
            return None
        return InFlight(beat.beat_id, beat.speaker_id, beat.text())

    def error(self, error: Error) -> None:
        """Tell every watcher about a failure that concerns the chat, not a command."""
        self._publish(error)

    def resync(self) -> None:
        """Make every watcher start again from a fresh chat_state (after a rewind)."""
        self.version += 1
        self._publish(Resync())

    # --- relaying another node's feed ---

    def relay(self, item: object) -> bool:
        """Publish what the chat's owner on another node published (docs/scale-out.md).

        Committed messages go through :meth:`deliver`, so a skipped ``seq``
        makes every watcher start again from a fresh ``chat_state``; a beat is
        followed from its ``beat_started``. A token that does not carry on
        from the text so far (the feed was made after the beat started, or
        the beat goes on an earlier one's text) is kept aside and False is
        returned: the caller asks the owner for the beat so far and hands it
        to :meth:`catch_up`. True otherwise.
        """
        if isinstance(item, Token):
            return self._relay_token(item)
        if isinstance(item, Resync):
            self.resync()
        elif isinstance(item, Error):
            self.error(item)
        elif isinstance(item, BeatStarted):
            self.deliver([item])
            self.start_beat(item.beat_id, item.speaker_id)
            self._missed.clear()
        elif isinstance(item, BeatComplete):
            self.deliver([item])
            if self.beat is not None and self.beat.beat_id == item.beat_id:
                self.end_beat()
            self._missed.clear()
        else:
            self.deliver([item])  # type: ignore[list-item]
        return True

    def _relay_token(self, token: Token) -> bool:
        beat = self.beat
        if beat is None or beat.beat_id != token.beat_id or token.offset > beat.length:
            if self._missed and self._missed[-1].beat_id != token.beat_id:
                self._missed.clear()
            if len(self._missed) < MAX_MISSED:
                self._missed.append(token)
            return False
        end = token.offset + len(token.text)
        if end > beat.length:  # a token already had in part is trimmed, one had whole skipped
            self.token(token.text[beat.length - token.offset :])
        return True

    def catch_up(self, in_flight: InFlight | None) -> None:
        """Follow the owner's beat from its text so far; every watcher starts again from it.

        The tokens kept aside meanwhile extend it where they carry on from it.
        """
        missed, self._missed = self._missed, []
        if in_flight is None:
            return  # the beat is over: its beat_complete tells it whole
        beat = self.beat
        if beat is not None and (beat.beat_id, beat.length) >= (
            in_flight.beat_id,
            len(in_flight.text),
        ):
            return  # followed already, as far as the owner's answer goes
        beat = Beat(in_flight.beat_id, in_flight.speaker_id, [in_flight.text], len(in_flight.text))
        for token in missed:
            end = token.offset + len(token.text)
            if token.beat_id == beat.beat_id and token.offset <= beat.length < end:
                beat.parts.append(token.text[beat.length - token.offset :])
                beat.length = end
        self.beat = beat
        self.resync()

    def restart(self, last_seq: int) -> None:
        """Go on from ``last_seq`` with no beat known, every watcher from a fresh state.

        For a chat whose owner changed: what the feed knew may be another node's.
        """
        self.published_seq = last_seq
        self.beat = None
        self.resync()

    # --- watching ---

    @asynccontextmanager
    async def watch(
        self,
        snapshot: Snapshot,
        replay: Callable[[int], Awaitable[list[WireFrame] | None]] | None = None,
        after_seq: int | None = None,
    ) -> AsyncIterator[AsyncIterator[ChatMessage | WireFrame]]:
        """Subscribe; yield a chat_state (or the missed messages), then live messages."""
        async with self.topic.subscribe() as subscription:
            yield self._follow(subscription, snapshot, replay, after_seq)

    async def consistent_state(self, snapshot: Snapshot) -> ChatState:
        """A chat_state whose ``seq`` and ``in_flight`` agree with what was published."""
        for _ in range(20):
            version = self.version
            state = await snapshot()
            if version == self.version:
                return attrs.evolve(state, seq=self.published_seq, in_flight=self.in_flight())
        # Under a constant stream of commits, settle for the latest published figures:
        # the watcher filters by seq, so at worst a message it already reflects is skipped.
        state = await snapshot()
        return attrs.evolve(state, seq=self.published_seq, in_flight=self.in_flight())

    async def _follow(
        self,
        subscription: Subscription,
        snapshot: Snapshot,
        replay: Callable[[int], Awaitable[list[WireFrame] | None]] | None,
        after_seq: int | None,
    ) -> AsyncIterator[ChatMessage | WireFrame]:
        seen = -1
        beat_id, beat_seen = -1, 0
        replayed: list[WireFrame] | None = None
        if after_seq is not None and replay is not None and self.beat is None:
            if after_seq == self.published_seq:
                replayed = []
            elif after_seq < self.published_seq:
                replayed = await replay(after_seq)
        if replayed is not None:
            for item in replayed:
                seen = max(seen, int(item.get("seq", 0)))
                yield item
            seen = max(seen, after_seq or 0)
        else:
            state = await self.consistent_state(snapshot)
            seen = state.seq
            if state.in_flight is not None:
                beat_id, beat_seen = state.in_flight.beat_id, len(state.in_flight.text)
            yield state
        async for item in subscription:
            if isinstance(item, Lagged | Resync):
                state = await self.consistent_state(snapshot)
                seen = state.seq
                beat_id, beat_seen = -1, 0
                if state.in_flight is not None:
                    beat_id, beat_seen = state.in_flight.beat_id, len(state.in_flight.text)
                yield state
                continue
            if isinstance(item, Token):
                token: Token = item
                if token.beat_id == beat_id:
                    end = token.offset + len(token.text)
                    if end <= beat_seen:
                        continue
                    if token.offset < beat_seen:
                        token = attrs.evolve(
                            token, offset=beat_seen, text=token.text[beat_seen - token.offset :]
                        )
                    beat_seen = end
                yield token
                continue
            seq = getattr(item, "seq", None)
            if seq:  # None (an error) or 0 (not committed) is outside the numbering
                if seq <= seen:
                    continue
                seen = seq
            yield item
