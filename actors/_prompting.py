"""Gathering what a character may know, and building its beat's request."""

from __future__ import annotations

import story
from llm import NarrativeRequest
from protocol import Bot
from store import Store

from ._bot import BuildPrompt
from ._services import Services


async def narrative_request(
    svc: Services, cast: story.Cast, beat: story.BeatRequest
) -> NarrativeRequest:
    """The request for a beat as the turn asks it, built by the speaker's bot actor.

    The bot gathers its own view in the store's thread: the recent dialogue
    before the turn, its pinned and relevant memories, its outgoing edges and
    the chat's active world events; its own card, if it came from one, the
    lorebooks attached to the chat and the chat's author's note. Lore is
    woken only by the dialogue the speaker witnessed (and this turn).
    """
    budgets = svc.settings.budgets
    chat_id = cast.chat_id
    you = cast.person(beat.person_id) or cast.people[0]
    others = tuple(q for q in cast.people if q.id != you.id)
    speaker = cast.character(beat.speaker_id)
    if speaker is None:
        raise ValueError(f"{beat.speaker_id} is not in chat {chat_id}")
    other = next((b for b in cast.characters if b.id != speaker.id), None)

    def build(s: Store, bot: Bot | None) -> story.Prompt:
        bot = bot or speaker
        # Read a block further back than the window, so that it can start where a
        # block starts and keep that start for a few turns (the model's cached prefix).
        reach = budgets.recent_turns + story.DIALOGUE_BLOCK + 2
        recent = story.stable_window(
            [
                t
                # Only what the speaker was present for: an absent character heard nothing.
                for t in s.recent_dialogue(chat_id, reach, witness=bot.id)
                if t.event_id < beat.before_event_id
            ],
            budgets.recent_turns,
        )
        activity = None
        if other is not None:
            theirs = [t for t in recent if t.speaker_id == other.id]
            activity = theirs[-1].text if theirs else None
        scene = s.active_scene(chat_id)
        books = [s.lorebook_of(book_id) for book_id in s.chat_lorebooks(chat_id)]
        note = s.author_note(chat_id)
        present = [p.id for p in cast.people] + [b.id for b in cast.characters if b.id != bot.id]
        inputs = story.PromptInputs(
            speaker=bot,
            you=you,
            prose=beat.prose,
            names=cast.names,
            other=other,
            other_activity=activity,
            location=(scene.location if scene else None) or cast.location,
            # This chat's story only: nothing another chat wrote reaches this prompt.
            edges=tuple(s.get_edge(bot.id, target, chat_id=chat_id) for target in present),
            pinned=tuple(s.pinned_memories(bot.id, chat_id=chat_id)),
            relevant=tuple(
                s.relevant_memories(bot.id, beat.prose, budgets.relevant_memories, chat_id=chat_id)
            ),
            world_events=tuple(
                (w.title, w.description) for w in s.world_events(chat_id, ("active",))
            ),
            dialogue=tuple(recent),
            interjection=beat.interjection,
            card=s.card_of(bot.id),
            lorebooks=tuple(book for book in books if book is not None),
            author_note=story.AuthorNote(note.text, note.depth) if note is not None else None,
            people=others,
            soft_budget=budgets.soft,
            hard_budget=budgets.hard,
        )
        return story.assemble_prompt(inputs)

    prompt = await svc.bots.get(speaker.id).ask(BuildPrompt(build), timeout=60)
    if not isinstance(prompt, story.Prompt):
        raise TypeError(f"bot {speaker.id} built {prompt!r}, not a prompt")
    tuning = await svc.store.run(Store.chat_settings, chat_id)
    # The chat's own settings, where it has any, over the engine's.
    return NarrativeRequest(
        tuple(prompt.messages),  # story's prompt messages are the model's: one type
        speaker=speaker.name,
        max_tokens=tuning.max_tokens or budgets.max_tokens,
        temperature=budgets.temperature if tuning.temperature is None else tuning.temperature,
        stop=beat.stop,
        cache_key=f"{chat_id}/{speaker.id}",
        notes_from=prompt.notes_from,
        current=prompt.current,
        top_p=tuning.top_p,
        min_p=tuning.min_p,
        repeat_penalty=tuning.repeat_penalty,
    )
