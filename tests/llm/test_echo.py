"""The repeat ban: the token that would copy a run of the transcript, or of the reply
itself, is ruled out; runs of punctuation and markup are not."""

from __future__ import annotations

from llm._echo import RepeatBan

WORDS = {1: "I", 2: " am", 3: " glad", 4: " I", 5: " came", 6: " in", 7: ".", 8: ' "', 9: "*"}
"""Token ids and their text, for a tokenizer of a few words."""


def wordy(token: int) -> bool:
    return any(ch.isalnum() for ch in WORDS.get(token, ""))


def test_the_token_that_would_copy_a_run_of_the_transcript_is_banned() -> None:
    said = [1, 2, 3, 4, 5, 6, 7]  # "I am glad I came in."
    ban = RepeatBan(said, wordy, ngram=4)
    assert ban.banned([1, 2, 3]) == {4}  # "I am glad" may not go on " I"
    assert ban.banned([9, 1, 2, 3]) == {4}  # only the last three tokens count
    assert ban.banned([4, 5, 6]) == {7}
    assert ban.banned([1, 2]) == set()  # shorter than a run: nothing to copy yet
    assert ban.banned([2, 1, 3]) == set()  # not a run of the transcript


def test_runs_of_markup_and_punctuation_stay_free() -> None:
    # '." *' and '* "' recur in every beat; a run needs two words to be banned.
    said = [7, 8, 9, 8, 7, 8, 9, 8, 1]
    ban = RepeatBan(said, wordy, ngram=4)
    assert ban.banned([7, 8, 9]) == set()
    assert ban.banned([9, 8, 7]) == set()
    assert ban.banned([8, 9, 8]) == set()  # '"*" I': one word only


def test_the_reply_may_not_repeat_its_own_run() -> None:
    ban = RepeatBan([], wordy, ngram=4)
    for token in (1, 2, 3, 4, 9):  # the reply says "I am glad I*"
        ban.add(token)
    assert ban.banned([1, 2, 3]) == {4}
    assert ban.banned([2, 3, 4]) == {9}
    # A token said again and again: the loop is cut at its fourth time.
    loop = RepeatBan([], wordy, ngram=4)
    for _ in range(4):
        loop.add(3)
    assert loop.banned([3, 3, 3]) == {3}


def test_the_ban_joins_the_reply_to_the_end_of_the_transcript() -> None:
    ban = RepeatBan([1, 2, 3], wordy, ngram=4)  # the transcript ends "I am glad"
    ban.add(4)  # the reply opens " I": the run "I am glad I" is now said
    assert ban.banned([1, 2, 3]) == {4}
    # A run of one, or none, bans nothing.
    assert RepeatBan([1, 2, 3], wordy, ngram=1).banned([1, 2, 3]) == set()


def test_a_run_across_a_line_break_stays_free() -> None:
    # The transcript's lines end "came in." and open with a name: banning the name
    # after a line end made the model tag its next line with a shorter one.
    words = {**WORDS, 10: "\n", 11: "Wren", 12: ":"}
    said = [4, 5, 6, 7, 10, 11, 12]  # " I came in.\nWren:"
    ban = RepeatBan(
        said,
        lambda t: any(ch.isalnum() for ch in words[t]),
        ngram=4,
        breaking=lambda t: "\n" in words[t],
    )
    assert ban.banned([6, 7, 10]) == set()
    assert ban.banned([4, 5, 6]) == {7}  # within the line, the run is still banned
