"""An engine on a real database file with a scripted model, for actor tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from actors import Engine, EngineSettings, open_engine
from llm import ScriptedBackend


@pytest.fixture
def backend() -> ScriptedBackend:
    return ScriptedBackend()


@pytest.fixture
def settings(tmp_path: Path) -> EngineSettings:
    return EngineSettings(db_path=tmp_path / "troupe.db", data_dir=tmp_path, classifier_timeout=5)


@pytest.fixture
async def engine(settings: EngineSettings, backend: ScriptedBackend) -> AsyncIterator[Engine]:
    async with open_engine(settings, narrative=backend, classifier=backend) as running:
        yield running
