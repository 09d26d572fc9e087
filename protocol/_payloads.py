"""What a command and the event it leads to have in common, declared once.

A command is what a client asks for; its event is what the log keeps once
it is done. Where the two carry the same fields, both subclass one of these
frozen classes, so each field's type, default and limits are written once.
The event adds what the server decided (the new thing's id, say). A chat
message that repeats an event to the chat's watchers may subclass the same
class (``presence`` and ``presence_changed`` are one cast member of a chat).
"""

from __future__ import annotations

from attrs import field, frozen

from . import _limits as limits
from ._shapes import Artifacts
from ._validators import at_most, not_blank, optional_at_most

an_id = at_most(limits.MAX_ID)
"""The limit of every id a message or an event names."""


@frozen
class YouProfile:
    """A name and a persona: the person's (``set_you``, ``you_updated``), or a bot's."""

    name: str = field(validator=[not_blank, at_most(limits.MAX_NAME)])
    persona: str = field(validator=at_most(limits.MAX_PERSONA))


@frozen
class PersonaChanges:
    """Some of a persona's fields; ``None`` leaves one as it is (``update_persona``,
    ``persona_updated``). ``persona_id`` may be ``you``."""

    persona_id: str = field(validator=an_id)
    name: str | None = field(default=None, validator=optional_at_most(limits.MAX_NAME))
    persona: str | None = field(default=None, validator=optional_at_most(limits.MAX_PERSONA))


@frozen
class BotProfile(YouProfile):
    """A character as a person writes it (``create_bot``, ``bot_created``)."""

    greeting: str = field(default="", validator=at_most(limits.MAX_GREETING))


@frozen
class BotRef:
    """One bot, by id (``delete_bot``, ``bot_deleted``)."""

    bot_id: str = field(validator=an_id)


@frozen
class BotChanges(BotRef):
    """Some of a bot's fields; ``None`` leaves one as it is (``update_bot``, ``bot_updated``)."""

    name: str | None = field(default=None, validator=optional_at_most(limits.MAX_NAME))
    persona: str | None = field(default=None, validator=optional_at_most(limits.MAX_PERSONA))
    greeting: str | None = field(default=None, validator=optional_at_most(limits.MAX_GREETING))


@frozen
class ChatCast:
    """Who a chat is with, and where it starts (``create_chat``, ``chat_created``)."""

    host_bot_id: str = field(validator=an_id)
    guest_bot_id: str | None = field(default=None, validator=optional_at_most(limits.MAX_ID))
    location: str | None = field(default=None, validator=optional_at_most(limits.MAX_LOCATION))


@frozen
class ChatRef:
    """One chat, by id: how every command and event about one chat starts."""

    chat_id: str = field(validator=an_id)


@frozen
class AuthorNoteText(ChatRef):
    """A chat's author's note and where it goes (``set_author_note``, ``author_note_set``).

    ``depth`` counts messages from the end of the dialogue (0: after the
    last). Its range and the text's length are the domain's to judge
    (``author_note_problem``): a note out of bounds is ``invalid``.
    """

    text: str
    depth: int = 4


@frozen
class CastMember(ChatRef):
    """One bot of a chat's cast (``add_to_cast``, ``enter_scene``, ``cast_added``,
    ``memory_written``, ``presence``, ...)."""

    bot_id: str = field(validator=an_id)


@frozen
class Seat(ChatRef):
    """A persona at a chat's table (``take_seat``, ``seat_taken``)."""

    persona_id: str = field(validator=an_id)


@frozen
class LorebookRef(ChatRef):
    """A lorebook and a chat (``attach_lorebook``, ``lorebook_attached``, ...)."""

    lorebook_id: str = field(validator=an_id)


@frozen
class BeatOf(ChatRef):
    """Who speaks a beat, answering which user turn (``assistant_turn_started``,
    ``assistant_turn``)."""

    speaker_id: str = field(validator=an_id)
    user_turn_id: int


@frozen
class Prose(ChatRef):
    """What the person wrote in a chat (``send_turn``, ``user_turn``)."""

    prose: str = field(validator=[not_blank, at_most(limits.MAX_PROSE)])


@frozen
class WorldEventPlan(ChatRef):
    """A world event as planned (``create_world_event``, ``world_event_created``)."""

    title: str = field(validator=[not_blank, at_most(limits.MAX_TITLE)])
    description: str = field(default="", validator=at_most(limits.MAX_DESCRIPTION))
    artifacts: Artifacts = field(factory=Artifacts)
