"""Prompt assembly: the layout, what is cut in which order, the hard cap, witness-only."""

from __future__ import annotations

import pytest
from attrs import evolve
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import Bot, Edge, Entity, Memory, Scene, Turn
from story import (
    MIN_HARD_BUDGET,
    BudgetError,
    Interjection,
    Prompt,
    PromptInputs,
    assemble_prompt,
    estimate_tokens,
    prompt_tokens,
)

MIRA = Bot("mira", "Mira", "Mira keeps the bar at the Gilded Eel; dry, observant.", "")
TOBIAS = Bot("tobias", "Tobias", "Tobias, an old lamplighter, superstitious and kind.", "")
ANA = Entity("you", "Ana", "A sailor looking for her brother.")


def turn(event_id: int, speaker: str, text: str) -> Turn:
    if speaker == "you":
        return Turn(event_id, "user", speaker, text, False, None, event_id)
    return Turn(event_id, "assistant", speaker, text, False, None, event_id)


def memory(memory_id: int, text: str, bot: str = "mira", pinned: bool = False) -> Memory:
    return Memory(memory_id, bot, "c1", text, 3 if pinned else 1, pinned)


def inputs(**changes: object) -> PromptInputs:
    base = PromptInputs(
        speaker=MIRA,
        you=ANA,
        prose='*I slide a brass key across the bar.* "Recognise this?"',
        other=TOBIAS,
        other_activity="Tobias trims the wick of the lamp by the door.",
        scene=Scene(7, "The Gilded Eel", "2026-01-01"),
        edges=(Edge("mira", "you", 72, 30, "Ana pays on time.", ("Ana is a sailor",)), None),
        pinned=tuple(memory(i, f"pinned memory {i} " + "p" * 60, pinned=True) for i in (1, 2)),
        relevant=tuple(memory(i, f"relevant memory {i} " + "r" * 60) for i in (10, 11, 12)),
        world_events=[("The storm", "A storm batters the harbour all night long.")],
        dialogue=tuple(
            turn(100 + i, "you" if i % 2 == 0 else "mira", f"line {100 + i} " + "d" * 60)
            for i in range(10)
        ),
        soft_budget=4000,
        hard_budget=6000,
    )
    return evolve(base, **changes)  # type: ignore[arg-type]


def text_of(prompt: Prompt) -> str:
    return "\n".join(m.content for m in prompt.messages)


def test_estimate_tokens_rounds_up() -> None:
    assert [estimate_tokens(t) for t in ("", "a", "abcd", "abcde")] == [0, 1, 1, 2]


def test_layout_system_then_dialogue_then_the_users_prose() -> None:
    prompt = assemble_prompt(inputs())
    system, *dialogue, last = prompt.messages
    assert system.role == "system"
    for needle in (
        "You are Mira",
        "Mira keeps the bar",
        "Location: The Gilded Eel.",
        "Present: Mira (you), Ana and Tobias.",
        "A sailor looking for her brother.",
        "Tobias, an old lamplighter",
        "What Tobias did last: Tobias trims",
        "- Ana: warm (affinity 72/100), wary (trust 30/100). Ana pays on time. Known: Ana is",
        "- Tobias: no history yet",
        "pinned memory 1",
        "relevant memory 12",
        "- The storm: A storm batters the harbour",
        "write only Mira's words",
        "Never write for Ana",
        "Do not speak or act for Tobias",
    ):
        assert needle in system.content, needle
    assert [(m.role, m.name) for m in dialogue[:2]] == [("user", "Ana"), ("assistant", "Mira")]
    assert (last.role, last.name) == ("user", "Ana")
    assert last.content == '*I slide a brass key across the bar.* "Recognise this?"'
    assert prompt.cut == ()
    assert prompt.tokens == prompt_tokens(prompt.messages)


def test_one_to_one_has_no_other_character() -> None:
    prompt = assemble_prompt(inputs(other=None, other_activity="ignored", edges=()))
    system = prompt.messages[0].content
    assert "Tobias" not in system and "ignored" not in system
    assert "Present: Mira (you), Ana." in system


def test_ooc_never_reaches_the_model() -> None:
    prompt = assemble_prompt(
        inputs(
            prose='((SECRET-NOW make her cry)) "Hello." ((and SECRET-TWO',
            dialogue=(turn(5, "you", '((SECRET-OLD)) "Hi."'), turn(6, "mira", "Hey.")),
            other_activity="((SECRET-ACT)) waves",
        )
    )
    assert "SECRET" not in text_of(prompt)
    assert prompt.messages[-1].content == '"Hello."'
    assert prompt.messages[1].content == '"Hi."'


def test_all_ooc_prose_still_ends_with_a_user_message() -> None:
    prompt = assemble_prompt(inputs(prose="((just a note))"))
    assert prompt.messages[-1].role == "user"
    assert "note" not in prompt.messages[-1].content


def test_witness_only_other_bots_memories_and_earlier_turns_are_dropped() -> None:
    prompt = assemble_prompt(
        inputs(
            relevant=(memory(20, "TOBIAS-ONLY secret", bot="tobias"), memory(21, "mine")),
            pinned=(memory(22, "TOBIAS-PIN", bot="tobias", pinned=True),),
            entered_at_event_id=105,
        )
    )
    text = text_of(prompt)
    assert "TOBIAS-ONLY" not in text and "TOBIAS-PIN" not in text and "mine" in text
    assert "line 104" not in text and "line 105" in text
    assert prompt.cut == ()  # filtered out, not cut


def test_this_turns_own_events_are_left_to_the_prose() -> None:
    prompt = assemble_prompt(inputs(current_turn_id=108))
    text = text_of(prompt)
    assert "line 107" in text and "line 108" not in text and "line 109" not in text


def test_interjection_ends_with_the_addressees_beat() -> None:
    prompt = assemble_prompt(
        inputs(speaker=TOBIAS, other=MIRA, interjection=Interjection("Mira", "Mira squints."))
    )
    last = prompt.messages[-1]
    assert (last.role, last.name, last.content) == ("user", "Mira", "Mira squints.")
    assert prompt.messages[-2].name == "Ana"
    assert "Mira has just answered" in prompt.messages[0].content
    # Tobias's own earlier lines would be assistant turns; Mira's are someone else's.
    assert all(m.role == "user" for m in prompt.messages[1:])


def labels(prompt: Prompt) -> list[str]:
    return [c.split(":")[0] for c in prompt.cut]


def test_soft_cuts_in_the_decided_order() -> None:
    full = assemble_prompt(inputs()).tokens
    # Just under everything: the soft cuts must run to the end, in order.
    prompt = assemble_prompt(inputs(soft_budget=200, hard_budget=full + 100))
    kinds = labels(prompt)
    order = [
        "relevant_memory",
        "dialogue",
        "world_event_description",
        "other_activity",
    ]
    firsts = [kinds.index(k) for k in order]
    assert firsts == sorted(firsts)
    # Least relevant first, oldest dialogue first, and the floors hold.
    assert prompt.cut[:3] == ("relevant_memory:12", "relevant_memory:11", "relevant_memory:10")
    assert [c for c in prompt.cut if c.startswith("dialogue")] == [
        f"dialogue:{100 + i}" for i in range(6)
    ]
    assert "pinned_memory:2" not in prompt.cut  # within the floor of 3
    assert "world_event_description:The storm" in prompt.cut
    assert prompt.tokens <= full + 100
    text = text_of(prompt)
    assert "line 105" not in text and "line 106" in text
    assert "- The storm" in text and "batters" not in text


def test_soft_cuts_stop_as_soon_as_the_prompt_fits() -> None:
    full = assemble_prompt(inputs()).tokens
    prompt = assemble_prompt(inputs(soft_budget=full - 10, hard_budget=full))
    assert prompt.cut == ("relevant_memory:12",)
    assert prompt.tokens <= full - 10


def test_pinned_beyond_the_floor_go_before_the_other_characters_activity() -> None:
    pinned = tuple(memory(i, f"pin {i} " + "x" * 40, pinned=True) for i in range(1, 6))
    base = inputs(pinned=pinned, relevant=(), world_events=(), dialogue=())
    full = assemble_prompt(base).tokens
    prompt = assemble_prompt(evolve(base, soft_budget=full - 25, hard_budget=full))
    assert prompt.cut == ("pinned_memory:5", "pinned_memory:4")
    tight = assemble_prompt(evolve(base, soft_budget=100, hard_budget=full))
    assert tight.cut == ("pinned_memory:5", "pinned_memory:4", "other_activity")


def test_over_the_hard_budget_dialogue_goes_then_texts_are_truncated() -> None:
    big = inputs(
        speaker=evolve(MIRA, persona="Mira. " + "persona " * 400),
        pinned=tuple(memory(i, "long pin " * 60, pinned=True) for i in (1, 2, 3)),
    )
    prompt = assemble_prompt(evolve(big, soft_budget=300, hard_budget=500))
    assert prompt.tokens <= 500
    assert "dialogue:109" in prompt.cut  # the floor went too
    assert "persona_truncated" in prompt.cut or "pinned_memory:1" in prompt.cut
    hard = prompt.cut[prompt.cut.index("dialogue:106") :]
    assert hard[:4] == ("dialogue:106", "dialogue:107", "dialogue:108", "dialogue:109")
    assert not any(m.content.startswith("line ") for m in prompt.messages[1:])
    assert prompt.messages[-1].content.endswith('"Recognise this?"')


def test_a_huge_prose_is_cut_keeping_its_end() -> None:
    prose = "start " + "word " * 5000 + '"the question?"'
    prompt = assemble_prompt(inputs(prose=prose, soft_budget=400, hard_budget=600))
    assert prompt.tokens <= 600
    assert "prose_truncated" in prompt.cut
    assert prompt.messages[-1].content.endswith('"the question?"')


def test_budgets_that_cannot_work_are_refused() -> None:
    with pytest.raises(BudgetError):
        inputs(soft_budget=500, hard_budget=400)
    with pytest.raises(BudgetError):
        inputs(soft_budget=10, hard_budget=MIN_HARD_BUDGET - 1)
    with pytest.raises(BudgetError):
        inputs(soft_budget=0, hard_budget=100)


texts = st.text(max_size=3000)


@settings(max_examples=60, deadline=None)
@given(
    persona=texts,
    you_persona=texts,
    prose=texts,
    said=texts,
    names=st.text(min_size=1, max_size=200),
    turns=st.lists(texts, max_size=12),
    pins=st.lists(texts, max_size=6),
    hard=st.integers(min_value=MIN_HARD_BUDGET, max_value=3000),
    soft_share=st.floats(min_value=0.01, max_value=1.0),
    interjecting=st.booleans(),
)
def test_never_over_the_hard_budget(
    persona: str,
    you_persona: str,
    prose: str,
    said: str,
    names: str,
    turns: list[str],
    pins: list[str],
    hard: int,
    soft_share: float,
    interjecting: bool,
) -> None:
    prompt = assemble_prompt(
        PromptInputs(
            speaker=Bot("s", names, persona, ""),
            you=Entity("you", names, you_persona),
            prose=prose,
            other=Bot("o", names, persona, ""),
            other_activity=said,
            location=names,
            pinned=[memory(i, t, bot="s", pinned=True) for i, t in enumerate(pins)],
            world_events=[(names, persona)],
            dialogue=[turn(i, "you" if i % 2 else "s", t) for i, t in enumerate(turns)],
            interjection=Interjection(names, said) if interjecting else None,
            soft_budget=max(1, int(hard * soft_share)),
            hard_budget=hard,
        )
    )
    assert prompt.tokens == prompt_tokens(prompt.messages) <= hard
    assert prompt.messages[0].role == "system"
    assert prompt.messages[-1].role == "user"


BEA = Entity("bea", "Bea", "A smuggler with a wooden leg.")


def test_another_person_at_the_table_is_present_never_written_for_and_named_in_dialogue() -> None:
    dialogue = (
        Turn(90, "user", "bea", '"Two ales, Mira."', False, None, 90),
        turn(91, "mira", "Mira pours two ales."),
    )
    prompt = assemble_prompt(
        inputs(people=(BEA,), other=None, other_activity=None, dialogue=dialogue)
    )
    system = prompt.messages[0].content
    assert "Present: Mira (you), Ana and Bea." in system
    assert "Bea (another person playing): A smuggler with a wooden leg." in system
    assert "- Nor for Bea." in system
    # Bea's earlier words are hers; the prose answered now is Ana's.
    assert any(m.name == "Bea" and m.content == '"Two ales, Mira."' for m in prompt.messages)
    assert prompt.messages[-1].name == "Ana"


def test_the_person_who_spoke_is_you_and_the_one_who_did_not_is_another() -> None:
    prompt = assemble_prompt(inputs(you=BEA, people=(ANA,), other=None, other_activity=None))
    system = prompt.messages[0].content
    assert "Bea (the person you are playing with): A smuggler" in system
    assert "Ana (another person playing): A sailor" in system
    assert prompt.messages[-1].name == "Bea"
