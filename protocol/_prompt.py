"""The message a prompt is made of, and the stop sequences that end a character's beat."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from attrs import frozen

Role = Literal["system", "user", "assistant"]


@frozen
class PromptMessage:
    """One chat message for a model: who says it (``role``, and ``name`` when a character)."""

    role: Role
    content: str
    name: str | None = None


def stop_sequences(others: Iterable[str]) -> tuple[str, ...]:
    """The tags of everyone but the speaker (``"\\nName:"``), so a beat never speaks for them."""
    return tuple(f"\n{name}:" for name in others)
