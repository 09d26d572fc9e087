"""Token estimates: cheap, deterministic, and on the safe side."""

from __future__ import annotations


def estimate_tokens(text: str) -> int:
    """About four characters a token, rounded up; every message costs a few more."""
    return (len(text) + 3) // 4


def truncate_to_tokens(text: str, tokens: int) -> str:
    """Cut ``text`` to about ``tokens`` tokens, at a word boundary, marking the cut."""
    if estimate_tokens(text) <= tokens:
        return text
    limit = max(0, tokens * 4 - 1)
    cut = text[:limit]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip() + "…"
