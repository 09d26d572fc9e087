"""The sentiment lexicon, and the state update's prompt and fallback: plain functions."""

from __future__ import annotations

import pytest

from protocol import YOU_ID
from story import (
    StateChange,
    Target,
    judge_by_words,
    state_update_prompt,
    tone,
    validate_state_updates,
)
from story._sentiment import MAX_SHIFT

WARM = (
    "Mira, thank you for letting me in out of the rain. You're very kind.",
    "I trust you. You have always been honest with me.",
    "*I smile.* \"I'm so glad we met, you're a true friend.\"",
)
HOSTILE = (
    "You lied to me, you filthy cheat.",
    '*I glare.* "You\'re a coward and a fool."',
    "Cross me again and I'll burn this place down. I hate you.",
)


@pytest.mark.parametrize("line", WARM)
def test_warm_lines_read_warm(line: str) -> None:
    assert tone(line).warmth > 0


@pytest.mark.parametrize("line", HOSTILE)
def test_hostile_lines_read_cold(line: str) -> None:
    assert tone(line).warmth < 0


def test_plain_lines_move_nothing() -> None:
    assert tone("Two ales, please, and the room at the top of the stairs.").trust == 0
    assert tone("What time does the ferry leave?") == tone("")


def test_trust_follows_honesty_and_lies() -> None:
    assert tone("I promise I'll keep your secret.").trust > 0
    assert tone("You betrayed me, you liar.").trust < 0


def test_a_negation_turns_the_word_around() -> None:
    assert tone("You are kind.").warmth > 0
    assert tone("You are not kind.").warmth < 0
    assert tone("I don't hate you.").warmth > 0


def test_a_negation_stops_at_the_clause() -> None:
    assert tone("You stole my map while I slept, didn't you? Thief.").warmth < 0
    assert tone("I didn't sleep. You're kind.").warmth > 0


def test_an_intensifier_strengthens_and_the_sum_is_capped() -> None:
    assert tone("You are very kind.").warmth > tone("You are kind.").warmth
    flood = " ".join(["I hate you, liar, thief!"] * 20)
    assert tone(flood).warmth == -MAX_SHIFT
    assert tone(flood).trust == -MAX_SHIFT


def test_curly_apostrophes_read_as_straight() -> None:
    assert tone("I don’t hate you.") == tone("I don't hate you.")


def test_judge_by_words_reads_each_target_by_its_own_words() -> None:
    exchange = ((YOU_ID, "Thank you, you're wonderful."), ("tobias", "You liar!"))
    changes = judge_by_words(exchange, [YOU_ID, "tobias", "oda"])
    assert changes[YOU_ID].affinity_delta > 0
    assert changes["tobias"].affinity_delta < 0 and changes["tobias"].trust_delta < 0
    assert changes["oda"] == StateChange()  # said nothing, moved nothing


def test_the_prompt_shows_worked_answers_with_signs() -> None:
    targets = (Target(YOU_ID, "Ana", "A sailor.", None),)
    system, user = state_update_prompt("mira", "Mira", "A barkeep.", targets, ["Ana: Hello."])
    assert '"affinity_delta": 4' in system.content
    assert '"affinity_delta": -5' in system.content
    assert "pair: mira -> you" in user.content


def test_an_unreadable_entry_takes_the_fallback_a_readable_one_stands() -> None:
    fallback = {YOU_ID: StateChange(3, 2), "tobias": StateChange(-2, -1)}
    raw = {"edges": {"tobias": {"affinity_delta": 0, "trust_delta": 0, "knowledge_facts": []}}}
    read = validate_state_updates(raw, [YOU_ID, "tobias"], fallback)
    assert read[YOU_ID] == StateChange(3, 2)
    assert read["tobias"] == StateChange()
    assert validate_state_updates("no json at all", [YOU_ID], fallback)[YOU_ID] == fallback[YOU_ID]
    assert validate_state_updates("garbage", [YOU_ID])[YOU_ID] == StateChange()
