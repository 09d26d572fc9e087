"""Lines a beat writes for someone else: found in every form small models write, cut as
the text streams, and nothing else touched."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from story import SpeakerGuard, foreign_line
from story._speakers import MAX_ASIDE, MAX_CLOSERS, MAX_OPENERS

OTHERS = ("Wren", "Tobias Vane")
SPEAKER = "Mira"


def streamed(chunks: list[str], others: tuple[str, ...] = OTHERS) -> tuple[str, SpeakerGuard]:
    guard = SpeakerGuard(others, SPEAKER)
    out = [guard.feed(chunk) for chunk in chunks]
    out.append(guard.flush())
    return "".join(out), guard


@pytest.mark.parametrize(
    "line",
    [
        'Wren: "You don\'t trust me much, do you?"',
        '- Wren: "You don\'t trust me much, do you?"',
        "*Wren*: I lean in.",
        "**Wren:** I lean in.",
        "**Wren**: I lean in.",
        "Wren (leaning in, voice low): Tell me.",
        "[Wren]: Tell me.",
        "> Wren: Tell me.",
        '"Wren: Tell me.',
        '  Wren - "Tell me."',
        "Wren — Tell me.",
        "WREN: tell me.",
        "wren : tell me.",
        "_Wren_: tell me.",
        "Tobias Vane: Aye.",
        "Tobias: Aye.",  # the first name is how small models shorten a name
        "“Tobias”: Aye.",
    ],
)
def test_every_form_of_another_speakers_line_is_cut(line: str) -> None:
    text = f'*Mira wipes the counter.* "Rain again."\n\n{line}\nMira: "Well?"'
    assert foreign_line(text, OTHERS, SPEAKER) == len('*Mira wipes the counter.* "Rain again."')
    # Chunk by chunk, the same cut, and the model can stop right there.
    out, guard = streamed(list(text))
    assert out == '*Mira wipes the counter.* "Rain again."'
    assert guard.cut


@pytest.mark.parametrize(
    "text",
    [
        "Wren smiles and says nothing.",
        "Wren's coat drips on the floor: a puddle grows.",
        "Wrenna: a name she had not heard in years.",
        "Wren-like, she tilts her head: listening.",
        "Mira: I answer for myself.",
        "Tobias waves - nobody notices.",
        'She looks at Wren: "Well?"',
        "*Wren (the stranger) has gone quiet.*",
        "Wren (" + "x" * (MAX_ASIDE + 5) + "): too long an aside to be a tag",
        "",
    ],
)
def test_prose_about_the_others_is_not_cut(text: str) -> None:
    assert foreign_line(text, OTHERS, SPEAKER) is None
    assert streamed(list(text))[0] == text


def test_a_beat_that_opens_with_another_speakers_line_keeps_nothing() -> None:
    assert foreign_line("- Wren: hello", OTHERS, SPEAKER) == 0
    out, guard = streamed(["- Wr", "en:", " hello", "\nMira: hi"])
    assert (out, guard.cut) == ("", True)


def test_the_speakers_own_first_name_is_never_cut() -> None:
    # Two people share a first name: the speaker's own tag stays.
    assert foreign_line("Ada: mine.\nAda Lin: yours.", ["Ada Lin"], "Ada Vance") == len(
        "Ada: mine."
    )


def test_only_a_line_prefix_is_held_back() -> None:
    guard = SpeakerGuard(OTHERS, SPEAKER)
    assert guard.feed('Mira nods. "Fine') == 'Mira nods. "Fine'
    assert guard.feed('."\n') == '."'  # the newline waits: the next line may be a tag
    assert guard.feed("**Wr") == ""
    assert guard.held == "\n**Wr"
    assert guard.feed("itten on the wall") == "\n**Written on the wall"
    assert guard.held == ""
    assert guard.feed(" is a name") == " is a name"
    assert not guard.cut


def test_after_a_cut_nothing_more_passes() -> None:
    guard = SpeakerGuard(OTHERS, SPEAKER)
    assert guard.feed("Fine.\nWren: no") == "Fine."
    assert guard.cut
    assert guard.feed(" more") == ""
    assert guard.flush() == ""


def test_without_names_everything_passes() -> None:
    text = "Wren: hello\n- Tobias: hi"
    assert foreign_line(text, [], SPEAKER) is None
    assert streamed(list(text), ())[0] == text


# --- properties, on texts that mix prose, names, markup and tags ---

pieces = st.sampled_from(
    [
        "Wren",
        "wren",
        "Tobias",
        "Tobias Vane",
        "Mira",
        "Wrenna",
        ":",
        " - ",
        "-",
        "—",
        "*",
        "**",
        ">",
        "[",
        "]",
        "(",
        ")",
        '"',
        "“",
        " ",
        "  ",
        "\n",
        "\n\n",
        "\t",
        "says",
        "nods.",
        " softly",
        "x" * 30,
        "é",
    ]
)
texts = st.one_of(
    st.lists(pieces, max_size=40).map("".join),
    st.text(alphabet=st.sampled_from(list("Wren: -*\n(a)[]>")), max_size=80),
    st.text(max_size=120),
)


@st.composite
def chunkings(draw: st.DrawFn) -> tuple[str, list[str]]:
    text = draw(texts)
    cuts = sorted(draw(st.lists(st.integers(0, len(text)), max_size=12)))
    bounds = [0, *cuts, len(text)]
    return text, [text[a:b] for a, b in itertools.pairwise(bounds)]


@given(chunkings())
def test_what_passes_is_a_prefix_without_another_speakers_line(
    case: tuple[str, list[str]],
) -> None:
    text, chunks = case
    out, guard = streamed(chunks)
    assert text.startswith(out)
    assert foreign_line(out, OTHERS, SPEAKER) is None
    cut = foreign_line(text, OTHERS, SPEAKER)
    # However the text was split, exactly the text up to the first foreign line passes.
    assert out == (text if cut is None else text[:cut])
    assert guard.cut == (cut is not None)


@given(chunkings())
def test_text_without_such_lines_passes_whole(case: tuple[str, list[str]]) -> None:
    text, chunks = case
    if foreign_line(text, OTHERS, SPEAKER) is None:
        assert streamed(chunks)[0] == text


@given(chunkings())
def test_the_text_held_back_is_at_most_a_line_opening(case: tuple[str, list[str]]) -> None:
    _, chunks = case
    guard = SpeakerGuard(OTHERS, SPEAKER)
    longest = max(len(name) for name in OTHERS)
    bound = MAX_OPENERS + longest + 2 * MAX_CLOSERS + MAX_ASIDE + 4
    for chunk in chunks:
        guard.feed(chunk)
        if not guard.cut:
            # Past any whitespace (which waits for what follows it), a line's first characters.
            assert len(guard.held.lstrip()) <= bound


@pytest.mark.parametrize(
    ("before", "opening", "joined"),
    [
        ("Mira sets the glass down.", "She smiles.", " She smiles."),
        ("Mira sets the glass down.", " She smiles.", " She smiles."),
        ("Mira sets the glass down.", "\n\nShe smiles.", "\nShe smiles."),
        ("Mira sets the glass down ", "slowly.", "slowly."),
        ("Mira sets the glass down", ", slowly.", ", slowly."),
        ('Mira says, "Not tonight', '," and turns.', '," and turns.'),
        ('Mira says, "Not tonight.', '"', '"'),
        ('"Fine."', '"Go."', ' "Go."'),
        ("", "  She smiles.", "She smiles."),
    ],
)
def test_a_continuation_joins_its_beat_with_one_space_where_words_meet(
    before: str, opening: str, joined: str
) -> None:
    from story import join_continuation

    assert join_continuation(before, opening) == joined


def test_a_guard_going_on_mid_line_still_cuts_the_next_line_for_someone_else() -> None:
    guard = SpeakerGuard(["Wren"], "Mira")
    guard.go_on_from("Mira nods")
    assert guard.feed("Wren: and more") == "Wren: and more"  # mid-line: her own words
    guard = SpeakerGuard(["Wren"], "Mira")
    guard.go_on_from("Mira nods")
    shown = guard.feed(" slowly.\nWren: Thanks.")
    assert guard.cut and shown + guard.flush() == " slowly."
    fresh = SpeakerGuard(["Wren"], "Mira")
    fresh.go_on_from("Mira nods.\n")
    assert fresh.feed("Wren: hi") == "" and fresh.cut
