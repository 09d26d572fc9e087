"""The significance worker: scores memories in the background.

A beat's memories are scored after the turn moved on (the classifier call is
background priority). A score of 3 auto-pins the memory; past the per-bot
soft cap the least significant auto-pin is unpinned. Manual pins are never
touched.
"""

from __future__ import annotations

import logging

from protocol import MemoryNote
from protocol import events as ev
from runtime import Actor
from store import Store

from . import _classifiers as cls
from ._messages import Flush, ScoreMemories
from ._services import Services

log = logging.getLogger("troupe.actors.significance")


class SignificanceWorker(Actor):
    """Scores memories one beat at a time, in order."""

    def __init__(self, svc: Services) -> None:
        self.svc = svc
        self.scored = 0

    async def handle(self, message: object) -> object:
        if isinstance(message, Flush):
            return None  # every job told before this one is done
        if not isinstance(message, ScoreMemories):
            raise TypeError(f"the significance worker does not handle {type(message).__name__}")
        score = await cls.significance(self.svc, message.text, message.context)
        chat_id = message.chat_id
        cap = self.svc.settings.auto_pin_cap

        def write(s: Store) -> object:
            events: list[ev.Event] = []
            touched: list[int] = []
            for memory_id in message.memory_ids:
                memory = s.get_memory(memory_id)
                if memory is None:
                    continue  # rewound meanwhile
                events.append(ev.MemoryScored(chat_id, memory_id, score))
                touched.append(memory_id)
                if score == 3 and not memory.pinned:
                    scored = cls.with_significance(memory, score)
                    pin, evict = cls.auto_pin_plan(scored, s.auto_pinned(memory.bot_id), cap)
                    if pin:
                        events.append(ev.MemoryPinned(chat_id, memory_id, "auto"))
                    for old in evict:
                        old_memory = s.get_memory(old)
                        events.append(
                            ev.MemoryUnpinned(
                                old_memory.chat_id if old_memory else chat_id, old, "auto"
                            )
                        )
                        touched.append(old)
            if not events:
                return ()

            def render(_ids: tuple[int, ...]) -> list[MemoryNote]:
                notes = []
                for memory_id in dict.fromkeys(touched):
                    memory = s.get_memory(memory_id)
                    if memory is not None:
                        notes.append(MemoryNote(memory.chat_id, memory))
                return notes

            return s.append(*events, render=render).messages

        messages = await self.svc.store.run(write)
        self.scored += len(message.memory_ids)
        by_chat: dict[str, list[MemoryNote]] = {}
        for note in messages:  # type: ignore[attr-defined]
            by_chat.setdefault(note.chat_id, []).append(note)
        for other_chat, notes in by_chat.items():
            try:
                self.svc.feed(other_chat).deliver(notes)
            except KeyError:
                pass  # nobody has opened that chat since the engine started
        return None

    def statistics(self) -> dict[str, int]:
        """Memories scored so far."""
        return {"scored": self.scored}
