"""Who the user is talking to: the host, the guest, or "ask the classifier".

The rules run before the first token, so they are cheap and only decide
what is clear: with no guest the host answers; a name settles it; prose
that names nobody and addresses nobody goes to the host. What is left —
both named, or someone addressed by "you", a vocative or a nickname — is
handed to the addressee classifier, whose safe default is the host.
"""

from __future__ import annotations

import re
from typing import Literal

from protocol import Bot

from ._names import mentions
from ._parse import parse_prose
from ._text import straighten, words

Decision = Literal["host", "guest", "ask"]
"""What the rules decided: ``"ask"`` means the addressee classifier must choose."""

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


def addressee_by_rules(prose: str, host: Bot, guest: Bot | None) -> Decision:
    """Decide the addressee from names and cues alone, or say the classifier must.

    No guest: the host. Only the guest named: the guest. Only the host
    named: the host. Both named, or neither named while the prose speaks to
    someone ("you", "hey, stranger", "Red, pass the salt"): ``"ask"``.
    Neither named and nobody addressed: the host. Names are matched as
    whole words in any case, full or by first name, anywhere in the prose
    (an OOC note may name who should answer); the second-person cues are
    read only outside OOC, since an OOC "you" speaks to the system.
    """
    if guest is None:
        return "host"
    host_named = mentions(prose, host.name)
    guest_named = mentions(prose, guest.name)
    if guest_named and not host_named:
        return "guest"
    if host_named and not guest_named:
        return "host"
    if host_named and guest_named:
        return "ask"
    return "ask" if _addresses_someone(prose) else "host"


def pick_addressee(decision: Decision, host: Bot, guest: Bot | None) -> Bot:
    """The bot a decision (or a classifier's choice) names; anything unclear is the host."""
    if decision == "guest" and guest is not None:
        return guest
    return host
