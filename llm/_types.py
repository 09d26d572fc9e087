"""The model interface: requests, settings, and the Backend protocol."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any, Literal, Protocol

from attrs import Factory, field, frozen
from attrs.validators import in_

from protocol import PromptMessage
from protocol import Role as Role

if TYPE_CHECKING:
    from ._statistics import BackendStatistics

BackendKind = Literal["local", "openai", "scripted"]
BACKENDS: tuple[BackendKind, ...] = ("local", "openai", "scripted")
"""The model backends there are: the embedded model, an OpenAI-compatible server, a script."""

JsonMode = Literal["auto", "schema", "object", "none"]
JSON_MODES: tuple[JsonMode, ...] = ("auto", "schema", "object", "none")
"""How an OpenAI-compatible server is asked for a classifier's JSON.

``schema``: ``response_format`` json_schema, the schema itself; ``object``:
``response_format`` json_object, the schema described in the prompt; ``none``:
no ``response_format``, the schema described in the prompt. ``auto`` starts
at ``schema`` and steps down, for the backend's life, when the server refuses.
"""


Message = PromptMessage
"""One chat message; ``name`` is the speaker's display name (the protocol's prompt message)."""


@frozen
class NarrativeRequest:
    """A beat: stream the reply of ``speaker``."""

    messages: tuple[Message, ...]
    speaker: str
    max_tokens: int = 300
    temperature: float = 0.8
    stop: tuple[str, ...] = ()
    cache_key: str | None = None
    """The chat the beat belongs to: a backend that keeps evaluated prompts keeps it per key."""
    notes_from: int | None = None
    """Where the first system message's per-turn notes begin (feelings, memories, events)."""
    current: int = 1
    """The last messages that are this turn's own; the notes may go just before them."""
    top_p: float | None = None
    """Nucleus sampling's share; ``None``: the backend's default. So for the next two."""
    min_p: float | None = None
    repeat_penalty: float | None = None
    """The embedded model's repetition penalty; an OpenAI-compatible server gets it as
    llama.cpp's server reads it, only when set."""
    continues: str | None = None
    """The speaker's reply so far (``continue``): the model goes on from it, and streams
    only what comes next. Each backend shapes the prompt for it (see docs/models.md)."""


@frozen
class ClassifierRequest:
    """A classifier call: one JSON object matching ``schema``."""

    name: str
    messages: tuple[Message, ...]
    schema: Mapping[str, Any] = Factory(dict)
    max_tokens: int = 256
    temperature: float = 0.0
    critical: bool = False
    """A turn waits on the answer: it goes before background calls (significance)
    for a connection slot, though still after narrative beats."""


@frozen
class Timeouts:
    """Seconds: to connect, to the first token, between tokens, and for a whole call."""

    connect: float = 10.0
    first_token: float = 60.0
    stall: float = 30.0
    total: float = 300.0


@frozen
class ModelSettings:
    """One role's model: which backend, where, which model, and how hard to try."""

    backend: BackendKind = "local"
    base_url: str | None = None
    model: str | None = None
    api_key: str | None = field(default=None, repr=False)
    json_mode: JsonMode = field(default="auto", validator=in_(JSON_MODES))
    """How classifier calls ask for JSON; see :data:`JSON_MODES`."""
    max_connections: int = 4
    timeouts: Timeouts = Timeouts()
    retries: int = 3
    script_path: str | None = None
    model_path: str | None = None
    cache_dir: str | None = None
    threads: int | None = None
    context: int = 4096
    prefix_cache_bytes: int = 256 * 1024 * 1024
    """Bytes of evaluated prompts the local model keeps between a chat's turns (0: none)."""


class Backend(Protocol):
    """What every model backend offers."""

    def stream(self, request: NarrativeRequest) -> AbstractAsyncContextManager[AsyncIterator[str]]:
        """``async with backend.stream(req) as chunks: async for text in chunks``.

        Leaving the block, however it is left, closes the request at once.
        Failures raise :class:`llm.ModelError` subclasses.
        """
        ...

    async def complete_json(self, request: ClassifierRequest) -> dict[str, Any]:
        """One classifier call: the first JSON object of the output, checked for the schema."""
        ...

    def statistics(self) -> BackendStatistics:
        """A snapshot of the backend's figures: calls in flight and queued, retries and errors."""
        ...

    async def aclose(self) -> None:
        """Release connections, threads and models."""
        ...
