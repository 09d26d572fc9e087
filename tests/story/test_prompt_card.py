"""A card, lore and the author's note in a character's prompt: layout, budgets, cut order."""

from __future__ import annotations

import json
from typing import Any

import pytest
from attrs import evolve
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import Bot, Entity, Turn
from story import (
    MIN_HARD_BUDGET,
    AuthorNote,
    Card,
    CardError,
    Lorebook,
    Prompt,
    PromptInputs,
    assemble_prompt,
    edit_card,
    prompt_tokens,
    read_card_json,
    read_world_info,
)

MIRA = Bot("mira", "Mira", "Mira keeps the bar.", "")
ANA = Entity("you", "Ana", "A sailor looking for her brother.")


def card(**data: Any) -> Card:
    fields: dict[str, Any] = {
        "name": "Mira",
        "description": "{{char}} keeps the bar at the Gilded Eel; {{user}} is a regular.",
        "personality": "Dry, observant, <BOT> never raises her voice.",
        "scenario": "A storm night; <USER> comes in soaked.",
        "first_mes": "Rain's coming in.",
        "mes_example": (
            "<START>\n{{user}}: Busy night?\n{{char}}: Always, when it storms.\n"
            "<START>\n{{user}}: Any news?\n{{char}}: Ships late, men later."
        ),
        "creator_notes": "SECRET-NOTES for browsers only",
        "tags": ["TAG-ONE"],
        "creator": "CREATOR-NAME",
        "character_version": "VERSION-9",
        "system_prompt": "",
        "post_history_instructions": "",
        "alternate_greetings": [],
        "extensions": {},
    }
    fields.update(data)
    return read_card_json(
        json.dumps({"spec": "chara_card_v3", "spec_version": "3.0", "data": fields})
    )


def turn(event_id: int, speaker: str, text: str) -> Turn:
    kind = "user" if speaker == "you" else "assistant"
    return Turn(event_id, kind, speaker, text, False, None, event_id)


def inputs(**changes: Any) -> PromptInputs:
    base = PromptInputs(
        speaker=MIRA,
        you=ANA,
        prose='"Evening, Mira."',
        names={"mira": "Mira", "you": "Ana"},
        card=card(),
        dialogue=tuple(
            turn(100 + i, "you" if i % 2 == 0 else "mira", f"line {100 + i} " + "d" * 40)
            for i in range(6)
        ),
        soft_budget=4000,
        hard_budget=6000,
    )
    return evolve(base, **changes)


def system(prompt: Prompt) -> str:
    return prompt.messages[0].content


def everything(prompt: Prompt) -> str:
    return "\n".join(m.content for m in prompt.messages)


def book(*entries: dict[str, Any], **settings_: Any) -> Lorebook:
    doc = {"entries": {str(n): {"uid": n, **e} for n, e in enumerate(entries)}, **settings_}
    return read_world_info(json.dumps(doc))


def test_card_sections_enter_the_system_message_with_macros_filled() -> None:
    prompt = assemble_prompt(inputs())
    text = system(prompt)
    assert "Mira keeps the bar at the Gilded Eel; Ana is a regular." in text
    assert "Dry, observant, Mira never raises her voice." in text
    assert "A storm night; Ana comes in soaked." in text
    assert "Ana: Busy night?\nMira: Always, when it storms." in text
    assert "Ana: Any news?\nMira: Ships late, men later." in text
    # The card sections sit in the stable top part, before the scene.
    assert text.index("Gilded Eel; Ana") < text.index("# The scene")
    for never in ("SECRET-NOTES", "TAG-ONE", "CREATOR-NAME", "VERSION-9", "{{", "<BOT>", "<USER>"):
        assert never not in everything(prompt)


def test_the_persona_a_card_gave_is_not_said_twice() -> None:
    description = "Mira keeps the bar at the Gilded Eel."
    prompt = assemble_prompt(
        inputs(speaker=evolve(MIRA, persona=description), card=card(description=description))
    )
    assert system(prompt).count(description) == 1


def test_a_v3_nickname_stands_for_char() -> None:
    prompt = assemble_prompt(inputs(card=card(nickname="Mimi")))
    assert "Mimi keeps the bar at the Gilded Eel" in system(prompt)


def test_system_prompt_and_post_history_apply_with_original() -> None:
    prompt = assemble_prompt(
        inputs(
            card=card(
                system_prompt="{{original}} Keep {{char}} terse.",
                post_history_instructions="Stay in the bar, {{char}}.",
            )
        )
    )
    first = system(prompt).split("\n")[0]
    assert first == (
        "You are Mira, a character in an ongoing story. Write Mira's next beat. Keep Mira terse."
    )
    assert prompt.messages[-1].role == "system"
    assert prompt.messages[-1].content == "Stay in the bar, Mira."
    assert prompt.messages[-2].content == '"Evening, Mira."'


def test_the_cards_own_budget_cuts_examples_first_then_scenario_personality() -> None:
    big = card(description="desc " * 40, personality="pers " * 40, scenario="scen " * 40)
    full = assemble_prompt(inputs(card=big))
    assert full.cut == ()
    # Room for description, personality and scenario, not the examples.
    prompt = assemble_prompt(inputs(card=big, card_budget=160))
    assert prompt.cut == ("card_example:2", "card_example:1")
    assert "Busy night" not in system(prompt) and "scen scen" in system(prompt)
    tighter = assemble_prompt(inputs(card=big, card_budget=30))
    assert tighter.cut == (
        "card_example:2",
        "card_example:1",
        "card_scenario",
        "card_personality",
        "card_description_truncated",
    )
    assert "desc desc" in system(tighter) and "pers pers" not in system(tighter)


def test_over_the_soft_budget_examples_go_before_the_dialogue() -> None:
    base = inputs()
    full = assemble_prompt(base).tokens
    prompt = assemble_prompt(evolve(base, soft_budget=full - 5, hard_budget=full))
    assert prompt.cut == ("card_example:2",)
    tight = assemble_prompt(evolve(base, soft_budget=full - 60, hard_budget=full))
    assert tight.cut[:3] == ("card_example:2", "card_example:1", "dialogue:100")


def test_the_author_note_goes_depth_messages_from_the_end() -> None:
    prompt = assemble_prompt(inputs(author_note=AuthorNote("Keep {{char}} wary of {{user}}.", 2)))
    chat = prompt.messages[1:]
    assert chat[-3].role == "system" and chat[-3].content == "Keep Mira wary of Ana."
    assert [m.content for m in chat[-2:]] == [f"line 105 {'d' * 40}", '"Evening, Mira."']
    at_end = assemble_prompt(inputs(author_note=AuthorNote("Now.", 0)))
    assert at_end.messages[-1].content == "Now."
    too_deep = assemble_prompt(inputs(author_note=AuthorNote("Top.", 100)))
    assert too_deep.messages[1].content == "Top."


def test_a_depth_prompt_is_honoured() -> None:
    spec = {"depth_prompt": {"prompt": "{{char}} hides a knife.", "depth": 1}}
    prompt = assemble_prompt(inputs(card=card(extensions=spec)))
    assert prompt.messages[-2].role == "system"
    assert prompt.messages[-2].content == "Mira hides a knife."
    assert prompt.messages[-1].content == '"Evening, Mira."'


def test_lore_wakes_only_from_what_is_given_and_goes_at_the_volatile_end() -> None:
    books = (
        book(
            {"key": ["lighthouse"], "content": "The lighthouse went dark in {{user}}'s youth."},
            {"key": ["marigold"], "content": "Marigold is the smugglers' password."},
            {"key": ["tide"], "content": "At depth.", "position": 4, "depth": 1},
        ),
    )
    said = (turn(200, "you", "Who keeps the lighthouse now? The tide is high."),)
    prompt = assemble_prompt(inputs(lorebooks=books, dialogue=said))
    text = system(prompt)
    assert "The lighthouse went dark in Ana's youth." in text
    assert text.index("went dark") > text.index("# The scene")
    assert "Marigold" not in everything(prompt)
    assert prompt.messages[-2].content == "At depth."
    # A key in a turn the speaker did not witness (not given) wakes nothing.
    unseen = assemble_prompt(inputs(lorebooks=books, dialogue=()))
    assert "lighthouse went dark" not in everything(unseen)


def test_the_cards_own_book_is_scanned_and_the_prose_wakes_lore() -> None:
    own = {
        "entries": [
            {"keys": ["knife"], "content": "{{char}}'s knife was her father's.", "enabled": True}
        ]
    }
    prompt = assemble_prompt(inputs(card=card(character_book=own), prose='"Nice knife."'))
    assert "Mira's knife was her father's." in system(prompt)


def test_lore_has_its_own_budget_and_is_cut_lowest_priority_first() -> None:
    books = (
        book(
            {"key": ["bell"], "content": "low " * 30, "order": 1, "comment": "low"},
            {"key": ["bell"], "content": "high " * 30, "order": 50, "comment": "high"},
        ),
    )
    ask = inputs(lorebooks=books, prose="The bell rings.")
    assert assemble_prompt(ask).cut == ()
    prompt = assemble_prompt(evolve(ask, lore_budget=50))
    assert prompt.cut == ("lore:0 (low)",)
    assert "high high" in system(prompt) and "low low" not in system(prompt)
    plain = evolve(ask, card=None)
    full = assemble_prompt(plain).tokens
    soft = assemble_prompt(evolve(plain, soft_budget=full - 60, hard_budget=full))
    assert "lore:0 (low)" in soft.cut
    assert soft.cut.index("lore:0 (low)") > soft.cut.index("dialogue:100")


texts = st.text(max_size=2000)


@settings(max_examples=40, deadline=None)
@given(
    description=texts,
    examples=st.lists(texts, max_size=4),
    note=texts,
    depth=st.integers(min_value=0, max_value=100),
    post=texts,
    lore=texts,
    hard=st.integers(min_value=MIN_HARD_BUDGET, max_value=3000),
    soft_share=st.floats(min_value=0.01, max_value=1.0),
)
def test_never_over_the_hard_budget_with_a_card_lore_and_a_note(
    description: str,
    examples: list[str],
    note: str,
    depth: int,
    post: str,
    lore: str,
    hard: int,
    soft_share: float,
) -> None:
    books = (book({"key": ["a"], "content": lore, "constant": True}),)
    prompt = assemble_prompt(
        inputs(
            card=card(
                description=description,
                mes_example="".join(f"<START>{e}" for e in examples),
                post_history_instructions=post,
                extensions={"depth_prompt": {"prompt": note, "depth": depth}},
            ),
            lorebooks=books,
            author_note=AuthorNote(note, depth),
            soft_budget=max(1, int(hard * soft_share)),
            hard_budget=hard,
        )
    )
    assert prompt.tokens == prompt_tokens(prompt.messages) <= hard
    assert prompt.messages[0].role == "system"


def test_a_card_edit_keeps_every_other_key_in_every_version() -> None:
    v1 = read_card_json(json.dumps({"name": "Mira", "description": "old", "x_v1": [1]}))
    edited = edit_card(v1, {"description": "new", "scenario": "A bar."})
    assert edited.original() == {
        "name": "Mira",
        "description": "new",
        "x_v1": [1],
        "scenario": "A bar.",
    }
    v3 = card(extensions={"tool": {"k": 1}})
    doc = edit_card(v3, {"personality": "Kind."}).original()
    before = v3.original()
    assert doc["data"].pop("personality") == "Kind."
    before["data"].pop("personality")
    assert doc == before
    with pytest.raises(CardError):
        edit_card(v3, {"creator_notes": "no"})
