"""Messages a client sends to the server, one class per ``type``.

The envelope fields (``type`` and ``id``) are handled by the codec; these
classes hold only the fields of their type. A command whose event keeps the
same fields subclasses the payload they share (:mod:`protocol._payloads`).
"""

from __future__ import annotations

from attrs import field, frozen

from . import _payloads as shared
from ._limits import (
    LATEST_TURNS,
    MAX_CAST,
    MAX_ID,
    MAX_INT,
    MAX_LOCATION,
    MAX_PROSE,
    MAX_TITLE,
)
from ._payloads import an_id as _id
from ._validators import (
    FieldTooLarge,
    at_most,
    in_range,
    limits_apply,
    not_blank,
    optional_at_most,
    optional_in_range,
)


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
class CreatePersona(shared.YouProfile):
    """Create a person who can take a seat at a chat's table (an addition to the protocol)."""


@frozen
class ListPersonas:
    """Ask for every persona, ``you`` first (an addition to the protocol)."""


@frozen
class UpdatePersona(shared.PersonaChanges):
    """Change some of a persona's fields (``you`` included); the ones left out stay."""


@frozen
class TakeSeat(shared.Seat):
    """This connection's turns in the chat are the persona's from now on (an addition)."""


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
    greeting: int | None = field(default=None, validator=optional_in_range(0, MAX_INT))
    """Which of the host's card greetings opens the chat (an addition): 0 is ``first_mes``,
    then its alternate greetings, then, with more than one character, its group-only ones.
    One it does not have is ``invalid``; a host without a card has only 0."""
    continue_from: str | None = field(default=None, validator=optional_at_most(MAX_ID))
    """A chat whose characters' memories and relationships seed the new chat, for the bots
    in both casts (an addition); without it the chat starts knowing nothing of any other."""


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
class Mute(shared.CastMember):
    """A cast member answers only when ``send_turn.reply_as`` forces it (an addition)."""


@frozen
class Unmute(shared.CastMember):
    """A muted cast member answers as the rules choose again (an addition to the protocol)."""


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
    queue: bool = False
    """While a turn is in flight, wait in the chat's queue (at most ``MAX_QUEUE``) instead of
    being refused with ``busy`` (an addition to the protocol)."""


@frozen
class Cancel(shared.ChatRef):
    """Stop the beat in flight, keeping what was streamed."""

    queued: bool = False
    """Also drop this connection's own queued turns of the chat (an addition)."""


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
class SelectAlternative(ChatPoint):
    """Make another alternative of a beat current (an addition).

    ``event_id`` is one of the beat's alternatives; the chat moves to the
    branch it is on, with everything that followed it there.
    """


@frozen
class Continue(shared.ChatRef):
    """Ask the chat's latest beat to go on (an addition): its speaker says more.

    The new tokens append to the same beat (``beat_started`` with ``continues``,
    tokens whose offsets follow its text, ``beat_complete`` with the whole).
    """


@frozen
class ListBranches(shared.ChatRef):
    """Ask for a chat's branches (an addition)."""


@frozen
class SwitchBranch(shared.ChatRef):
    """Make one of the chat's branches current (an addition); the whole world follows it."""

    branch_id: int = field(validator=_log_id)


@frozen
class EditTurn(ChatPoint):
    """Say one of the person's turns differently (an addition).

    A branch forks just before the turn ``event_id``, and the turn runs there
    again with the new prose; the old one stays on the branch it was on.
    """

    prose: str = field(validator=[not_blank, at_most(MAX_PROSE)])


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
class LoadOlder(shared.ChatRef):
    """The chat's visible turns before ``before_event_id``, newest ``limit`` of them (an
    addition to the protocol): what ``chat_state`` left out of a long chat."""

    before_event_id: int = field(validator=_log_id)
    limit: int = LATEST_TURNS
    """How many turns at most: 1 to ``MAX_OLDER_TURNS``; the engine answers ``invalid`` to
    any other number."""


@frozen
class UpdateCard(shared.BotRef):
    """Edit the main fields of the card a bot was made from; ``None`` leaves one as it is.

    Every other field of the card, and every key it holds that troupe does
    not know, is kept (an addition to the protocol). The bot's persona and
    greeting follow its description and first message.
    """

    description: str | None = None
    personality: str | None = None
    scenario: str | None = None
    first_mes: str | None = None
    mes_example: str | None = None
    system_prompt: str | None = None
    post_history_instructions: str | None = None

    def changes(self) -> dict[str, str]:
        """The fields given, by their card names."""
        fields = {
            "description": self.description,
            "personality": self.personality,
            "scenario": self.scenario,
            "first_mes": self.first_mes,
            "mes_example": self.mes_example,
            "system_prompt": self.system_prompt,
            "post_history_instructions": self.post_history_instructions,
        }
        return {name: value for name, value in fields.items() if value is not None}


@frozen
class AttachLorebook(shared.LorebookRef):
    """Attach a lorebook to a chat (an addition to the protocol)."""


@frozen
class DetachLorebook(shared.LorebookRef):
    """Take a lorebook off a chat (an addition to the protocol)."""


@frozen
class SetAuthorNote(shared.AuthorNoteText):
    """Set a chat's author's note; an empty text removes it (an addition to the protocol)."""


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
    max_tokens: int | None = field(default=None, validator=optional_in_range(0, MAX_INT))
    """Bounded here to what SQLite holds; the engine keeps it to 16..2048 (``invalid``)."""


@frozen
class GetStatistics:
    """Ask for the server's live figures (an addition to protocol version 1)."""


@frozen
class ListLorebooks:
    """Ask for every imported lorebook (an addition to the protocol)."""


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
    | Mute
    | Unmute
    | LoadOlder
    | ListLorebooks
    | UpdateCard
    | AttachLorebook
    | DetachLorebook
    | SetAuthorNote
    | CreatePersona
    | ListPersonas
    | UpdatePersona
    | TakeSeat
    | SelectAlternative
    | ListBranches
    | SwitchBranch
    | EditTurn
    | Continue
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
    "mute": Mute,
    "unmute": Unmute,
    "load_older": LoadOlder,
    "list_lorebooks": ListLorebooks,
    "update_card": UpdateCard,
    "attach_lorebook": AttachLorebook,
    "detach_lorebook": DetachLorebook,
    "set_author_note": SetAuthorNote,
    "create_persona": CreatePersona,
    "list_personas": ListPersonas,
    "update_persona": UpdatePersona,
    "take_seat": TakeSeat,
    "select_alternative": SelectAlternative,
    "list_branches": ListBranches,
    "switch_branch": SwitchBranch,
    "edit_turn": EditTurn,
    "continue": Continue,
}
"""The wire ``type`` of every client message: one meaning each."""

CLIENT_ALIASES: dict[str, type[ClientMessage]] = {"statistics": GetStatistics}
"""Older names still read: ``statistics`` was the command's name before it got its own."""
