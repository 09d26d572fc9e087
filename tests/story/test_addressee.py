"""Who the user is talking to: names first, cues second, the host by default."""

from __future__ import annotations

import pytest

from protocol import Bot
from story import addressee_by_rules, mentions, name_forms, pick_addressee

MIRA = Bot("mira", "Mira", "Keeps the bar.", "")
TOBIAS = Bot("tobias", "Tobias", "Old lamplighter.", "")


@pytest.mark.parametrize(
    ("prose", "decision"),
    [
        ('"Tobias, is the lighthouse really haunted?"', "guest"),
        ('"Mira, another round please."', "host"),
        ("*I nod at tobias.*", "guest"),
        ("TOBIAS!", "guest"),
        ('"Mira, Tobias says you cheat at cards. Tobias, tell her."', "ask"),
        ('"Mira and Tobias, which of you lit the lamp?"', "ask"),
        ('"Evening."', "host"),
        ('"Any rooms free tonight?"', "host"),
        ('"Sorry, go on."', "host"),
        ('"How are you?"', "ask"),
        ('"Hello, stranger."', "ask"),
        ('"Red, pass the salt."', "ask"),
        ('"Pass the salt, Red."', "ask"),
        ('"Well, that went badly."', "host"),
        ("((can you make it darker)) *I sit.*", "host"),
        ("((Tobias should answer this)) *I sit.*", "guest"),
        ("Mirabel is a name nobody here has.", "host"),
        ("Tobias’s lamp flickers.", "guest"),
    ],
)
def test_rules_with_a_guest(prose: str, decision: str) -> None:
    assert addressee_by_rules(prose, MIRA, TOBIAS) == decision


def test_without_a_guest_the_host_always_answers() -> None:
    assert addressee_by_rules('"Tobias? You there?"', MIRA, None) == "host"


def test_first_names_and_punctuated_names() -> None:
    ada = Bot("ada", "Dr. Ada Vance", "", "")
    obrien = Bot("ob", "Seamus O'Brien", "", "")
    assert name_forms("Dr. Ada Vance") == ("Dr. Ada Vance", "Ada")
    assert addressee_by_rules('"Ada, look."', obrien, ada) == "guest"
    assert addressee_by_rules('"Dr.  Ada Vance, I presume."', obrien, ada) == "guest"
    assert addressee_by_rules('"Seamus?"', obrien, ada) == "host"
    assert mentions("ask o’brien", "Seamus O'Brien") is False  # only the full or first name
    assert mentions("ask seamus o’brien", "Seamus O'Brien") is True
    assert name_forms("The Baron") == ("The Baron", "Baron")
    assert name_forms("   ") == ()


def test_shared_first_names_are_undecided() -> None:
    a = Bot("a", "Ana Reyes", "", "")
    b = Bot("b", "Ana Cole", "", "")
    assert addressee_by_rules('"Ana?"', a, b) == "ask"
    assert addressee_by_rules('"Ana Cole?"', a, b) == "ask"  # "Ana" alone names both


def test_pick_addressee_falls_back_to_the_host() -> None:
    assert pick_addressee("guest", MIRA, TOBIAS) is TOBIAS
    assert pick_addressee("host", MIRA, TOBIAS) is MIRA
    assert pick_addressee("ask", MIRA, TOBIAS) is MIRA
    assert pick_addressee("guest", MIRA, None) is MIRA
