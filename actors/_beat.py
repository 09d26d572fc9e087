"""Streaming one beat: from assistant_turn_started to assistant_turn, whatever happens.

Cancel, a backend error, a stall, a shutdown or a bug all end the stream the
same way: what was received is committed with ``truncated`` and the reason,
in a shielded scope with its own deadline, so nothing the person saw is lost.
A reply that reaches its token cap ends ``truncated`` with ``length``.

A beat never speaks for anyone else: the text streams through a
``story.SpeakerGuard``, and the first line that opens with another
speaker's name (``Wren:``, ``- Wren:``, ``**Wren:**``...) ends the beat
there, before it is shown. Text is shown and committed alike: the beat
commits exactly what streamed.

The token loop never waits for the store: tokens go to the feed as they
come, and a task of the beat's own writes the crash-recovery checkpoint
(only the latest text, at most once per interval). A rewind of another chat
or a slow disk delays checkpoints, never tokens.

When the end cannot be written (the disk is full, or the cleanup deadline
passed first), the beat still ends for every watcher: a ``beat_complete``
with ``seq`` 0 and ``event_id`` 0 (not committed, see ``ChatFeed``), and the
store holds the end until a write fits; the committed ``beat_complete``
follows then.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar

import attrs
import outcome
import trio

from llm import ModelError, ModelLength, NarrativeRequest
from protocol import BeatStarted, Error
from protocol import events as ev
from store import (
    AppendResult,
    StorageFull,
    Store,
    StoreError,
    beat_complete,
    begin_beat,
    begin_continuation,
    continue_beat,
    end_beat,
)
from story import SpeakerGuard, join_continuation

from ._feed import ChatFeed
from ._journal import Journal
from ._services import Services

T = TypeVar("T")
P = ParamSpec("P")

log = logging.getLogger("troupe.actors.beat")


@attrs.define
class TurnState:
    """A turn in flight: what cancel needs to reach it."""

    user_turn_id: int
    cancel_reason: str | None = None
    scope: trio.CancelScope | None = None
    done: trio.Event = attrs.Factory(trio.Event)

    def cancel(self, reason: str) -> None:
        """Stop the beat in flight and any beat still to come in this turn."""
        if self.cancel_reason is None:
            self.cancel_reason = reason
        if self.scope is not None:
            self.scope.cancel()


@attrs.frozen
class BeatResult:
    """How a beat ended."""

    event_id: int
    beat_id: int
    speaker_id: str
    text: str
    truncated: bool
    error: str | None

    @property
    def completed(self) -> bool:
        """The beat ran to its natural end and said something."""
        return not self.truncated and bool(self.text.strip())


EMPTY = "empty"
"""``beat_complete.error`` of a beat whose model said nothing (or only whitespace)."""

STORAGE_FULL = "storage_full"
"""``beat_complete.error`` of a beat whose end did not fit on the disk."""

LENGTH = "length"
"""``beat_complete.error`` of a beat that reached its token cap (it ends at a whole sentence)."""


def describe(exc: ModelError) -> str:
    """A short reason for ``beat_complete.error``."""
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


@attrs.define
class _Received:
    """What the model sent so far, and how the stream ended."""

    parts: list[str] = attrs.Factory(list)
    truncated: bool = False
    error: str | None = None
    crash: Exception | None = None

    def text(self) -> str:
        return "".join(self.parts)


def others_of(request: NarrativeRequest) -> tuple[str, ...]:
    """Everyone the beat must not speak for: the names its stop tags (``"\\nName:"``) stop
    at, and every other speaker of its dialogue."""
    tagged = (
        tag[1:-1].strip() for tag in request.stop if tag.startswith("\n") and tag.endswith(":")
    )
    named = (m.name for m in request.messages if m.name)
    return tuple(n for n in dict.fromkeys([*tagged, *named]) if n and n != request.speaker)


class _Checkpoints:
    """Writes a streaming beat's latest text for crash recovery, off the token loop.

    The token loop only calls :meth:`note`. This task waits for new text, then
    for the interval since its last write, then writes everything received
    so far in one call. While that call waits for the store, tokens keep
    streaming; the next write takes all of them at once.
    """

    def __init__(self, svc: Services, chat_id: str, beat_id: int, received: _Received) -> None:
        self._svc = svc
        self._chat_id = chat_id
        self._beat_id = beat_id
        self._received = received
        self._fresh = trio.Event()

    def note(self) -> None:
        """New text arrived (never blocks)."""
        self._fresh.set()

    async def run(self) -> None:
        """Write checkpoints until cancelled (when the beat's stream ends)."""
        interval = self._svc.settings.checkpoint_interval
        last = trio.current_time()
        while True:
            await self._fresh.wait()
            await trio.sleep_until(last + interval)
            self._fresh = trio.Event()
            text = self._received.text()
            result = await _outcome_of(
                self._svc, Store.checkpoint_beat, self._beat_id, self._chat_id, text
            )
            if isinstance(result, outcome.Error):
                # A checkpoint only matters after a crash; the beat goes on without it.
                failure = result.error
                level = logging.WARNING if isinstance(failure, StoreError) else logging.ERROR
                log.log(
                    level,
                    "chat %s: beat %d: checkpoint failed: %r",
                    self._chat_id,
                    self._beat_id,
                    failure,
                )
            last = trio.current_time()


async def _outcome_of(
    svc: Services, fn: Callable[Concatenate[Store, P], T], *args: P.args, **kwargs: P.kwargs
) -> outcome.Outcome[T]:
    """Run a store call and wait for its outcome; a cancel stops the wait, never the call."""
    box: list[outcome.Outcome[T]] = []
    arrived = trio.Event()

    def then(result: outcome.Outcome[T]) -> None:
        box.append(result)
        arrived.set()

    svc.store.submit(lambda s: fn(s, *args, **kwargs), then)
    await arrived.wait()
    return box[0]


async def stream_beat(
    svc: Services,
    journal: Journal,
    feed: ChatFeed,
    turn: TurnState,
    started: ev.AssistantTurnStarted,
    request: NarrativeRequest,
    *,
    supersedes: int | None = None,
) -> BeatResult:
    """Stream one beat to the chat's feed and commit it; never loses received text.

    Raises :class:`store.StorageFull` when the beat's end did not fit on the
    disk (after ending it for the watchers: the turn should stop there), and
    ``trio.TooSlowError`` when the store did not take the end before the
    cleanup deadline (the end stays queued, and is published once written).
    """
    beat_id = (await journal.write(begin_beat, started)).ids[0]
    feed.start_beat(beat_id, started.speaker_id)

    received = _Received()
    checkpoints = _Checkpoints(svc, started.chat_id, beat_id, received)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(checkpoints.run)
            await _receive(svc, feed, turn, request, received, checkpoints)
            nursery.cancel_scope.cancel()
    finally:
        turn.scope = None
        text = received.text()
        if not text and not received.truncated:
            received.truncated, received.error = True, EMPTY
        end = ev.AssistantTurn(
            started.chat_id,
            started.speaker_id,
            started.user_turn_id,
            beat_id,
            text,
            truncated=received.truncated,
            error=received.error,
            interjection_of=started.interjection_of,
            supersedes=supersedes,
        )
        committed = await _commit_end(journal, feed, end, svc.settings.shutdown_timeout)
    if received.crash is not None:
        raise received.crash
    return BeatResult(
        committed.ids[0], beat_id, started.speaker_id, text, received.truncated, received.error
    )


async def stream_continuation(
    svc: Services,
    journal: Journal,
    feed: ChatFeed,
    turn: TurnState,
    started: BeatStarted,
    event_id: int,
    text: str,
    request: NarrativeRequest,
) -> BeatResult:
    """Stream more of the committed beat ``event_id`` (which says ``text``) and append it.

    The watchers get ``started`` (a ``beat_started`` with ``continues``), then
    tokens with the beat's own ``beat_id`` and offsets that follow ``text``, then
    a ``beat_complete`` with the whole text. Whatever ends the stream, what
    arrived is appended as one ``beat_continued``; the result's ``text`` is only
    what the continuation added. It keeps no crash checkpoint: a crash mid-way
    loses the continuation, never the beat.
    """
    chat_id = started.chat_id
    await journal.write(begin_continuation, started)
    feed.start_beat(started.beat_id, started.speaker_id, text)
    received = _Received()
    # Never run: a continuation has no open beat to checkpoint (see the docstring).
    idle = _Checkpoints(svc, chat_id, started.beat_id, received)
    try:
        await _receive(svc, feed, turn, request, received, idle, after=text)
    finally:
        turn.scope = None
        more = received.text()
        if not more and not received.truncated:
            received.truncated, received.error = True, EMPTY
        end = ev.BeatContinued(chat_id, event_id, more, received.truncated, received.error)
        try:
            with trio.CancelScope(shield=True) as shield:
                shield.deadline = trio.current_time() + svc.settings.shutdown_timeout
                committed = await journal.write(continue_beat, end, started.beat_id)
        finally:
            feed.end_beat()
    if received.crash is not None:
        raise received.crash
    return BeatResult(
        committed.ids[0],
        started.beat_id,
        started.speaker_id,
        more,
        received.truncated,
        received.error,
    )


async def _receive(
    svc: Services,
    feed: ChatFeed,
    turn: TurnState,
    request: NarrativeRequest,
    received: _Received,
    checkpoints: _Checkpoints,
    *,
    after: str = "",
) -> None:
    """Stream the model's reply into ``received`` and the feed; raises only ``Cancelled``.

    ``after`` is the text the beat already says (``continue``): the guard reads
    the reply as its continuation, so a line of someone else's is still cut.

    The text passes through a :class:`story.SpeakerGuard`: at the first line
    that speaks for someone else the stream is left (which closes the
    request, so the model stops) and the beat ends there, naturally. What
    the guard holds back (a line's first characters) is shown when the
    stream ends, however it ends, so what streamed is what is committed.
    """
    chat_id = feed.chat_id
    guard = SpeakerGuard(others_of(request), request.speaker)
    guard.go_on_from(after)

    def show(text: str) -> None:
        if text:
            received.parts.append(text)
            feed.token(text)
            checkpoints.note()

    try:
        with trio.CancelScope() as scope:
            turn.scope = scope
            if turn.cancel_reason is not None:
                scope.cancel()
            async with svc.narrative.stream(request) as chunks:
                began = False
                lead = ""
                try:
                    async for chunk in chunks:
                        if not began:
                            # Some servers open a reply with a space or a newline: never
                            # shown, never kept, so what streamed and what is committed
                            # stay equal. A continuation keeps one, to join its beat.
                            lead += chunk
                            if not lead.strip():
                                continue
                            chunk = join_continuation(after, lead)
                            began = True
                        show(guard.feed(chunk))
                        if guard.cut:
                            break  # leaving the stream stops the model
                finally:
                    show(guard.flush())
        if scope.cancelled_caught:
            received.truncated, received.error = True, turn.cancel_reason or "cancelled"
    except ModelLength:
        # Not a failure: the reply was long, and the backend ended it at a whole sentence.
        received.truncated, received.error = True, LENGTH
    except ModelError as exc:
        received.truncated, received.error = True, describe(exc)
        feed.error(Error("llm_error", f"the model failed: {received.error}", chat_id))
    except trio.Cancelled:
        # The actor itself is being stopped: the system is shutting down.
        received.truncated, received.error = True, turn.cancel_reason or "shutdown"
        raise
    except Exception as exc:
        log.exception("chat %s: beat crashed", chat_id)
        received.truncated, received.error, received.crash = True, "internal", exc


async def _commit_end(
    journal: Journal, feed: ChatFeed, end: ev.AssistantTurn, timeout: float
) -> AppendResult:
    """Append the beat's ``assistant_turn`` and end the beat for every watcher, whatever happens.

    The append is queued, not awaited: past the cleanup deadline (``timeout``
    seconds) the beat ends for the watchers without it (``trio.TooSlowError``),
    and the end is published once the store gets to it.
    """
    box: list[outcome.Outcome[AppendResult]] = []
    arrived = trio.Event()
    ended = False

    def finished(result: outcome.Outcome[AppendResult]) -> None:
        # The journal publishes a committed end right after this, on the chat's feed of now.
        if ended:
            _late(journal, end, result)
            return
        if isinstance(result, outcome.Value):
            feed.end_beat()
        box.append(result)
        arrived.set()

    try:
        journal.submit(end_beat, finished, end)
        with trio.CancelScope(shield=True) as shield:
            shield.deadline = trio.current_time() + timeout
            await arrived.wait()
        if not box:
            raise trio.TooSlowError(
                f"the store did not take beat {end.started_id}'s end in time; it is written "
                "when the store gets to it"
            )
        try:
            return box[0].unwrap()
        except StorageFull:
            end = attrs.evolve(end, truncated=True, error=STORAGE_FULL)
            _hold(journal, end)
            raise
    finally:
        ended = True
        if not box or isinstance(box[0], outcome.Error):
            feed.end_beat()
            journal.publish([beat_complete(end, 0)])  # event_id 0 and seq 0: not committed (yet)


def _late(journal: Journal, end: ev.AssistantTurn, result: outcome.Outcome[AppendResult]) -> None:
    """The end of a beat that already ended for its watchers reached the store after all.

    Written, it is published by the journal; refused for lack of space, it is held.
    """
    if not isinstance(result, outcome.Error):
        return
    if isinstance(result.error, StorageFull):
        _hold(journal, attrs.evolve(end, truncated=True, error=STORAGE_FULL))
    else:
        log.error(
            "chat %s: beat %d's end failed", end.chat_id, end.started_id, exc_info=result.error
        )


def _hold(journal: Journal, end: ev.AssistantTurn) -> None:
    """Leave the end to the store, to write with the first write that fits; then publish it."""

    def landed(result: AppendResult) -> None:
        log.info("chat %s: beat %d's end written after all", end.chat_id, end.started_id)
        journal.publish(result.messages)

    try:
        journal.store.hold_beat_end(end, None, landed)
    except trio.ClosedResourceError:
        # The store is closing: the next open recovers the beat from its checkpoint.
        log.warning("chat %s: beat %d left open for recovery", end.chat_id, end.started_id)
