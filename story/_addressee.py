"""Who the person is talking to, among N characters: the rules, or "ask the classifier".

The rules run before the first token, so they are cheap and only decide
what is clear: names (several named answer in the order named), else the
last character who spoke to the person, else the host. What is left — a
name two characters share, or someone addressed without a name before
anyone spoke — is handed to the addressee classifier, whose safe default is
the host.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence

from protocol import Bot

from ._names import all_mentions
from ._parse import parse_prose
from ._text import straighten, words

_SECOND_PERSON = re.compile(
    r"(?<!\w)(?:you|your|yours|yourself|yourselves|ya|y'all|thee|thou|thy|thine)(?!\w)",
    re.IGNORECASE,
)
_GREETING = re.compile(
    r"^(?:hey|hi|hello|oi|yo|ho|greetings|welcome|evening|morning|afternoon|good\s+"
    r"(?:morning|evening|afternoon|night|day)|excuse\s+me|pardon\s+me)\b[\s,!.]*(\w[\w'-]*)",
    re.IGNORECASE,
)
_VOCATIVE_WORDS = (
    r"(?:my\s+)?(?:friend|friends|stranger|sir|madam|ma'am|miss|mister|lady|love|darling|"
    r"dear|boss|mate|pal|buddy|kid|lad|lass|boy|girl|old\s+man|old\s+woman|gentlemen|"
    r"ladies|folks|everyone|everybody|you\s+two|both\s+of\s+you|all\s+of\s+you)"
)
_VOCATIVE_NOUN = re.compile(
    rf"(?:^|,)\s*{_VOCATIVE_WORDS}\s*(?:[,.!?…]|$)", re.IGNORECASE | re.MULTILINE
)
_LEADING_NAME = re.compile(r"(?:^|[.!?]\s+)([A-Z][\w'-]+),\s")
_TRAILING_NAME = re.compile(r",\s*([A-Z][\w'-]+)\s*[.!?…]*$")
# Capitalised words that open or close a sentence with a comma without naming anyone.
_NOT_NAMES = words(
    """well oh ah ahh aha eh hm hmm um uh er yes yeah yep aye no nope nah nay okay ok alright
    right sure fine so now look listen see wait sorry please thanks cheers indeed honestly
    actually anyway anyways besides however still then also and but or yet true again first
    second third finally meanwhile later gods god damn hell blast ugh ha haha huh hey hi
    hello oi evening morning afternoon night goodnight welcome alas perhaps maybe frankly
    clearly obviously seriously really truly certainly course sadly luckily look here there
    today tomorrow tonight yesterday together"""
)


def _addresses_someone(prose: str) -> bool:
    """Whether the (non-OOC) prose speaks to someone without naming them."""
    in_story = [s for s in parse_prose(straighten(prose)) if s.kind != "ooc"]
    if any(_SECOND_PERSON.search(s.text) for s in in_story):
        return True
    for segment in in_story:
        if segment.kind != "dialogue":
            continue
        text = segment.text
        if _VOCATIVE_NOUN.search(text):
            return True
        greeting = _GREETING.match(text)
        if greeting is not None and greeting.group(1).lower() not in _NOT_NAMES:
            return True
        for match in (*_LEADING_NAME.finditer(text), *_TRAILING_NAME.finditer(text)):
            if match.group(1).lower() not in _NOT_NAMES:
                return True
    return False


def addressees_by_rules(
    prose: str,
    characters: Sequence[Bot],
    last_speaker: str | None = None,
    muted: Collection[str] = frozenset(),
) -> tuple[str, ...] | None:
    """Who answers, in order, from names and cues alone; ``None``: the classifier must choose.

    Only characters not ``muted`` are chosen (when every one is muted, the
    host answers). Names decide first: every character named, full name or
    first word, as a whole word in any case, anywhere in the prose (an OOC
    note may name who should answer), answers in the order first named. A
    name that two characters share ("Ana" for Ana Cole and Ana Reyes) cannot
    decide; where two names start at the same word, the longer one is meant
    ("Ana Cole"). Nobody named: the last character who spoke to the person; before
    anyone did, the host, unless the prose speaks to someone without naming
    them ("you", "hey, stranger", "Red, pass the salt"), which the
    classifier decides. The second-person cues are read only outside OOC.
    """
    free = [c for c in characters if c.id not in muted] or list(characters[:1])
    if len(free) == 1:
        return (free[0].id,)
    spots: dict[int, list[tuple[int, str]]] = {}
    for c in free:
        for at, used in all_mentions(prose, c.name):
            spots.setdefault(at, []).append((len(used), c.id))
    order: list[str] = []
    for at in sorted(spots):
        longest = max(size for size, _ in spots[at])
        best = [bot_id for size, bot_id in spots[at] if size == longest]
        if len(best) > 1:
            return None  # a name two characters share
        if best[0] not in order:
            order.append(best[0])
    if order:
        return tuple(order)
    ids = [c.id for c in free]
    if last_speaker in ids:
        return (last_speaker,)
    return None if _addresses_someone(prose) else (free[0].id,)
