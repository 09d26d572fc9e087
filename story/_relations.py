"""Relationship numbers in words, as a character is told them (their bounds are the protocol's)."""

from __future__ import annotations

from protocol import EDGE_DEFAULT, EDGE_MAX, EDGE_MIN, Edge, clamp_edge

__all__ = ["EDGE_DEFAULT", "EDGE_MAX", "EDGE_MIN", "clamp_edge", "describe_edge", "edge_words"]

_AFFINITY_WORDS = ("hostile", "cold", "neutral", "warm", "devoted")
_TRUST_WORDS = ("distrustful", "wary", "undecided", "trusting", "wholly trusting")


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
