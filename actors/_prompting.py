"""Gathering what a character may know, and building its beat's request."""

from __future__ import annotations

import story
from llm import Message, NarrativeRequest
from protocol import YOU_ID, Bot
from store import Store

from ._bot import BuildPrompt
from ._cast import Cast, TurnInput
from ._services import Services


async def narrative_request(
    svc: Services,
    cast: Cast,
    speaker: Bot,
    said: TurnInput,
    *,
    interjection_of: str | None = None,
    addressee_said: str = "",
) -> NarrativeRequest:
    """The request for ``speaker``'s beat, built by its bot actor from its own view."""
    budgets = svc.settings.budgets
    chat_id = cast.chat.id
    other = next((b for b in cast.bots if b.id != speaker.id), None)

    def build(s: Store, bot: Bot | None) -> story.Prompt:
        bot = bot or speaker
        recent = [
            t
            for t in s.recent_dialogue(chat_id, budgets.recent_turns + 2)
            if t.event_id < said.user_turn_id
        ][-budgets.recent_turns :]
        activity = None
        if other is not None:
            theirs = [t for t in recent if t.speaker_id == other.id]
            activity = theirs[-1].text if theirs else None
        scene = s.active_scene(chat_id)
        present = [YOU_ID, *(b.id for b in cast.bots if b.id != bot.id)]
        inputs = story.PromptInputs(
            speaker=bot,
            you=cast.you,
            prose=said.model_prose,
            names={e: cast.name_of(e) for e in cast.present_ids},
            other=other,
            other_activity=activity,
            location=(scene.location if scene else None) or cast.chat.location,
            edges=tuple(s.get_edge(bot.id, target) for target in present),
            pinned=tuple(s.pinned_memories(bot.id)),
            relevant=tuple(
                s.relevant_memories(bot.id, said.model_prose, budgets.relevant_memories)
            ),
            world_events=tuple(
                (w.title, w.description) for w in s.world_events(chat_id, ("active",))
            ),
            dialogue=tuple(recent),
            interjection=(
                story.Interjection(cast.name_of(interjection_of), addressee_said)
                if interjection_of is not None
                else None
            ),
            soft_budget=budgets.soft,
            hard_budget=budgets.hard,
        )
        return story.assemble_prompt(inputs)

    prompt = await svc.bots.get(speaker.id).ask(BuildPrompt(build), timeout=60)
    if not isinstance(prompt, story.Prompt):
        raise TypeError(f"bot {speaker.id} built {prompt!r}, not a prompt")
    others = [cast.you.name, *(b.name for b in cast.bots if b.id != speaker.id)]
    return NarrativeRequest(
        tuple(Message(m.role, m.content, m.name) for m in prompt.messages),
        speaker=speaker.name,
        max_tokens=budgets.max_tokens,
        temperature=budgets.temperature,
        stop=tuple(f"\n{name}:" for name in others),
    )
