"""Relationship numbers: their bounds, and how a character is told them in words."""

from __future__ import annotations

import math

from protocol import Edge

EDGE_MIN = 0
EDGE_MAX = 100
EDGE_DEFAULT = 50
"""Affinity and trust of a pair that has no history yet."""

_AFFINITY_WORDS = ("hostile", "cold", "neutral", "warm", "devoted")
_TRUST_WORDS = ("distrustful", "wary", "undecided", "trusting", "wholly trusting")


def clamp_edge(value: float) -> int:
    """An affinity or trust value as stored: rounded, within 0..100.

    Infinities clamp to the nearest bound; NaN is the neutral 50.
    """
    if math.isnan(value):
        return EDGE_DEFAULT
    if math.isinf(value):
        return EDGE_MAX if value > 0 else EDGE_MIN
    rounded = math.floor(abs(value) + 0.5) * (1 if value >= 0 else -1)
    return max(EDGE_MIN, min(EDGE_MAX, rounded))


def _band(value: int, words: tuple[str, ...]) -> str:
    return words[min(len(words) - 1, clamp_edge(value) * len(words) // (EDGE_MAX + 1))]


def edge_words(affinity: int, trust: int) -> str:
    """Affinity and trust in words and numbers: ``"warm (affinity 65/100), wary (trust 30/100)"``.

    Both: the words carry the feeling, the numbers let the model tell 61 from 79.
    """
    a, t = clamp_edge(affinity), clamp_edge(trust)
    return (
        f"{_band(a, _AFFINITY_WORDS)} (affinity {a}/100), {_band(t, _TRUST_WORDS)} (trust {t}/100)"
    )


def describe_edge(edge: Edge | None, *, details: bool = True) -> str:
    """How the source feels about the target, for a prompt; ``None`` is a pair with no history.

    With ``details`` the edge's summary and known facts follow the numbers.
    """
    if edge is None:
        return f"no history yet; {edge_words(EDGE_DEFAULT, EDGE_DEFAULT)}"
    parts = [edge_words(edge.affinity, edge.trust)]
    if details:
        summary = edge.summary.strip().rstrip(".")
        if summary:
            parts.append(summary)
        facts = [f.strip().rstrip(".") for f in edge.knowledge_facts if f.strip()]
        if facts:
            parts.append("Known: " + "; ".join(facts))
    return ". ".join(parts)
