"""The event store on apsw: the append-only log, its projections, branches and recovery.

Owns: the SQLite schema and its migrations; appending events together with
their projection change and outgoing chat messages in one transaction (writes
queued together commit together); the queries the turn flow needs; the named
writes of a chat (``begin_beat``, ``end_beat``, ``write_memories``, ...: events
and their messages together); starting a chat that carries on from another;
branches (rewind, forks and switches re-project one chat from its own events)
and supersede; crash recovery of beats left open; holding a beat's end while
the disk is full; what was imported from other front ends (character cards
with their avatars, lorebooks, chats: written in one transaction each, read
back whole) and the exports; the record of commands sent with an id, so that
a retry answers what the first run did; and running all of it on one thread
for trio.
See docs/storage.md.
"""

from ._async import AsyncStore, open_store
from ._carry import start_chat
from ._commands import CommandRecord, CommandRun, CommandTaken, current_command
from ._errors import Invalid, NotFound, StorageFull, StoreError
from ._exports import card_for, chat_export
from ._imports import (
    ChatImport,
    Done,
    image_type,
    import_any,
    import_card,
    import_chat,
    import_lorebook,
    put_blob,
)
from ._library import lorebook_info
from ._records import (
    AppendResult,
    Render,
    RewindPreview,
    StoredEvent,
    WireFrame,
    WorldEventRow,
)
from ._rendering import beat_complete, edge_update
from ._store import Store, utc_now
from ._table import drop_queued, queue_turn, start_queued, take_seat
from ._writes import (
    AutoPinPlan,
    add_user_turn,
    apply_edges,
    attach_lorebooks,
    begin_beat,
    begin_continuation,
    close_scene,
    continue_beat,
    end_beat,
    mark_memory,
    move_cast,
    move_world_events,
    open_scene,
    plan_world_event,
    score_memories,
    set_author_note,
    settle_turn,
    write_memories,
)

__all__ = [
    "AppendResult",
    "AsyncStore",
    "AutoPinPlan",
    "ChatImport",
    "CommandRecord",
    "CommandRun",
    "CommandTaken",
    "Done",
    "Invalid",
    "NotFound",
    "Render",
    "RewindPreview",
    "StorageFull",
    "Store",
    "StoreError",
    "StoredEvent",
    "WireFrame",
    "WorldEventRow",
    "add_user_turn",
    "apply_edges",
    "attach_lorebooks",
    "beat_complete",
    "begin_beat",
    "begin_continuation",
    "card_for",
    "chat_export",
    "close_scene",
    "continue_beat",
    "current_command",
    "drop_queued",
    "edge_update",
    "end_beat",
    "image_type",
    "import_any",
    "import_card",
    "import_chat",
    "import_lorebook",
    "lorebook_info",
    "mark_memory",
    "move_cast",
    "move_world_events",
    "open_scene",
    "open_store",
    "plan_world_event",
    "put_blob",
    "queue_turn",
    "score_memories",
    "set_author_note",
    "settle_turn",
    "start_chat",
    "start_queued",
    "take_seat",
    "utc_now",
    "write_memories",
]
