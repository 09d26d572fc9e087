"""Who the person is talking to: names in the order named, else the last speaker, else the host."""

from __future__ import annotations

import pytest

from protocol import Bot
from story import addressees_by_rules, mentions, name_forms

MIRA = Bot("mira", "Mira", "Keeps the bar.", "")
TOBIAS = Bot("tobias", "Tobias", "Old lamplighter.", "")
ODA = Bot("oda", "Oda Finch", "A harbour pilot.", "")
TWO = (MIRA, TOBIAS)


@pytest.mark.parametrize(
    ("prose", "speakers"),
    [
        ('"Tobias, is the lighthouse really haunted?"', ("tobias",)),
        ('"Mira, another round please."', ("mira",)),
        ("*I nod at tobias.*", ("tobias",)),
        ("TOBIAS!", ("tobias",)),
        ('"Mira, Tobias says you cheat at cards. Tobias, tell her."', ("mira", "tobias")),
        ('"Tobias and Mira, which of you lit the lamp?"', ("tobias", "mira")),
        ('"Evening."', ("mira",)),
        ('"Any rooms free tonight?"', ("mira",)),
        ('"Sorry, go on."', ("mira",)),
        ('"How are you?"', None),
        ('"Hello, stranger."', None),
        ('"Red, pass the salt."', None),
        ('"Pass the salt, Red."', None),
        ('"Well, that went badly."', ("mira",)),
        ("((can you make it darker)) *I sit.*", ("mira",)),
        ("((Tobias should answer this)) *I sit.*", ("tobias",)),
        ("Mirabel is a name nobody here has.", ("mira",)),
        ("Tobias’s lamp flickers.", ("tobias",)),
    ],
)
def test_rules_for_two_before_anyone_spoke(prose: str, speakers: tuple[str, ...] | None) -> None:
    assert addressees_by_rules(prose, TWO) == speakers


def test_one_character_always_answers() -> None:
    assert addressees_by_rules('"Tobias? You there?"', (MIRA,)) == ("mira",)


@pytest.mark.parametrize("n", range(1, 9))
def test_several_named_answer_in_the_order_named_nicknames_included(n: int) -> None:
    cast = tuple(Bot(f"b{k}", f"Name{k} Surname{k}", "", "") for k in range(n))
    prose = " ".join(f"Name{k}," for k in reversed(range(n))) + " what now?"
    assert addressees_by_rules(prose, cast) == tuple(f"b{k}" for k in reversed(range(n)))


def test_nobody_named_goes_to_the_last_speaker_else_the_host() -> None:
    cast = (MIRA, TOBIAS, ODA)
    assert addressees_by_rules('"And then?"', cast, last_speaker="oda") == ("oda",)
    assert addressees_by_rules('"How are you?"', cast, last_speaker="oda") == ("oda",)
    assert addressees_by_rules('"And then?"', cast) == ("mira",)
    assert addressees_by_rules('"Mira?"', cast, last_speaker="oda") == ("mira",)


def test_muted_characters_are_never_chosen_by_the_rules() -> None:
    cast = (MIRA, TOBIAS, ODA)
    muted = {"tobias"}
    assert addressees_by_rules('"Tobias, Oda?"', cast, muted=muted) == ("oda",)
    assert addressees_by_rules('"And then?"', cast, "tobias", muted) == ("mira",)
    assert addressees_by_rules('"And then?"', cast, muted={"mira"}) == ("tobias",)
    assert addressees_by_rules('"Hm?"', cast, muted={"mira", "oda"}) == ("tobias",)
    assert addressees_by_rules('"Hm?"', cast, muted={"mira", "tobias", "oda"}) == ("mira",)


def test_first_names_and_punctuated_names() -> None:
    ada = Bot("ada", "Dr. Ada Vance", "", "")
    obrien = Bot("ob", "Seamus O'Brien", "", "")
    assert name_forms("Dr. Ada Vance") == ("Dr. Ada Vance", "Ada")
    assert addressees_by_rules('"Ada, look."', (obrien, ada)) == ("ada",)
    assert addressees_by_rules('"Dr.  Ada Vance, I presume."', (obrien, ada)) == ("ada",)
    assert addressees_by_rules('"Seamus?"', (obrien, ada)) == ("ob",)
    assert mentions("ask o’brien", "Seamus O'Brien") is False  # only the full or first name
    assert mentions("ask seamus o’brien", "Seamus O'Brien") is True
    assert name_forms("The Baron") == ("The Baron", "Baron")
    assert name_forms("   ") == ()


def test_a_shared_first_name_is_undecided_and_a_full_name_settles_it() -> None:
    a = Bot("a", "Ana Reyes", "", "")
    b = Bot("b", "Ana Cole", "", "")
    assert addressees_by_rules('"Ana?"', (a, b)) is None
    assert addressees_by_rules('"Ana Cole?"', (a, b)) == ("b",)
    assert addressees_by_rules('"Ana Cole, Ana Reyes!"', (a, b)) == ("b", "a")
