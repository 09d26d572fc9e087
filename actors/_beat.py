"""Streaming one beat: from assistant_turn_started to assistant_turn, whatever happens.

Cancel, a backend error, a stall, a shutdown or a bug all end the stream the
same way: what was received is committed with ``truncated`` and the reason,
in a shielded scope with its own deadline, so nothing the person saw is lost.
"""

from __future__ import annotations

import logging

import attrs
import trio

from llm import ModelError, NarrativeRequest
from protocol import BeatComplete, BeatStarted, Error
from protocol import events as ev
from store import Store

from ._feed import ChatFeed
from ._services import Services

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


def describe(exc: ModelError) -> str:
    """A short reason for ``beat_complete.error``."""
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


async def stream_beat(
    svc: Services,
    feed: ChatFeed,
    turn: TurnState,
    *,
    chat_id: str,
    speaker_id: str,
    user_turn_id: int,
    request: NarrativeRequest,
    interjection_of: str | None = None,
    supersedes: int | None = None,
) -> BeatResult:
    """Stream one beat to the chat's feed and commit it; never loses received text."""
    started = await svc.store.run(
        lambda s: s.append(
            ev.AssistantTurnStarted(chat_id, speaker_id, user_turn_id, interjection_of),
            render=lambda ids: [
                BeatStarted(chat_id, ids[0], user_turn_id, speaker_id, interjection_of is not None)
            ],
        )
    )
    beat_id = started.ids[0]
    feed.deliver(started.messages)
    feed.start_beat(beat_id, speaker_id)

    parts: list[str] = []
    truncated = False
    error: str | None = None
    crash: BaseException | None = None
    interval = svc.settings.checkpoint_interval
    try:
        with trio.CancelScope() as scope:
            turn.scope = scope
            if turn.cancel_reason is not None:
                scope.cancel()
            last_checkpoint = trio.current_time()
            async with svc.narrative.stream(request) as chunks:
                async for chunk in chunks:
                    parts.append(chunk)
                    feed.token(chunk)
                    now = trio.current_time()
                    if now - last_checkpoint >= interval:
                        last_checkpoint = now
                        text_so_far = "".join(parts)
                        await svc.store.run(Store.checkpoint_beat, beat_id, chat_id, text_so_far)
        if scope.cancelled_caught:
            truncated, error = True, turn.cancel_reason or "cancelled"
    except ModelError as exc:
        truncated, error = True, describe(exc)
        feed.error(Error("llm_error", f"the model failed: {error}", chat_id))
    except trio.Cancelled:
        # The actor itself is being stopped: the system is shutting down.
        truncated, error = True, turn.cancel_reason or "shutdown"
        raise
    except Exception as exc:
        log.exception("chat %s: beat %d crashed", chat_id, beat_id)
        truncated, error, crash = True, "internal", exc
    finally:
        turn.scope = None
        text = "".join(parts)
        with trio.CancelScope(shield=True) as shield:
            shield.deadline = trio.current_time() + svc.settings.shutdown_timeout
            ended = await svc.store.run(
                lambda s: s.append(
                    ev.AssistantTurn(
                        chat_id,
                        speaker_id,
                        user_turn_id,
                        beat_id,
                        text,
                        truncated=truncated,
                        error=error,
                        interjection_of=interjection_of,
                        supersedes=supersedes,
                    ),
                    render=lambda ids: [
                        BeatComplete(
                            chat_id,
                            beat_id,
                            ids[0],
                            speaker_id,
                            text,
                            truncated,
                            interjection_of,
                            error,
                        )
                    ],
                )
            )
            feed.end_beat()
            feed.deliver(ended.messages)
    if crash is not None:
        raise crash
    return BeatResult(ended.ids[0], beat_id, speaker_id, text, truncated, error)
