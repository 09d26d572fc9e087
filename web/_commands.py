"""What the gateway does with each client message: one handler per type, in a table.

A handler turns one decoded message into the engine call it stands for and
returns the direct answer (or None when a chat's watch sends it). The table
also says which commands are *slow*: those that can wait long for something
other than their own reply. A slow command runs beside the connection's
reader, so a ``cancel`` sent after it is read and answered meanwhile; its
answer still carries its ``reply_to``, but may come after the answers to
commands sent later. Every other command runs in the reader, so their
answers go out in the order the commands came in.

Slow: ``delete_bot`` (it waits for the turns of the chats where the bot is
the guest to settle, however long their beats stream), ``rewind`` and
``switch_branch`` (each replays the chat's events on its new path: the longest
job the store does for one chat). ``regenerate`` and ``create_world_event`` are not: a regenerate
is refused with ``busy`` rather than waiting for a turn, and both make only
short store calls before the turn they start runs on its own.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

import protocol as p

if TYPE_CHECKING:
    from ._connection import Connection

Answer = p.ServerMessage | None
"""A command's direct answer; None when the chat's watch sends it."""

Handler = Callable[["Connection", Any, str | None], Awaitable[Answer]]
"""``handler(connection, message, reply_to)``."""

Recover = Callable[["Connection", Any, int], Awaitable[p.ServerMessage]]
"""``recover(connection, message, first_event_id)``: a written command's answer, rebuilt
when its record lacks it (a crash came between the write and the answer)."""

M = TypeVar("M", bound=p.ClientMessage)


@attrs.frozen
class Command:
    """How the gateway runs one client message type."""

    handle: Handler
    slow: bool = False
    """It may wait long for turns or the store: it runs beside the reader."""
    recover: Recover | None = None
    """Set for a command that writes: sent with a ``command_id``, it runs at most once,
    and a retry gets the first answer (see ``Engine.once``); this rebuilds a lost one."""


def _command(
    kind: type[M],
    handle: Callable[[Connection, M, str | None], Awaitable[Answer]],
    *,
    slow: bool = False,
    recover: Callable[[Connection, M, int], Awaitable[p.ServerMessage]] | None = None,
) -> tuple[type[object], Command]:
    # Typed per message class, so a handler can only be filed under the type it reads.
    return kind, Command(handle, slow, recover)


def command_chat(message: object) -> str:
    """The chat a command is about, ``''`` for none: half of its command key."""
    chat_id = getattr(message, "chat_id", None)
    return chat_id if isinstance(chat_id, str) else ""


# --- answers rebuilt from a command's record (its first event, or the retry's own fields) ---


async def _ok(_c: Connection, _m: object, _first: int) -> p.ServerMessage:
    return p.Ok()


def _lost(kind: str) -> p.ProtocolError:
    return p.ProtocolError(
        "invalid",
        f"this {kind} already ran, but its answer was lost in a crash; the chat shows what it"
        " did (send a new command_id to run it again)",
    )


async def _accepted_again(c: Connection, m: Any, first: int) -> p.ServerMessage:
    """``accepted`` of a command whose first write was (or led to) the person's turn."""
    event = await c.engine.event(first)
    forked = event.event if event is not None else None
    if isinstance(forked, p.events.BranchForked) and forked.reason == "regenerate":
        return p.Accepted(m.chat_id, forked.at_event_id)
    turn = await c.engine.first_user_turn(m.chat_id, first) if first else None
    if turn is None:
        raise _lost("turn")
    return p.Accepted(m.chat_id, turn)


async def _created_bot(c: Connection, _m: object, first: int) -> p.ServerMessage:
    event = await c.engine.event(first)
    if event is None or not isinstance(event.event, p.events.BotCreated):
        raise _lost("create_bot")
    return p.BotReply(await c.engine.bot(event.event.bot_id))


async def _created_persona(c: Connection, _m: object, first: int) -> p.ServerMessage:
    event = await c.engine.event(first)
    if event is None or not isinstance(event.event, p.events.PersonaCreated):
        raise _lost("create_persona")
    return p.PersonaReply(await c.engine.persona(event.event.persona_id))


async def _created_chat(c: Connection, _m: object, first: int) -> p.ServerMessage:
    event = await c.engine.event(first)
    if event is None or event.chat_id is None:
        raise _lost("create_chat")
    return p.ChatReply(await c.engine.chat(event.chat_id))


async def _bot_now(c: Connection, m: Any, _first: int) -> p.ServerMessage:
    return p.BotReply(await c.engine.bot(m.bot_id))


async def _chat_now(c: Connection, m: Any, _first: int) -> p.ServerMessage:
    return p.ChatReply(await c.engine.chat(m.chat_id))


async def _you_now(c: Connection, _m: object, _first: int) -> p.ServerMessage:
    return p.You(await c.engine.you())


async def _persona_now(c: Connection, m: p.UpdatePersona, _first: int) -> p.ServerMessage:
    return p.PersonaReply(await c.engine.persona(m.persona_id))


async def _memory_now(c: Connection, m: p.PinMemory, _first: int) -> p.ServerMessage:
    return p.MemoryReply(await c.engine.memory(m.memory_id))


async def _settings_now(c: Connection, m: p.UpdateChatSettings, _first: int) -> p.ServerMessage:
    unchanged = p.ChatSettings(None, None, None, None, None)  # writes nothing: reads them
    return p.ChatSettingsReply(
        m.chat_id, await c.engine.update_chat_settings(m.chat_id, unchanged)
    )


async def _rewound_again(_c: Connection, m: p.Rewind, _first: int) -> p.ServerMessage:
    return p.Rewound(m.chat_id, m.event_id)


async def _hello(c: Connection, m: p.Hello, _: str | None) -> Answer:
    if m.protocol != p.PROTOCOL_VERSION:
        raise p.ProtocolError(
            "bad_message",
            f"protocol {m.protocol} is not spoken here; this server speaks {p.PROTOCOL_VERSION}",
        )
    return p.Welcome(p.PROTOCOL_VERSION, c.engine.server_version, await c.engine.you())


async def _set_you(c: Connection, m: p.SetYou, _: str | None) -> Answer:
    return p.You(await c.engine.set_you(m.name, m.persona))


async def _list_bots(c: Connection, _m: p.ListBots, _: str | None) -> Answer:
    return p.Bots(await c.engine.list_bots())


async def _create_bot(c: Connection, m: p.CreateBot, _: str | None) -> Answer:
    return p.BotReply(await c.engine.create_bot(m.name, m.persona, m.greeting))


async def _update_bot(c: Connection, m: p.UpdateBot, _: str | None) -> Answer:
    return p.BotReply(await c.engine.update_bot(m.bot_id, m.name, m.persona, m.greeting))


async def _delete_bot(c: Connection, m: p.DeleteBot, _: str | None) -> Answer:
    await c.engine.delete_bot(m.bot_id)
    return p.Ok()


async def _list_lorebooks(c: Connection, _m: p.ListLorebooks, _: str | None) -> Answer:
    return p.Lorebooks(await c.engine.list_lorebooks())


async def _list_chats(c: Connection, _m: p.ListChats, _: str | None) -> Answer:
    return p.Chats(await c.engine.list_chats())


async def _create_chat(c: Connection, m: p.CreateChat, _: str | None) -> Answer:
    chat = await c.engine.create_chat(
        m.host_bot_id,
        m.guest_bot_id,
        m.location,
        m.title,
        cast=m.cast,
        greeting=m.greeting,
        continue_from=m.continue_from,
    )
    return p.ChatReply(chat)


async def _add_to_cast(c: Connection, m: p.AddToCast, _: str | None) -> Answer:
    return p.ChatReply(await c.engine.add_to_cast(m.chat_id, m.bot_id))


async def _remove_from_cast(c: Connection, m: p.RemoveFromCast, _: str | None) -> Answer:
    return p.ChatReply(await c.engine.remove_from_cast(m.chat_id, m.bot_id))


async def _enter_scene(c: Connection, m: p.EnterScene, _: str | None) -> Answer:
    await c.engine.enter_scene(m.chat_id, m.bot_id)
    return p.Ok()


async def _leave_scene(c: Connection, m: p.LeaveScene, _: str | None) -> Answer:
    await c.engine.leave_scene(m.chat_id, m.bot_id)
    return p.Ok()


async def _mute(c: Connection, m: p.Mute, _: str | None) -> Answer:
    return p.ChatReply(await c.engine.mute(m.chat_id, m.bot_id))


async def _unmute(c: Connection, m: p.Unmute, _: str | None) -> Answer:
    return p.ChatReply(await c.engine.unmute(m.chat_id, m.bot_id))


async def _load_older(c: Connection, m: p.LoadOlder, _: str | None) -> Answer:
    return await c.engine.load_older(m.chat_id, m.before_event_id, m.limit)


async def _update_card(c: Connection, m: p.UpdateCard, _: str | None) -> Answer:
    return p.BotReply(await c.engine.update_card(m.bot_id, m.changes()))


async def _attach_lorebook(c: Connection, m: p.AttachLorebook, _: str | None) -> Answer:
    await c.engine.attach_lorebook(m.chat_id, m.lorebook_id)
    return p.Ok()


async def _detach_lorebook(c: Connection, m: p.DetachLorebook, _: str | None) -> Answer:
    await c.engine.detach_lorebook(m.chat_id, m.lorebook_id)
    return p.Ok()


async def _set_author_note(c: Connection, m: p.SetAuthorNote, _: str | None) -> Answer:
    await c.engine.set_author_note(m.chat_id, m.text, m.depth)
    return p.Ok()


async def _open_chat(c: Connection, m: p.OpenChat, reply_to: str | None) -> Answer:
    await c.open_chat(m.chat_id, m.after_seq, reply_to)
    return None  # the watch sends the answer, in its place among the chat's messages


async def _close_chat(c: Connection, m: p.CloseChat, _: str | None) -> Answer:
    return await c.close_chat(m.chat_id)


async def _send_turn(c: Connection, m: p.SendTurn, _: str | None) -> Answer:
    answer = await c.engine.send_or_queue(
        m.chat_id, m.prose, m.reply_as, person_id=c.seat(m.chat_id), queue=m.queue
    )
    return answer if isinstance(answer, p.Queued) else p.Accepted(m.chat_id, answer)


async def _cancel(c: Connection, m: p.Cancel, _: str | None) -> Answer:
    await c.engine.cancel(m.chat_id, queued_by=c.seat(m.chat_id) if m.queued else None)
    return p.Ok()


async def _create_persona(c: Connection, m: p.CreatePersona, _: str | None) -> Answer:
    return p.PersonaReply(await c.engine.create_persona(m.name, m.persona))


async def _list_personas(c: Connection, _m: p.ListPersonas, _: str | None) -> Answer:
    return p.Personas(await c.engine.list_personas())


async def _update_persona(c: Connection, m: p.UpdatePersona, _: str | None) -> Answer:
    return p.PersonaReply(await c.engine.update_persona(m.persona_id, m.name, m.persona))


async def _take_seat(c: Connection, m: p.TakeSeat, _: str | None) -> Answer:
    persona = await c.engine.take_seat(m.chat_id, m.persona_id)
    c.seats[m.chat_id] = persona.id  # only once the seat is taken: a refusal changes nothing
    return p.PersonaReply(persona)


async def _regenerate(c: Connection, m: p.Regenerate, _: str | None) -> Answer:
    return p.Accepted(m.chat_id, await c.engine.regenerate(m.chat_id, m.event_id, m.prose))


async def _continue(c: Connection, m: p.Continue, _: str | None) -> Answer:
    return p.Accepted(m.chat_id, await c.engine.continue_beat(m.chat_id))


async def _select_alternative(c: Connection, m: p.SelectAlternative, _: str | None) -> Answer:
    await c.engine.select_alternative(m.chat_id, m.event_id)
    return p.Ok()


async def _list_branches(c: Connection, m: p.ListBranches, _: str | None) -> Answer:
    return await c.engine.list_branches(m.chat_id)


async def _switch_branch(c: Connection, m: p.SwitchBranch, _: str | None) -> Answer:
    await c.engine.switch_branch(m.chat_id, m.branch_id)
    return p.Ok()


async def _edit_turn(c: Connection, m: p.EditTurn, _: str | None) -> Answer:
    return p.Accepted(m.chat_id, await c.engine.edit_turn(m.chat_id, m.event_id, m.prose))


async def _rewind_preview(c: Connection, m: p.RewindPreview, _: str | None) -> Answer:
    return await c.engine.rewind_preview(m.chat_id, m.event_id)


async def _rewind(c: Connection, m: p.Rewind, _: str | None) -> Answer:
    await c.engine.rewind(m.chat_id, m.event_id)
    return p.Rewound(m.chat_id, m.event_id)


async def _list_memories(c: Connection, m: p.ListMemories, _: str | None) -> Answer:
    return p.Memories(await c.engine.list_memories(m.bot_id, m.chat_id))


async def _pin_memory(c: Connection, m: p.PinMemory, _: str | None) -> Answer:
    return p.MemoryReply(await c.engine.pin_memory(m.memory_id, m.pinned))


async def _create_world_event(c: Connection, m: p.CreateWorldEvent, _: str | None) -> Answer:
    await c.engine.create_world_event(m.chat_id, m.title, m.description, m.artifacts)
    return p.Ok()


async def _update_chat_settings(c: Connection, m: p.UpdateChatSettings, _: str | None) -> Answer:
    changes = p.ChatSettings(m.temperature, m.top_p, m.min_p, m.repeat_penalty, m.max_tokens)
    return p.ChatSettingsReply(m.chat_id, await c.engine.update_chat_settings(m.chat_id, changes))


async def _statistics(c: Connection, _m: p.GetStatistics, _: str | None) -> Answer:
    # The snapshot as plain JSON, under its field names: that is the wire shape.
    return p.Statistics(attrs.asdict(c.gateway_statistics()))


COMMANDS: Mapping[type[object], Command] = dict(
    [
        _command(p.Hello, _hello),
        _command(p.SetYou, _set_you, recover=_you_now),
        _command(p.ListBots, _list_bots),
        _command(p.CreateBot, _create_bot, recover=_created_bot),
        _command(p.UpdateBot, _update_bot, recover=_bot_now),
        _command(p.DeleteBot, _delete_bot, slow=True, recover=_ok),
        _command(p.ListChats, _list_chats),
        _command(p.CreateChat, _create_chat, recover=_created_chat),
        _command(p.OpenChat, _open_chat),
        _command(p.CloseChat, _close_chat),
        _command(p.SendTurn, _send_turn, recover=_accepted_again),
        _command(p.Cancel, _cancel, recover=_ok),
        _command(p.Regenerate, _regenerate, recover=_accepted_again),
        _command(p.RewindPreview, _rewind_preview),
        _command(p.Rewind, _rewind, slow=True, recover=_rewound_again),
        _command(p.ListMemories, _list_memories),
        _command(p.PinMemory, _pin_memory, recover=_memory_now),
        _command(p.CreateWorldEvent, _create_world_event, recover=_ok),
        _command(p.GetStatistics, _statistics),
        _command(p.AddToCast, _add_to_cast, recover=_chat_now),
        _command(p.RemoveFromCast, _remove_from_cast, recover=_chat_now),
        _command(p.EnterScene, _enter_scene, recover=_ok),
        _command(p.LeaveScene, _leave_scene, recover=_ok),
        _command(p.Mute, _mute, recover=_chat_now),
        _command(p.Unmute, _unmute, recover=_chat_now),
        _command(p.LoadOlder, _load_older),
        _command(p.ListLorebooks, _list_lorebooks),
        _command(p.UpdateCard, _update_card, recover=_bot_now),
        _command(p.AttachLorebook, _attach_lorebook, recover=_ok),
        _command(p.DetachLorebook, _detach_lorebook, recover=_ok),
        _command(p.SetAuthorNote, _set_author_note, recover=_ok),
        _command(p.CreatePersona, _create_persona, recover=_created_persona),
        _command(p.ListPersonas, _list_personas),
        _command(p.UpdatePersona, _update_persona, recover=_persona_now),
        _command(p.TakeSeat, _take_seat),
        _command(p.SelectAlternative, _select_alternative, recover=_ok),
        _command(p.ListBranches, _list_branches),
        _command(p.SwitchBranch, _switch_branch, slow=True, recover=_ok),
        _command(p.EditTurn, _edit_turn, recover=_accepted_again),
        _command(p.UpdateChatSettings, _update_chat_settings, recover=_settings_now),
        # Not recorded: it writes nothing until its beat ends, long after its answer.
        _command(p.Continue, _continue),
    ]
)
"""Every client message type and how the gateway runs it."""


async def run_command(c: Connection, envelope: p.Envelope) -> Answer:
    """Run one command by its handler in :data:`COMMANDS`; its direct answer.

    A writing command sent with a ``command_id`` runs at most once per (chat,
    id), and a retry gets the first answer (``Engine.once``); a command that
    writes nothing ignores its id.
    """
    command = COMMANDS[type(envelope.message)]
    recover = command.recover
    if envelope.command_id is None or recover is None:
        return await command.handle(c, envelope.message, envelope.id)
    message = envelope.message

    async def run() -> p.ServerMessage:
        answer = await command.handle(c, message, envelope.id)
        assert answer is not None, "a writing command answers directly"
        return answer

    async def recovered(first_event_id: int) -> p.ServerMessage:
        return await recover(c, message, first_event_id)

    return await c.engine.once(
        command_chat(message), envelope.command_id, envelope.type, run, recovered
    )


__all__ = ["COMMANDS", "Answer", "Command", "command_chat", "run_command"]
