"""The engine's settings: one object, built by the composition root."""

from __future__ import annotations

from pathlib import Path

from attrs import Factory, frozen

from llm import ModelSettings


@frozen
class Budgets:
    """Token budgets of a narrative prompt and the length of a beat."""

    soft: int = 1600
    hard: int = 2400
    max_tokens: int = 300
    recent_turns: int = 20
    relevant_memories: int = 5
    temperature: float = 0.8


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
    checkpoint_interval: float = 1.0
    auto_pin_cap: int = 8
    chat_idle_timeout: float = 600.0
    shutdown_timeout: float = 8.0
    keep_snapshots: int = 5
    watch_buffer: int = 512
