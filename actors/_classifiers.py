"""The turn's classifier passes: story's prompts and validators, run through the pool.

Each function builds the request from story/, sends it through the
classifier pool (bounded, prioritised, one timeout for queueing and the
call) and returns the validated value, or the classifier's safe default when
anything goes wrong. Every transcript is built with :func:`transcript`, so
no OOC note reaches a classifier.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import attrs

import story
from llm import ClassifierRequest, Message
from protocol import YOU_ID, Bot, Edge, EdgeUpdate, Memory, Turn
from protocol import events as ev
from store import WorldEventRow

from ._cast import Cast
from ._pool import ClassifierPool
from ._services import Services

StateChange = story.StateChange


def _messages(prompt: Sequence[story.PromptMessage]) -> tuple[Message, ...]:
    return tuple(Message(m.role, m.content, m.name) for m in prompt)


def request(
    name: str, prompt: Sequence[story.PromptMessage], schema: Mapping[str, object]
) -> ClassifierRequest:
    """A classifier request from one of story's prompts."""
    return ClassifierRequest(name, _messages(prompt), schema)


async def addressee(svc: Services, prose: str, host: Bot, guest: Bot | None) -> str:
    """The bot addressed: rules first; the classifier only when they can't decide."""
    decision = story.addressee_by_rules(prose, host, guest)
    if decision == "host" or guest is None:
        return host.id
    if decision == "guest":
        return guest.id
    answer = await svc.pool.classify(
        request(
            "addressee",
            story.addressee_prompt(prose, host.name, guest.name),
            story.ADDRESSEE_SCHEMA,
        ),
        lambda raw: story.validate_addressee(raw, host.name, guest.name),
        "host",
        critical=True,
    )
    return guest.id if answer == "guest" else host.id


def names_present(cast: Cast) -> dict[str, str]:
    """Display names of everyone present, by id."""
    return {entity: cast.name_of(entity) for entity in cast.present_ids}


def transcript(cast: Cast, turns: Sequence[Turn]) -> tuple[str, ...]:
    """``"Name: text"`` lines of ``turns`` as a model may read them (OOC removed)."""
    return story.transcript_lines(turns, names_present(cast))


async def state_update(
    svc: Services,
    cast: Cast,
    source_id: str,
    target_id: str,
    edge: Edge | None,
    lines: Sequence[str],
) -> story.StateChange:
    """How the edge source → target moves after the latest beat.

    ``lines`` is the recent dialogue as :func:`transcript` gives it.
    """
    names = names_present(cast)
    personas = {YOU_ID: cast.you.persona, **{b.id: b.persona for b in cast.bots}}
    prompt = story.state_update_prompt(
        source_id,
        names[source_id],
        personas.get(source_id, ""),
        target_id,
        names[target_id],
        edge or Edge(source_id, target_id, 50, 50, "", ()),
        lines,
        target_persona=personas.get(target_id, ""),
    )
    return await svc.pool.classify(
        request("state_update", prompt, story.STATE_UPDATE_SCHEMA),
        story.validate_state_update,
        story.StateChange(),
        critical=True,
    )


async def significance(pool: ClassifierPool, text: str, context: str) -> int:
    """0..3 for a beat's memories (background priority)."""
    return await pool.classify(
        request(
            "significance", story.significance_prompt(text, context), story.SIGNIFICANCE_SCHEMA
        ),
        story.validate_significance,
        0,
        critical=False,
    )


async def interjection(
    svc: Services, cast: Cast, witness: Bot, addressee: Bot, you_said: str, addressee_said: str
) -> bool:
    """Whether the silent witness speaks up after the addressee's beat."""
    edges = await svc.store.run(
        lambda s: (s.get_edge(witness.id, addressee.id), s.get_edge(witness.id, YOU_ID))
    )
    prompt = story.interjection_prompt(
        witness, edges[0], edges[1], addressee.name, cast.you.name, you_said, addressee_said
    )
    decision = await svc.pool.classify(
        request("interjection", prompt, story.INTERJECTION_SCHEMA),
        story.validate_interjection,
        story.InterjectionDecision(),
        critical=True,
    )
    return decision.interject


async def lifecycle(
    svc: Services, events: Sequence[WorldEventRow], narrative: str
) -> tuple[story.Transition, ...]:
    """Legal status moves of the open world events after a beat."""
    open_events = [story.OpenEvent(e.id, e.status, e.title, e.description) for e in events]
    return await svc.pool.classify(
        request(
            "lifecycle", story.lifecycle_prompt(open_events, narrative), story.LIFECYCLE_SCHEMA
        ),
        lambda raw: story.validate_lifecycle(raw, open_events),
        (),
        critical=True,
    )


async def scene_close(
    svc: Services, prose: str, location: str | None
) -> tuple[str, str | None] | None:
    """``(reason, new location)`` when the prose ends the scene; rules first."""
    ruled = story.scene_close_by_rules(prose, location)
    if isinstance(ruled, story.Close):
        return ruled.reason, ruled.new_location
    if isinstance(ruled, story.NoClose):
        return None
    decision = await svc.pool.classify(
        request(
            "scene_close", story.scene_close_prompt(prose, location), story.SCENE_CLOSE_SCHEMA
        ),
        story.validate_scene_close,
        story.SceneCloseDecision(),
        critical=True,
    )
    if not decision.close:
        return None
    place = decision.new_location
    if place and location and place.lower() == location.lower():
        place = None
    return ("the story moved on", place)


async def scene_summary(
    svc: Services, cast: Cast, witness: Bot, lines: Sequence[str], location: str | None
) -> story.SceneSummaryResult:
    """One witness's summary of the closed scene at ``location``.

    ``lines`` is what the witness saw, as :func:`transcript` gives it.
    """
    others = {e: cast.name_of(e) for e in cast.present_ids if e != witness.id}
    return await svc.pool.classify(
        request(
            "scene_summary",
            story.scene_summary_prompt(witness, lines, others, location),
            story.SCENE_SUMMARY_SCHEMA,
        ),
        lambda raw: story.validate_scene_summary(raw, others, lines, witness.name, location),
        story.default_scene_summary(lines, witness.name, location),
        critical=True,
    )


pov_memory = story.pov_memory


def auto_pin_plan(
    memory: Memory, auto_pins: Sequence[Memory], cap: int
) -> tuple[bool, tuple[int, ...]]:
    """Whether to pin a scored memory, and which auto-pins to evict."""
    return story.auto_pin_plan(memory, auto_pins, cap)


def with_significance(memory: Memory, score: int) -> Memory:
    """The memory as it is once scored."""
    return attrs.evolve(memory, significance=score)


def edge_message(chat_id: str, update: ev.EdgeUpdate, edge: Edge) -> EdgeUpdate:
    """The ``edge_update`` message for an applied edge event."""
    return EdgeUpdate(
        chat_id,
        update.source_id,
        update.target_id,
        edge.affinity,
        edge.trust,
        update.affinity_delta,
        update.trust_delta,
        tuple(update.knowledge_facts),
    )
