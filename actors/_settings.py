"""The engine's settings: one object, built by the composition root."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from attrs import Factory, field, frozen
from attrs.validators import ge, gt, in_, le

from llm import ModelSettings


@frozen
class Budgets:
    """Token budgets of a narrative prompt and the length of a beat."""

    soft: int = field(default=1600, validator=gt(0))
    """Estimated tokens a prompt aims at; past it, the oldest dialogue goes first."""
    hard: int = field(default=2400, validator=gt(0))
    """Estimated tokens a prompt never exceeds (at least ``soft``)."""
    max_tokens: int = field(default=300, validator=gt(0))
    """The longest beat, in the model's tokens."""
    recent_turns: int = field(default=20, validator=ge(0))
    """Turns of dialogue a speaker's prompt reads."""
    relevant_memories: int = field(default=5, validator=ge(0))
    """The speaker's memories most relevant to the prose, besides its pinned ones."""
    temperature: float = field(default=0.8, validator=ge(0))

    def __attrs_post_init__(self) -> None:
        if self.hard < self.soft:
            raise ValueError(f"the hard budget ({self.hard}) is below the soft one ({self.soft})")


@frozen
class EngineSettings:
    """Everything the engine needs; nothing here is read from the environment."""

    db_path: Path
    data_dir: Path
    narrative: ModelSettings = Factory(ModelSettings)
    classifier: ModelSettings | None = None
    """The classifier role's backend; ``None`` shares the narrative backend."""
    budgets: Budgets = Budgets()
    classifier_timeout: float = 30.0
    """Seconds a classifier call may take, its wait for a slot included, before its default."""
    checkpoint_interval: float = 1.0
    """Seconds between a streaming beat's crash-recovery checkpoints, at the most often."""
    auto_pin_cap: int = 8
    """Auto-pinned memories per bot in one chat before the least significant is unpinned."""
    chat_idle_timeout: float = 600.0
    """Seconds a chat (or bot) actor stays active with nothing to do."""
    shutdown_timeout: float = 8.0
    """Seconds a shutdown takes at the most; also a beat's deadline to commit its end."""
    keep_snapshots: int = 5
    """Snapshots of the database kept (one is taken before each rewind)."""
    judge: Literal["auto", "model", "rules"] = field(
        default="auto", validator=in_(("auto", "model", "rules"))
    )
    """Who judges a beat's passes: the classifiers (``model``), rules with no model call
    (``rules``: relationships by the sentiment lexicon, an interjection by the witness the
    beat names), or ``auto``: rules when the classifier role runs on the embedded model,
    which cannot tell a kind line from a cruel one and keeps the person waiting."""
    max_beats_per_turn: int = field(default=3, validator=[ge(1), le(8)])
    """The most beats one turn streams, interjections included (1..8)."""
    watch_buffer: int = 512
