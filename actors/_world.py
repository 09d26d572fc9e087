"""World events and scene close: the passes at the end of a turn."""

from __future__ import annotations

import logging

import trio

import story
from protocol import YOU_ID, Bot
from protocol import events as ev
from store import Store, close_scene, move_world_events

from . import _classifiers as cls
from ._cast import Cast
from ._journal import Journal
from ._services import Services

log = logging.getLogger("troupe.actors.world")


async def run_world_events(svc: Services, journal: Journal, cast: Cast, narrative: str) -> None:
    """Let the lifecycle classifier move open world events; promote what completes."""
    chat_id = cast.chat.id
    open_events = await svc.store.run(Store.world_events, chat_id, ("planned", "active"))
    if not open_events:
        return
    moves = await cls.lifecycle(svc, open_events, narrative)
    await journal.write(move_world_events, chat_id, moves)


async def close_scene_if_asked(svc: Services, journal: Journal, cast: Cast, prose: str) -> None:
    """Close the scene on a closing phrase or a change of location in the user's prose."""
    chat_id = cast.chat.id
    scene = await svc.store.run(Store.active_scene, chat_id)
    if scene is None:
        return
    decision = await cls.scene_close(svc, prose, scene.location)
    if decision is None:
        return
    reason, new_location = decision
    turns = await svc.store.run(Store.recent_dialogue, chat_id, 40)
    lines = cls.transcript(cast, turns)
    location = scene.location or cast.chat.location
    summaries: dict[str, story.SceneSummaryResult] = {}

    async def summarise(bot: Bot) -> None:
        summaries[bot.id] = await cls.scene_summary(svc, cast, bot, lines, location)

    async with trio.open_nursery() as nursery:
        for bot in cast.bots:
            nursery.start_soon(summarise, bot)

    learned: list[ev.EdgeUpdate] = []
    for bot in cast.bots:
        result = summaries[bot.id]
        for target_id in (YOU_ID, *(b.id for b in cast.bots if b.id != bot.id)):
            summary = result.edge_summaries.get(target_id)
            facts = result.knowledge.get(target_id, ())
            if summary or facts:
                learned.append(
                    ev.EdgeUpdate(
                        bot.id,
                        target_id,
                        chat_id=chat_id,
                        knowledge_facts=tuple(facts),
                        summary=summary,
                    )
                )
    texts = {bot.id: summaries[bot.id].summary for bot in cast.bots}
    closed = ev.SceneClosed(chat_id, scene.id, reason, new_location)
    await journal.write(close_scene, closed, texts, learned)
