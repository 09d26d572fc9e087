"""The turn, step by step: addressee, beats, and the passes after them.

A turn runs as long work of its chat actor. Each step appends events through
the store (event + projection + outgoing message in one transaction) and the
feed publishes what was committed. See docs/architecture.md for the order.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import trio

from protocol import Bot, Edge, Error, Turn, TurnSettled
from protocol import events as ev
from store import (
    StorageFull,
    Store,
    apply_edges,
    open_scene_if_none,
    settle_turn,
    write_memories,
)

from . import _classifiers as cls
from ._beat import BeatResult, TurnState, stream_beat
from ._cast import Cast, TurnInput
from ._feed import ChatFeed
from ._journal import Journal
from ._messages import ScoreMemories
from ._prompting import narrative_request
from ._services import Services
from ._world import close_scene_if_asked, run_world_events

log = logging.getLogger("troupe.actors.turn")


async def run_turn(
    svc: Services,
    journal: Journal,
    feed: ChatFeed,
    turn: TurnState,
    cast: Cast,
    said: TurnInput,
    *,
    regenerate: int | None = None,
    regenerate_speaker: str | None = None,
    score: bool = True,
) -> None:
    """Steps 3 to 11 of a turn; always ends with ``turn_settled``."""
    chat_id = cast.chat.id
    try:
        await journal.write(open_scene_if_none, chat_id, cast.chat.location)
        # 3. The addressee: rules first; the classifier only when they can't decide.
        if regenerate_speaker is not None:
            speaker_id = regenerate_speaker
        else:
            speaker_id = await cls.addressee(svc, said.prose, cast.host, cast.guest)
        speaker = cast.bot(speaker_id)

        # 4-7. The primary beat and its passes. 8. With a guest, whether the silent
        # witness interjects is decided alongside those passes (it reads the edges as
        # they were before them), so the classifier calls share the connection cap.
        witness = None
        if cast.guest is not None:
            witness = cast.guest if speaker.id == cast.host.id else cast.host

        async def interjects(beat: BeatResult) -> bool:
            assert witness is not None
            return await cls.interjection(svc, cast, witness, speaker, said.model_prose, beat.text)

        primary, interject = await _beat_with_passes(
            svc,
            journal,
            feed,
            turn,
            cast,
            said,
            speaker,
            supersedes=regenerate,
            score=score,
            decide=interjects if witness is not None else None,
        )
        if witness is not None and interject and turn.cancel_reason is None:
            await _beat_with_passes(
                svc,
                journal,
                feed,
                turn,
                cast,
                said,
                witness,
                interjection_of=speaker.id,
                addressee_said=primary.text,
                score=score,
            )

        # 9. World events, then 10. scene close (which reads only the user's prose,
        # so it runs even when the beat was cancelled).
        await run_world_events(svc, journal, cast, primary.text)
        await close_scene_if_asked(svc, journal, cast, said.prose)
    except StorageFull as exc:
        # Nothing more of this turn fits; a beat cut short by it has already ended.
        feed.error(Error("storage_full", str(exc), chat_id))
    finally:
        # 11. Settled, even after a failure: the chat must take the next turn.
        with trio.CancelScope(shield=True):
            try:
                await journal.write(settle_turn, chat_id, said.user_turn_id)
            except StorageFull:
                journal.publish([TurnSettled(chat_id, said.user_turn_id)])  # seq 0: not journaled
            if regenerate is not None:
                feed.resync()  # the superseded turn left the timeline: every watcher redraws
            turn.done.set()


async def _beat_with_passes(
    svc: Services,
    journal: Journal,
    feed: ChatFeed,
    turn: TurnState,
    cast: Cast,
    said: TurnInput,
    speaker: Bot,
    *,
    interjection_of: str | None = None,
    addressee_said: str = "",
    supersedes: int | None = None,
    score: bool = True,
    decide: Callable[[BeatResult], Awaitable[bool]] | None = None,
) -> tuple[BeatResult, bool]:
    """Stream a beat, then run its passes; ``decide`` runs alongside them (if it completed)."""
    chat_id = cast.chat.id
    prompt = await narrative_request(
        svc, cast, speaker, said, interjection_of=interjection_of, addressee_said=addressee_said
    )
    started = ev.AssistantTurnStarted(chat_id, speaker.id, said.user_turn_id, interjection_of)
    result = await stream_beat(svc, journal, feed, turn, started, prompt, supersedes=supersedes)
    decision = False

    async def decide_now() -> None:
        nonlocal decision
        assert decide is not None
        decision = await decide(result)

    async with trio.open_nursery() as nursery:
        if decide is not None and result.completed and turn.cancel_reason is None:
            nursery.start_soon(decide_now)
        await _passes(svc, journal, cast, said, speaker, result, interjection_of, score)
    return result, decision


async def _passes(
    svc: Services,
    journal: Journal,
    cast: Cast,
    said: TurnInput,
    speaker: Bot,
    result: BeatResult,
    interjection_of: str | None,
    score: bool,
) -> None:
    if not result.text.strip():
        return
    if interjection_of is not None and result.truncated:
        return  # a cancelled interjection skips its follow-up passes
    memory_ids = await remember(journal, cast, said, speaker, result)
    await update_state(svc, journal, cast)
    if score and memory_ids:
        await svc.significance.tell(
            ScoreMemories(cast.chat.id, memory_ids, result.text, said.model_prose)
        )


async def remember(
    journal: Journal, cast: Cast, said: TurnInput, speaker: Bot, beat: BeatResult
) -> tuple[int, ...]:
    """One memory per witness, from its own point of view."""
    chat_id = cast.chat.id
    scene = await journal.store.run(Store.active_scene, chat_id)
    memories = [
        ev.MemoryWritten(
            chat_id,
            witness.id,
            cls.pov_memory(witness, cast.you.name, said.model_prose, speaker.name, beat.text),
            scene_id=scene.id if scene else None,
            source_event_id=beat.event_id,
        )
        for witness in cast.bots
    ]
    return (await journal.write(write_memories, memories)).ids


async def update_state(svc: Services, journal: Journal, cast: Cast) -> None:
    """One state-update classifier call per directed pair present, run concurrently."""
    chat_id = cast.chat.id
    present = cast.present_ids

    def read(s: Store) -> tuple[list[Edge], list[Turn]]:
        return (s.edges_among(list(present)), s.recent_dialogue(chat_id, limit=10))

    edges, recent = await svc.store.run(read)
    edge_of = {(e.source_id, e.target_id): e for e in edges}
    lines = cls.transcript(cast, recent)
    pairs = [(a, b) for a in present for b in present if a != b]
    results: dict[tuple[str, str], cls.StateChange] = {}

    async def one(source: str, target: str) -> None:
        results[source, target] = await cls.state_update(
            svc, cast, source, target, edge_of.get((source, target)), lines
        )

    async with trio.open_nursery() as nursery:
        for source, target in pairs:
            nursery.start_soon(one, source, target)

    updates = [
        ev.EdgeUpdate(
            source,
            target,
            chat_id=chat_id,
            affinity_delta=change.affinity_delta,
            trust_delta=change.trust_delta,
            knowledge_facts=change.knowledge_facts,
        )
        for (source, target) in pairs
        if (change := results[source, target]) is not None
    ]
    await journal.write(apply_edges, updates)
