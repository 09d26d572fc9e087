"""The chat messages a prompt is made of, and how many tokens they cost."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from attrs import frozen

from ._text import estimate_tokens

Role = Literal["system", "user", "assistant"]

MESSAGE_OVERHEAD = 4
"""Estimated tokens a message costs beyond its content (role, name, separators)."""


@frozen
class PromptMessage:
    """One chat message for a model: who says it (``role``, and ``name`` when a character)."""

    role: Role
    content: str
    name: str | None = None


def message_tokens(message: PromptMessage) -> int:
    """The estimated tokens of one message, overhead included."""
    name = estimate_tokens(message.name) if message.name else 0
    return estimate_tokens(message.content) + name + MESSAGE_OVERHEAD


def prompt_tokens(messages: Iterable[PromptMessage]) -> int:
    """The estimated tokens of a whole prompt: what every budget is checked against."""
    return sum(message_tokens(m) for m in messages)
