"""World events and scene close: the passes at the end of a turn."""

from __future__ import annotations

import logging
from typing import Any

import trio

from protocol import YOU_ID, SceneClosed, WorldEvent
from protocol import events as ev
from store import Store

from . import _classifiers as cls
from ._feed import ChatFeed
from ._services import Services

log = logging.getLogger("troupe.actors.world")


async def run_world_events(svc: Services, feed: ChatFeed, cast: Any, narrative: str) -> None:
    """Let the lifecycle classifier move open world events; promote what completes."""
    chat_id = cast.chat.id
    open_events = await svc.store.run(Store.world_events, chat_id, ("planned", "active"))
    if not any(e.status == "active" for e in open_events) and not open_events:
        return
    transitions = await cls.lifecycle(svc, open_events, narrative)
    if not transitions:
        return
    by_id = {e.id: e for e in open_events}
    events: list[ev.Event] = []
    notes: list[tuple[int, str, str]] = []
    for event_id, status in transitions:
        world = by_id[event_id]
        if status == "active":
            events.append(ev.WorldEventStarted(chat_id, event_id))
        elif status == "cancelled":
            events.append(ev.WorldEventCancelled(chat_id, event_id))
        elif status == "completed":
            events.append(ev.WorldEventCompleted(chat_id, event_id))
            events.extend(_promotions(chat_id, event_id, world.artifacts))
        notes.append((event_id, world.title, status))

    def write(s: Store) -> Any:
        def render(_ids: tuple[int, ...]) -> list[Any]:
            out: list[Any] = [
                WorldEvent(chat_id, i, title, st)  # type: ignore[arg-type]
                for i, title, st in notes
            ]
            for event in events:
                if isinstance(event, ev.EdgeUpdate):
                    edge = s.get_edge(event.source_id, event.target_id)
                    out.append(cls.edge_message(chat_id, event, edge))
            return out

        return s.append(*events, render=render).messages

    feed.deliver(await svc.store.run(write))


def _promotions(chat_id: str, world_event_id: int, artifacts: Any) -> list[ev.Event]:
    """The events that put a completed world event's artifacts into state."""
    out: list[ev.Event] = []
    facts: dict[tuple[str, str], list[str]] = {}
    for fact in artifacts.knowledge_facts:
        facts.setdefault((fact.source_id, fact.target_id), []).append(fact.fact)
    changes = {(c.source_id, c.target_id): c for c in artifacts.relationship_changes}
    for pair in dict.fromkeys([*facts, *changes]):
        change = changes.get(pair)
        out.append(
            ev.EdgeUpdate(
                pair[0],
                pair[1],
                chat_id=chat_id,
                affinity_delta=change.affinity_delta if change else 0,
                trust_delta=change.trust_delta if change else 0,
                knowledge_facts=tuple(facts.get(pair, ())),
            )
        )
    for obj in artifacts.acquired_objects:
        out.append(ev.ObjectAcquired(chat_id, obj.holder_id, obj.name, world_event_id))
    return out


async def close_scene_if_asked(svc: Services, feed: ChatFeed, cast: Any, prose: str) -> None:
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
    summaries: dict[str, Any] = {}

    async def summarise(bot: Any) -> None:
        summaries[bot.id] = await cls.scene_summary(svc, cast, bot, lines, location)

    async with trio.open_nursery() as nursery:
        for bot in cast.bots:
            nursery.start_soon(summarise, bot)

    events: list[ev.Event] = [ev.SceneClosed(chat_id, scene.id, reason, new_location)]
    for bot in cast.bots:
        result = summaries[bot.id]
        events.append(ev.SceneSummary(chat_id, scene.id, bot.id, result.summary))
        for target_id in (YOU_ID, *(b.id for b in cast.bots if b.id != bot.id)):
            summary = result.edge_summaries.get(target_id)
            facts = result.knowledge.get(target_id, ())
            if summary or facts:
                events.append(
                    ev.EdgeUpdate(
                        bot.id,
                        target_id,
                        chat_id=chat_id,
                        knowledge_facts=tuple(facts),
                        summary=summary,
                    )
                )
    if new_location:
        events.append(ev.SceneOpened(chat_id, new_location))
    texts = {bot.id: summaries[bot.id].summary for bot in cast.bots}

    def write(s: Store) -> Any:
        def render(_ids: tuple[int, ...]) -> list[Any]:
            out: list[Any] = [SceneClosed(chat_id, scene.id, texts)]
            for event in events:
                if isinstance(event, ev.EdgeUpdate):
                    edge = s.get_edge(event.source_id, event.target_id)
                    out.append(cls.edge_message(chat_id, event, edge))
            return out

        return s.append(*events, render=render).messages

    feed.deliver(await svc.store.run(write))
