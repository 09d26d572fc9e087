"""The significance worker: scores memories in the background.

A beat's memories are scored after the turn moved on (the classifier call is
background priority). A score of 3 auto-pins the memory; past the soft cap per
bot and chat the least significant auto-pin is unpinned. Manual pins are never
touched.
"""

from __future__ import annotations

import logging

import story
from llm import ClassifierRequest
from runtime import Actor
from store import AsyncStore, score_memories

from ._journal import FeedOf, Journal
from ._messages import Flush, ScoreMemories
from ._pool import ClassifierPool

log = logging.getLogger("troupe.actors.significance")


class SignificanceWorker(Actor):
    """Scores memories one beat at a time, in order."""

    def __init__(
        self, store: AsyncStore, feeds: FeedOf, pool: ClassifierPool, auto_pin_cap: int
    ) -> None:
        self.store = store
        self.feeds = feeds
        self.pool = pool
        self.auto_pin_cap = auto_pin_cap
        self.scored = 0

    async def handle(self, message: object) -> object:
        if isinstance(message, Flush):
            return None  # every job told before this one is done
        if not isinstance(message, ScoreMemories):
            raise TypeError(f"the significance worker does not handle {type(message).__name__}")
        prompt = story.significance_prompt(message.text, message.context)
        score = await self.pool.classify(
            ClassifierRequest(
                "significance",
                tuple(prompt),
                story.SIGNIFICANCE_SCHEMA,
                critical=False,  # background: every beat and every pass a turn waits on go first
            ),
            story.validate_significance,
            0,
        )
        # Scoring may unpin a memory of another chat: the journal publishes each
        # message on its own chat's feed.
        journal = Journal(self.store, self.feeds, message.chat_id)
        await journal.write(
            score_memories,
            message.chat_id,
            message.memory_ids,
            score,
            story.auto_pin_plan,
            self.auto_pin_cap,
        )
        self.scored += len(message.memory_ids)
        return None

    def statistics(self) -> dict[str, int]:
        """Memories scored so far."""
        return {"scored": self.scored}
