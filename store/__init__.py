"""The event store on apsw: the append-only log, its projections, rewind and recovery.

Owns: the SQLite schema and its migrations; appending events together with
their projection change and outgoing chat messages in one transaction; the
queries the turn flow needs; the named writes of a chat (``begin_beat``,
``end_beat``, ``write_memories``, ...: events and their messages together);
starting a chat that carries on from another; branches (rewind, forks and
switches re-project one chat from its own events) and supersede; crash
recovery of beats left open; holding a beat's end while the disk is full;
and running all of it on one thread for trio. See docs/storage.md.
"""

from ._async import AsyncStore, open_store
from ._branches import BranchRow
from ._carry import start_chat
from ._errors import Invalid, NotFound, StorageFull, StoreError
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
from ._writes import (
    AutoPinPlan,
    add_user_turn,
    apply_edges,
    begin_beat,
    close_scene,
    end_beat,
    mark_memory,
    move_cast,
    move_world_events,
    open_scene,
    plan_world_event,
    score_memories,
    settle_turn,
    write_memories,
)

__all__ = [
    "AppendResult",
    "AsyncStore",
    "AutoPinPlan",
    "BranchRow",
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
    "beat_complete",
    "begin_beat",
    "close_scene",
    "edge_update",
    "end_beat",
    "mark_memory",
    "move_cast",
    "move_world_events",
    "open_scene",
    "open_store",
    "plan_world_event",
    "score_memories",
    "settle_turn",
    "start_chat",
    "utc_now",
    "write_memories",
]
