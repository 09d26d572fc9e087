"""The event store on apsw: the append-only log, its projections, rewind and recovery.

Owns: the SQLite schema and its migrations; appending events together with
their projection change and outgoing chat messages in one transaction; the
queries the turn flow needs; rewind (after a snapshot) and supersede; crash
recovery of beats left open; holding a beat's end while the disk is full;
and running all of it on one thread for trio. See docs/storage.md.
"""

from ._async import AsyncStore, open_store
from ._errors import Invalid, NotFound, StorageFull, StoreError
from ._records import AppendResult, Render, RewindPreview, StoredEvent, WorldEventRow
from ._store import Store, utc_now

__all__ = [
    "AppendResult",
    "AsyncStore",
    "Invalid",
    "NotFound",
    "Render",
    "RewindPreview",
    "StorageFull",
    "Store",
    "StoreError",
    "StoredEvent",
    "WorldEventRow",
    "open_store",
    "utc_now",
]
