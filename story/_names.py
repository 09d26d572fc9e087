"""Finding a character's name in prose: whole words, any case, first names too."""

from __future__ import annotations

import re
from functools import lru_cache

from ._text import straighten, words

_SKIPPED = words(
    """the a an dr mr mrs ms mx miss sir dame lady lord captain capt professor prof doctor
    father mother sister brother master mistress madam saint st"""
)


def name_forms(name: str) -> tuple[str, ...]:
    """The forms of ``name`` a person may write: the full name, and its first name.

    The first name skips leading articles and titles ("The Baron" answers to
    "Baron", "Dr. Ada Vance" to "Ada"); one-letter first names are not used
    on their own.
    """
    words = straighten(name).split()
    if not words:
        return ()
    full = " ".join(words)
    forms = [full]
    rest = words
    while len(rest) > 1 and rest[0].rstrip(".").lower() in _SKIPPED:
        rest = rest[1:]
    if len(words) > 1:
        first = rest[0].rstrip(".,;:")
        if len(first) > 1 and first.lower() != full.lower():
            forms.append(first)
    return tuple(forms)


@lru_cache(maxsize=256)
def _pattern(name: str) -> re.Pattern[str] | None:
    forms = name_forms(name)
    if not forms:
        return None
    alternatives = "|".join(
        r"\s+".join(re.escape(word) for word in form.split())
        for form in sorted(forms, key=len, reverse=True)
    )
    # Lookarounds rather than \b: a name may start or end with punctuation ("Dr.").
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.IGNORECASE)


def mentions(text: str, name: str) -> bool:
    """Whether ``text`` names ``name`` as a whole word, in any case (first name included).

    "Mira's" names Mira; "Mirabel" does not. Curly apostrophes count as straight.
    """
    pattern = _pattern(name)
    return pattern is not None and pattern.search(straighten(text)) is not None


def all_mentions(text: str, name: str) -> tuple[tuple[int, str], ...]:
    """Each place ``text`` names ``name`` (as :func:`mentions` reads it), with the words used."""
    pattern = _pattern(name)
    if pattern is None:
        return ()
    return tuple((m.start(), m.group(0).casefold()) for m in pattern.finditer(straighten(text)))
