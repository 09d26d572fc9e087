"""Opening the backend a role's settings name."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from ._local import LocalBackend
from ._openai import OpenAIBackend
from ._scripted import ScriptedBackend
from ._types import Backend, ModelSettings


def make_backend(settings: ModelSettings) -> Backend:
    """Build (without opening anything yet) the backend the settings name."""
    if settings.backend == "openai":
        return OpenAIBackend(settings)
    if settings.backend == "scripted":
        if not settings.script_path:
            raise ValueError("the scripted backend needs a script file")
        return ScriptedBackend.from_file(settings.script_path)
    return LocalBackend(settings)


@asynccontextmanager
async def open_backend(settings: ModelSettings) -> AsyncIterator[Backend]:
    """The backend for a block; closed on exit."""
    backend = make_backend(settings)
    try:
        yield backend
    finally:
        await backend.aclose()
