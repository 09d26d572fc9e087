"""How many tokens a prompt's messages cost (the message type is the protocol's)."""

from __future__ import annotations

from collections.abc import Iterable

from protocol import PromptMessage, Role

from ._text import estimate_tokens

__all__ = ["MESSAGE_OVERHEAD", "PromptMessage", "Role", "message_tokens", "prompt_tokens"]

MESSAGE_OVERHEAD = 4
"""Estimated tokens a message costs beyond its content (role, name, separators)."""


def message_tokens(message: PromptMessage) -> int:
    """The estimated tokens of one message, overhead included."""
    name = estimate_tokens(message.name) if message.name else 0
    return estimate_tokens(message.content) + name + MESSAGE_OVERHEAD


def prompt_tokens(messages: Iterable[PromptMessage]) -> int:
    """The estimated tokens of a whole prompt: what every budget is checked against."""
    return sum(message_tokens(m) for m in messages)
