"""Messages a client sends to the server, one class per ``type``.

The envelope fields (``type`` and ``id``) are handled by the codec; these
classes hold only the fields of their type. A command whose event keeps the
same fields subclasses the payload they share (:mod:`protocol._payloads`).
"""

from __future__ import annotations

from attrs import field, frozen

from . import _payloads as shared
from ._limits import MAX_CAST, MAX_ID, MAX_INT, MAX_LOCATION, MAX_PROSE, MAX_TITLE
from ._payloads import an_id as _id
from ._validators import FieldTooLarge, in_range, limits_apply, optional_at_most, optional_in_range


def _cast_ids(_inst: object, _attribute: object, value: tuple[str, ...] | None) -> None:
    # How many and which bots is the engine's to judge (``invalid``, ``not_found``);
    # here only what no cast could ever hold.
    if value is None or not limits_apply():
        return
    if len(value) > 4 * MAX_CAST:
        raise FieldTooLarge(f"a cast names at most {MAX_CAST} bots")
    for bot_id in value:
        if len(bot_id) > MAX_ID:
            raise FieldTooLarge(f"a bot id has at most {MAX_ID} characters")


_log_id = in_range(1, MAX_INT)
"""Event and memory ids are positions in the log: 1 and up, within SQLite's integers."""


@frozen
class Hello:
    """Start of a conversation: the client says which protocol it speaks."""

    protocol: int


@frozen
class SetYou(shared.YouProfile):
    """Change the user's own name and persona."""


@frozen
class ListBots:
    """Ask for every bot."""


@frozen
class CreateBot(shared.BotProfile):
    """Create a character."""


@frozen
class UpdateBot(shared.BotChanges):
    """Change some of a bot's fields; the ones left out stay as they are."""


@frozen
class DeleteBot(shared.BotRef):
    """Delete a bot; chats where it was the guest go on one to one."""


@frozen
class ListChats:
    """Ask for every chat."""


@frozen
class CreateChat:
    """Start a chat with a host bot and, optionally, a guest bot; the title is made if left out.

    ``cast`` (an addition to the protocol) names 1 to 8 bots, the host first.
    With a cast, ``host_bot_id`` and ``guest_bot_id`` may be left out; given,
    they must be the cast's first and second bots. One of the two is needed.
    """

    host_bot_id: str | None = field(default=None, validator=optional_at_most(MAX_ID))
    guest_bot_id: str | None = field(default=None, validator=optional_at_most(MAX_ID))
    location: str | None = field(default=None, validator=optional_at_most(MAX_LOCATION))
    title: str | None = field(default=None, validator=optional_at_most(MAX_TITLE))
    cast: tuple[str, ...] | None = field(default=None, validator=_cast_ids)


@frozen
class AddToCast(shared.CastMember):
    """Add a bot to a chat's cast; it enters the scene (an addition to the protocol)."""


@frozen
class RemoveFromCast(shared.CastMember):
    """Take a bot out of a chat's cast, and out of the scene; never the host (an addition)."""


@frozen
class EnterScene(shared.CastMember):
    """A cast member who is away comes into the scene (an addition to the protocol)."""


@frozen
class LeaveScene(shared.CastMember):
    """A cast member present leaves the scene; it witnesses nothing until it returns."""


@frozen
class OpenChat(shared.ChatRef):
    """Subscribe to a chat; ``after_seq`` asks for what was missed since then."""

    after_seq: int | None = field(default=None, validator=optional_in_range(0, MAX_INT))


@frozen
class CloseChat(shared.ChatRef):
    """Stop receiving a chat's live messages on this connection."""


@frozen
class SendTurn(shared.Prose):
    """The user's prose for the next turn."""

    reply_as: str | None = field(default=None, validator=optional_at_most(MAX_ID))
    """A bot present in the chat's scene who must answer (muted or not); ``None``: the rules
    choose. An unknown bot is ``not_found``, one not present ``invalid``."""


@frozen
class Cancel(shared.ChatRef):
    """Stop the beat in flight, keeping what was streamed."""


@frozen
class ChatPoint(shared.ChatRef):
    """A point of a chat's log: one of its events."""

    event_id: int = field(validator=_log_id)


@frozen
class Regenerate(ChatPoint):
    """Replace the chat's latest assistant turn, optionally with edited user prose."""

    prose: str | None = field(default=None, validator=optional_at_most(MAX_PROSE))


@frozen
class RewindPreview(ChatPoint):
    """Count what a rewind to ``event_id`` would remove."""


@frozen
class Rewind(ChatPoint):
    """Keep the chat up to and including ``event_id``; remove what came after."""


@frozen
class ListMemories:
    """A bot's memories, optionally of one chat only."""

    bot_id: str = field(validator=_id)
    chat_id: str | None = field(default=None, validator=optional_at_most(MAX_ID))


@frozen
class PinMemory:
    """Pin or unpin a memory by hand."""

    memory_id: int = field(validator=_log_id)
    pinned: bool


@frozen
class CreateWorldEvent(shared.WorldEventPlan):
    """Plan a world event in a chat (an addition to protocol version 1)."""


@frozen
class UpdateChatSettings(shared.ChatRef):
    """Change some of a chat's sampler settings; the ones left out stay (an addition).

    Each is bounded (see ``protocol.SAMPLER_BOUNDS``); a value out of bounds
    is ``invalid`` and nothing is written.
    """

    temperature: float | None = None
    top_p: float | None = None
    min_p: float | None = None
    repeat_penalty: float | None = None
    max_tokens: int | None = None


@frozen
class GetStatistics:
    """Ask for the server's live figures (an addition to protocol version 1)."""


ClientMessage = (
    Hello
    | SetYou
    | ListBots
    | CreateBot
    | UpdateBot
    | DeleteBot
    | ListChats
    | CreateChat
    | OpenChat
    | CloseChat
    | SendTurn
    | Cancel
    | Regenerate
    | RewindPreview
    | Rewind
    | ListMemories
    | PinMemory
    | UpdateChatSettings
    | CreateWorldEvent
    | GetStatistics
    | AddToCast
    | RemoveFromCast
    | EnterScene
    | LeaveScene
)

CLIENT_TYPES: dict[str, type[ClientMessage]] = {
    "hello": Hello,
    "set_you": SetYou,
    "list_bots": ListBots,
    "create_bot": CreateBot,
    "update_bot": UpdateBot,
    "delete_bot": DeleteBot,
    "list_chats": ListChats,
    "create_chat": CreateChat,
    "open_chat": OpenChat,
    "close_chat": CloseChat,
    "send_turn": SendTurn,
    "cancel": Cancel,
    "regenerate": Regenerate,
    "rewind_preview": RewindPreview,
    "rewind": Rewind,
    "list_memories": ListMemories,
    "pin_memory": PinMemory,
    "update_chat_settings": UpdateChatSettings,
    "create_world_event": CreateWorldEvent,
    "get_statistics": GetStatistics,
    "add_to_cast": AddToCast,
    "remove_from_cast": RemoveFromCast,
    "enter_scene": EnterScene,
    "leave_scene": LeaveScene,
}
"""The wire ``type`` of every client message: one meaning each."""

CLIENT_ALIASES: dict[str, type[ClientMessage]] = {"statistics": GetStatistics}
"""Older names still read: ``statistics`` was the command's name before it got its own."""
