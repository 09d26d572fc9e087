"""What a command and the event it leads to have in common, declared once.

A command is what a client asks for; its event is what the log keeps once
it is done. Where the two carry the same fields, both subclass one of these
frozen classes, so each field's type, default and limits are written once.
The command adds nothing of its own; the event adds the id the server gave.
"""

from __future__ import annotations

from attrs import field, frozen

from ._limits import (
    MAX_DESCRIPTION,
    MAX_GREETING,
    MAX_ID,
    MAX_LOCATION,
    MAX_NAME,
    MAX_PERSONA,
    MAX_PROSE,
    MAX_TITLE,
)
from ._shapes import Artifacts
from ._validators import at_most, not_blank, optional_at_most

an_id = at_most(MAX_ID)
"""The limit of every id a message or an event names."""


@frozen
class YouProfile:
    """The person's name and persona (``set_you``, ``you_updated``)."""

    name: str = field(validator=[not_blank, at_most(MAX_NAME)])
    persona: str = field(validator=at_most(MAX_PERSONA))


@frozen
class BotProfile:
    """A character as a person writes it (``create_bot``, ``bot_created``)."""

    name: str = field(validator=[not_blank, at_most(MAX_NAME)])
    persona: str = field(validator=at_most(MAX_PERSONA))
    greeting: str = field(default="", validator=at_most(MAX_GREETING))


@frozen
class BotChanges:
    """Some of a bot's fields; ``None`` leaves one as it is (``update_bot``, ``bot_updated``)."""

    bot_id: str = field(validator=an_id)
    name: str | None = field(default=None, validator=optional_at_most(MAX_NAME))
    persona: str | None = field(default=None, validator=optional_at_most(MAX_PERSONA))
    greeting: str | None = field(default=None, validator=optional_at_most(MAX_GREETING))


@frozen
class BotRef:
    """One bot, by id (``delete_bot``, ``bot_deleted``)."""

    bot_id: str = field(validator=an_id)


@frozen
class ChatCast:
    """Who a chat is with, and where it starts (``create_chat``, ``chat_created``)."""

    host_bot_id: str = field(validator=an_id)
    guest_bot_id: str | None = field(default=None, validator=optional_at_most(MAX_ID))
    location: str | None = field(default=None, validator=optional_at_most(MAX_LOCATION))


@frozen
class Prose:
    """What the person wrote in a chat (``send_turn``, ``user_turn``)."""

    chat_id: str = field(validator=an_id)
    prose: str = field(validator=[not_blank, at_most(MAX_PROSE)])


@frozen
class WorldEventPlan:
    """A world event as planned (``create_world_event``, ``world_event_created``)."""

    chat_id: str = field(validator=an_id)
    title: str = field(validator=[not_blank, at_most(MAX_TITLE)])
    description: str = field(default="", validator=at_most(MAX_DESCRIPTION))
    artifacts: Artifacts = field(factory=Artifacts)
