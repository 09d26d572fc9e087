"""Reading warmth and trust in words: a small sentiment lexicon of troupe's own.

A relationship judged by a model only moves when the model can tell a kind
line from a cruel one, and a small embedded model cannot: asked whether a
character feels warmer or colder after "You're a liar and a thief", the
270M model answers "warmer" as readily as after "Thank you, you're
wonderful" (docs/models.md has the figures). This lexicon reads the same
lines without a model: each word it knows carries a warmth and a trust
weight, a negation just before a word in the same clause ("not", "never",
"don't") turns it around, an intensifier ("very", "so") strengthens it, trust counts half
in warmth, and the sum, capped, is how far one exchange moves an edge.

It is deliberately small and plain: words of fondness, thanks, praise and
help against insult, threat, contempt and violence for warmth; honesty,
promises and secrets shared against lies, theft and betrayal for trust.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from attrs import frozen

MAX_SHIFT = 6
"""The most one exchange moves affinity or trust by the lexicon, either way (the
classifier's own cap is 10: words alone are weaker evidence than a judgement)."""

_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_CLAUSE = re.compile(r"[.!?;:,\n()\"“”*]+")
"""Where a clause ends: a negation reaches no further ("didn't you? Thief." is no praise)."""

_NEGATIONS = frozenset(
    {
        "not",
        "no",
        "never",
        "nothing",
        "nobody",
        "hardly",
        "don't",
        "doesn't",
        "didn't",
        "won't",
        "wouldn't",
        "can't",
        "cannot",
        "isn't",
        "aren't",
        "wasn't",
        "weren't",
        "shouldn't",
        "couldn't",
        "ain't",
    }
)
"""Words that turn the next few words' weight around ("not kind", "never lied")."""

_INTENSIFIERS: Mapping[str, float] = {
    "very": 1.5,
    "so": 1.5,
    "really": 1.5,
    "truly": 1.5,
    "deeply": 1.5,
    "completely": 1.5,
    "utterly": 1.5,
    "absolutely": 1.5,
    "most": 1.3,
    "such": 1.3,
    "too": 1.2,
}

_NEGATION_REACH = 3
"""A negation reaches this many words ahead."""


_WARM: dict[str, float] = {}
_TRUST: dict[str, float] = {}


def _add(table: dict[str, float], weight: float, words: str) -> None:
    for word in words.split():
        table[word] = weight


# Warmth: how much more (or less) the listener likes the speaker for saying it.
_add(
    _WARM,
    2.0,
    "love loved lovely adore adored wonderful marvellous marvelous beautiful darling dear "
    "dearest friend friends friendship grateful gratitude thank thanks thankful kind "
    "kindness generous brilliant amazing delightful treasure sweet sweetheart embrace hug "
    "hugs cherish welcome",
)
_add(
    _WARM,
    1.0,
    "liked glad happy pleased pleasure nice good great fine fond warm warmly gentle "
    "gently smile smiles smiled smiling laugh laughs laughed laughing please sorry "
    "apologise apologize apologies help helped helping helpful care caring cares "
    "comfort comforting safe together enjoy enjoyed enjoying best better fun charming "
    "clever brave proud admire admired praise pretty handsome gift gifts favour favor "
    "cheers toast wink winks grin grins grinned hope promise",
)
_add(
    _WARM,
    -1.0,
    "annoying annoyed bother bothered rude cold coldly sneer sneers sneered scowl scowls "
    "scowled frown frowns frowned glare glares glared mock mocks mocked boring dull "
    "ugly lazy weak useless pathetic shut silly nonsense tired sigh sighs "
    "impatient sharp sharply",
)
_add(
    _WARM,
    -2.0,
    "hate hated hatred despise despised disgust disgusting disgusted loathe loathsome "
    "idiot fool foolish stupid moron coward cowardly liar thief scum filthy filth "
    "wretch wretched vile worthless rat pig brute bastard damn damned cursed curse "
    "threat threaten threatened threatening kill killed murder burn hurt harm punch "
    "punched slap slapped spit spat kick kicked attack attacked enemy insult insulted "
    "cruel nasty horrible awful terrible poison poisoned destroy ruin ruined revenge "
    "die dead blood knife dagger sword fist fists shove shoved grab grabbed",
)

# Trust: how much more (or less) the listener relies on the speaker for saying it.
_add(
    _TRUST,
    2.0,
    "trust trusted honest honestly honesty truth truthful promise promised swear sworn "
    "loyal loyalty faithful rely reliable confide secret secrets protect protected "
    "guard guarded depend",
)
_add(
    _TRUST,
    1.0,
    "help helped helping friend friends thank thanks grateful sorry apologise apologize "
    "safe true sincere sincerely word vow share shared explain explained tell",
)
_add(
    _TRUST,
    -2.0,
    "lie lies lied liar lying cheat cheated cheating cheater thief steal stole stolen "
    "betray betrayed betrayal traitor deceive deceived deceit trick tricked fraud "
    "swindle swindler spy spied con threat threaten threatened blackmail",
)
_add(
    _TRUST,
    -1.0,
    "suspicious suspect doubt doubted hide hiding hid hidden sneaky shady false fake "
    "rumour rumor rumours rumors mistrust distrust",
)


@frozen
class Tone:
    """What a text says of its speaker: warmth and trust, each within ±:data:`MAX_SHIFT`."""

    warmth: int = 0
    trust: int = 0


def _score(words: list[str], table: Mapping[str, float]) -> float:
    total = 0.0
    for index, word in enumerate(words):
        weight = table.get(word)
        if weight is None:
            continue
        before = words[max(0, index - _NEGATION_REACH) : index]
        if any(w in _NEGATIONS for w in before):
            weight = -weight * 0.75  # "not kind" is less cruel than "cruel"
        if index and words[index - 1] in _INTENSIFIERS:
            weight *= _INTENSIFIERS[words[index - 1]]
        total += weight
    return total


def _cap(value: float) -> int:
    rounded = int(value + 0.5) if value >= 0 else -int(-value + 0.5)
    return max(-MAX_SHIFT, min(MAX_SHIFT, rounded))


def words_of(text: str) -> list[str]:
    """The words of ``text``, lower case, apostrophes kept ("don't"), curly ones read straight."""
    return _WORD.findall(text.replace("’", "'").casefold())


def tone(text: str) -> Tone:
    """How warm and how trustworthy ``text`` reads, as shifts of at most ±:data:`MAX_SHIFT`.

    ``tone("Thank you, you're so kind")`` is warm; ``tone("You're a liar")``
    is cold and untrustworthy; ``tone("I don't hate you")`` leans warm.
    """
    clauses = [words_of(clause) for clause in _CLAUSE.split(text.replace("’", "'"))]
    warmth = sum(_score(words, _WARM) for words in clauses)
    trust = sum(_score(words, _TRUST) for words in clauses)
    # Being lied to cools a listener, being confided in warms one: trust counts half in warmth.
    return Tone(_cap(warmth + trust / 2), _cap(trust))


__all__ = ["MAX_SHIFT", "Tone", "tone", "words_of"]
