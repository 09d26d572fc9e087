"""The prose parser: marks, nesting, unclosed marks, and coverage of every character."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from protocol import Segment
from story import parse_prose, prose_for_model, strip_ooc

MARKS = set('"“”*()')


def kinds(prose: str) -> list[tuple[str, str]]:
    return [(s.kind, s.text) for s in parse_prose(prose)]


def test_the_four_kinds_in_order() -> None:
    prose = '((keep it light)) *I slide a brass key across the bar.* "Recognise this?" She waits.'
    assert kinds(prose) == [
        ("ooc", "keep it light"),
        ("action", "I slide a brass key across the bar."),
        ("dialogue", "Recognise this?"),
        ("narration", "She waits."),
    ]


def test_curly_and_mixed_quotes_are_dialogue() -> None:
    assert kinds('“Evening,” I say. "Still open”') == [
        ("dialogue", "Evening,"),
        ("narration", "I say."),
        ("dialogue", "Still open"),
    ]


def test_unclosed_quote_runs_to_the_end_of_its_paragraph() -> None:
    assert kinds('"Wait, I never said\n\nThe door slams.') == [
        ("dialogue", "Wait, I never said"),
        ("narration", "The door slams."),
    ]


def test_unclosed_action_and_ooc_end_with_the_paragraph_too() -> None:
    assert kinds("*leans in\n  \nNext.") == [("action", "leans in"), ("narration", "Next.")]
    assert kinds("((note to self\n\nBack.") == [("ooc", "note to self"), ("narration", "Back.")]


def test_a_single_newline_does_not_end_a_mark() -> None:
    assert kinds('"one\ntwo"') == [("dialogue", "one\ntwo")]


def test_dialogue_inside_action_splits_the_action() -> None:
    assert kinds('*says "hi" and waves*') == [
        ("action", "says"),
        ("dialogue", "hi"),
        ("action", "and waves"),
    ]


def test_asterisks_inside_dialogue_are_emphasis() -> None:
    assert kinds('"I *really* mean it."') == [("dialogue", "I *really* mean it.")]


def test_ooc_is_recognised_inside_dialogue_and_nests_parentheses() -> None:
    assert kinds('"Hello ((is this ok (really)?)) there"') == [
        ("dialogue", "Hello"),
        ("ooc", "is this ok (really)?"),
        ("dialogue", "there"),
    ]


def test_a_run_of_asterisks_is_one_mark() -> None:
    assert kinds("**grins** fine") == [("action", "grins"), ("narration", "fine")]


def test_stray_closing_marks_are_text() -> None:
    assert kinds("a )) b ” c") == [("narration", "a )) b ” c")]


def test_whitespace_only_pieces_are_dropped() -> None:
    assert kinds('  "  " ** (( )) ') == []
    assert parse_prose("") == ()


def test_prose_for_model_drops_ooc_and_keeps_marks() -> None:
    segments = parse_prose('((secret plan)) *waves* "Hi" she said')
    assert prose_for_model(segments) == '*waves* "Hi" she said'
    assert "secret" not in strip_ooc('"a ((secret)) b"')


@pytest.mark.parametrize(
    "prose",
    ['*waves* "Hi" she said', '"Hi," *nods* and leaves.', "plain narration", '"one" "two"'],
)
def test_model_prose_parses_back_to_the_same_segments(prose: str) -> None:
    segments = parse_prose(prose)
    assert parse_prose(prose_for_model(segments)) == segments


def _visible(text: str) -> str:
    return "".join(c for c in text if not c.isspace() and c not in MARKS)


prose_text = st.lists(
    st.sampled_from([*list('ab c\n\t"“”*()é'), "((", "))", "\n\n", " \n \n"]), max_size=60
).map("".join)
any_text = st.one_of(prose_text, st.text(max_size=200))


@given(any_text)
def test_segments_cover_the_prose_in_order(prose: str) -> None:
    segments = parse_prose(prose)
    # Every visible character that is not a mark lands in exactly one segment, in order.
    assert _visible("".join(s.text for s in segments)) == _visible(prose)
    for segment in segments:
        assert isinstance(segment, Segment)
        assert segment.kind in ("dialogue", "action", "narration", "ooc")
        assert segment.text and segment.text == segment.text.strip()


@given(any_text)
def test_segments_are_ordered_slices_of_the_prose(prose: str) -> None:
    at = 0
    for segment in parse_prose(prose):
        found = prose.find(segment.text, at)
        assert found >= 0
        at = found + len(segment.text)


secret = st.from_regex(r"ZQ[0-9]{3}", fullmatch=True)
plain = st.text(alphabet=st.sampled_from(list('ab "“”*\n')), max_size=30)


@given(plain, secret, plain)
def test_ooc_never_reaches_the_model(before: str, hidden: str, after: str) -> None:
    prose = f"{before}(({hidden})){after}"
    assert hidden not in prose_for_model(parse_prose(prose))
    assert any(s.kind == "ooc" and hidden in s.text for s in parse_prose(prose))


def test_long_prose_with_many_marks() -> None:
    prose = ('*a* "b" ((c)) d ' * 2000) + "*" * 5000 + "tail"
    segments = parse_prose(prose)
    assert len(segments) == 4 * 2000 + 1
    assert segments[:4] == (
        Segment("action", "a"),
        Segment("dialogue", "b"),
        Segment("ooc", "c"),
        Segment("narration", "d"),
    )
    assert segments[-1] == Segment("action", "tail")
