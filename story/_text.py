"""Small text functions shared by the parser, the prompts and the classifiers."""

from __future__ import annotations

import re

CHARS_PER_TOKEN = 4
"""The rough size of a token, in characters, that every budget is counted in."""

ELLIPSIS = "…"

_SPACES = re.compile(r"\s+")
_QUOTE_MAP = str.maketrans({"’": "'", "‘": "'", "ʼ": "'", "“": '"', "”": '"'})


def words(text: str) -> frozenset[str]:
    """The whitespace-separated words of ``text``: how the rules' word lists are written."""
    return frozenset(text.split())


def estimate_tokens(text: str) -> int:
    """Estimated model tokens of ``text``: characters / 4, rounded up.

    Deliberately tokenizer-free so budgets mean the same thing for every
    backend; real tokenizers land within a small factor of it for prose.
    """
    return -(-len(text) // CHARS_PER_TOKEN)


def collapse(text: str) -> str:
    """``text`` with every run of whitespace turned into one space, trimmed."""
    return _SPACES.sub(" ", text).strip()


def straighten(text: str) -> str:
    """``text`` with curly apostrophes and double quotes made straight, for matching."""
    return text.translate(_QUOTE_MAP)


def shorten(text: str, max_chars: int) -> str:
    """``text`` cut to at most ``max_chars`` characters, at a word if one is near, with "…".

    The result is never longer than ``max_chars``; a non-positive bound gives "".
    """
    if len(text) <= max_chars:
        return text
    if max_chars <= 0:
        return ""
    if max_chars == 1:
        return ELLIPSIS
    cut = text[: max_chars - 1]
    # Prefer ending on a word, unless that throws away most of what fits.
    space = cut.rfind(" ")
    if space >= max_chars * 0.7:
        cut = cut[:space]
    return cut.rstrip() + ELLIPSIS


def shorten_tail(text: str, max_chars: int) -> str:
    """Like :func:`shorten` but keeps the end of ``text`` (the latest words) instead."""
    if len(text) <= max_chars:
        return text
    if max_chars <= 0:
        return ""
    if max_chars == 1:
        return ELLIPSIS
    cut = text[len(text) - (max_chars - 1) :]
    space = cut.find(" ")
    if 0 <= space <= max_chars * 0.3:
        cut = cut[space + 1 :]
    return ELLIPSIS + cut.lstrip()
