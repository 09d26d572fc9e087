"""The scripted backend: canned replies, for tests, demos and scripted dialogues.

Replies come from a file or are pushed at run time, per role: one queue for
narrative beats and one per classifier name. A request takes the first
queued reply whose ``match`` pattern finds the rendered prompt, or else the
first reply with no pattern. An empty queue is a :class:`ModelError`.

File format (TOML or JSON)::

    [[narrative]]
    text = "Mira squints at the key."
    delay = 0.05          # seconds between tokens (optional)

    [[narrative]]
    match = "(?i)dragon"  # only for a prompt that mentions dragons
    text = "..."

    [[classifier.state_update]]   # one source's edges, an entry per target id
    json = { edges = { you = { affinity_delta = 3, trust_delta = 1, knowledge_facts = [] } } }

    [[classifier.significance]]
    raw = "not json at all"   # output that is not JSON

    [[classifier.interjection]]
    error = "timeout"         # the call fails

A narrative reply may also say ``error`` (stream ``text``, then fail),
``stall = true`` (never answer) or ``stall_after = N`` (N tokens, then hang).
Any reply may say ``keep = true``: it is served every time it is chosen.
A scripted file may set ``repeat = true`` at the top: the last reply of each
queue is then served again and again instead of running out.

Built with a ``capacity``, the backend takes a slot of its own
:class:`PriorityLimiter` for each call, as the real backends do (narrative
beats first, then critical classifier calls, then the rest); without one,
calls never wait for each other.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections import deque
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from pathlib import Path
from typing import Any

import attrs
import trio

from ._errors import ModelError, ModelOutputError
from ._json import check_schema, extract_json
from ._limit import Priority, PriorityLimiter, classifier_priority
from ._statistics import ScriptedStatistics
from ._types import ClassifierRequest, Message, NarrativeRequest

_TOKEN = re.compile(r"\s*\S+|\s+")


def split_tokens(text: str) -> list[str]:
    """Word-ish chunks (leading spaces kept), as a model would stream them."""
    return _TOKEN.findall(text)


@attrs.frozen
class Reply:
    """One scripted answer."""

    text: str | None = None
    json: Any = None
    raw: str | None = None
    error: str | None = None
    stall: bool = False
    stall_after: int | None = None
    delay: float = 0.0
    match: str | None = None
    keep: bool = False
    """Serve this reply every time it is chosen instead of using it up."""


def render(messages: tuple[Message, ...]) -> str:
    """The prompt as one text, for ``match`` patterns."""
    return "\n".join(f"{m.name or m.role}: {m.content}" for m in messages)


class ScriptedBackend:
    """Serves scripted replies and records every request it gets."""

    def __init__(self, repeat: bool = False, capacity: int | None = None) -> None:
        self.limiter = PriorityLimiter(capacity) if capacity is not None else None
        self._narrative: deque[Reply] = deque()
        self._classifier: dict[str, deque[Reply]] = {}
        self.repeat = repeat
        self.requests: list[NarrativeRequest | ClassifierRequest] = []
        self.served = 0
        self.failed = 0

    @classmethod
    def from_file(cls, path: str | Path) -> ScriptedBackend:
        """Load replies from a TOML or JSON file (see the module docs)."""
        path = Path(path)
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
        backend = cls(repeat=bool(data.get("repeat", False)))
        for item in data.get("narrative", []):
            backend.push_narrative(**item)
        for name, items in data.get("classifier", {}).items():
            for item in items:
                backend.push_classifier(name, **item)
        return backend

    def push_narrative(
        self,
        text: str | None = None,
        *,
        error: str | None = None,
        stall: bool = False,
        stall_after: int | None = None,
        delay: float = 0.0,
        match: str | None = None,
        keep: bool = False,
    ) -> None:
        """Queue a narrative reply."""
        self._narrative.append(
            Reply(
                text=text,
                error=error,
                stall=stall,
                stall_after=stall_after,
                delay=delay,
                match=match,
                keep=keep,
            )
        )

    def push_classifier(
        self,
        name: str,
        json: Any = None,
        *,
        raw: str | None = None,
        error: str | None = None,
        stall: bool = False,
        delay: float = 0.0,
        match: str | None = None,
        keep: bool = False,
    ) -> None:
        """Queue a classifier reply: a JSON value, raw text, an error, or a stall.

        ``delay`` seconds pass before the answer (a slow model's pass).
        """
        self._classifier.setdefault(name, deque()).append(
            Reply(
                json=json, raw=raw, error=error, stall=stall, delay=delay, match=match, keep=keep
            )
        )

    def pending(self) -> dict[str, int]:
        """How many replies are still queued, per role."""
        out = {"narrative": len(self._narrative)}
        out.update({name: len(queue) for name, queue in self._classifier.items()})
        return out

    def _take(self, queue: deque[Reply], messages: tuple[Message, ...], what: str) -> Reply:
        prompt = render(messages)
        chosen = None
        for reply in queue:
            if reply.match is not None and re.search(reply.match, prompt):
                chosen = reply
                break
        if chosen is None:
            chosen = next((r for r in queue if r.match is None), None)
        if chosen is None:
            self.failed += 1
            raise ModelError(f"no scripted reply left for {what}")
        if not chosen.keep and not (self.repeat and len(queue) == 1):
            queue.remove(chosen)
        self.served += 1
        return chosen

    def _slot(self, priority: Priority) -> AbstractAsyncContextManager[None]:
        if self.limiter is None:
            return nullcontext()
        return self.limiter.slot(priority)

    @asynccontextmanager
    async def stream(self, request: NarrativeRequest) -> AsyncIterator[AsyncIterator[str]]:
        """Stream the next narrative reply, token by token."""
        async with self._slot(Priority.NARRATIVE):
            self.requests.append(request)
            reply = self._take(self._narrative, request.messages, "a narrative beat")
            if reply.stall and reply.text is None:
                await trio.sleep_forever()
            if reply.error is not None and not reply.text:
                raise ModelError(reply.error)
            yield self._tokens(reply)

    async def _tokens(self, reply: Reply) -> AsyncIterator[str]:
        for index, token in enumerate(split_tokens(reply.text or "")):
            if reply.stall_after is not None and index >= reply.stall_after:
                await trio.sleep_forever()
            if reply.delay:
                await trio.sleep(reply.delay)
            else:
                await trio.lowlevel.checkpoint()
            yield token
        if reply.stall:
            await trio.sleep_forever()
        if reply.error is not None:
            raise ModelError(reply.error)

    async def complete_json(self, request: ClassifierRequest) -> dict[str, Any]:
        """Answer a classifier call from its queue."""
        async with self._slot(classifier_priority(request)):
            self.requests.append(request)
            queue = self._classifier.setdefault(request.name, deque())
            reply = self._take(queue, request.messages, f"the {request.name} classifier")
            if reply.delay:
                await trio.sleep(reply.delay)
            else:
                await trio.lowlevel.checkpoint()
            if reply.stall:
                await trio.sleep_forever()
        if reply.error is not None:
            raise ModelError(reply.error)
        if reply.raw is not None:
            return check_schema(extract_json(reply.raw), request.schema)
        if not isinstance(reply.json, Mapping):
            # A bare value stands for the schema's single key, e.g. significance = 3.
            keys = list(request.schema.get("required", ()))
            if len(keys) != 1:
                raise ModelOutputError(f"scripted {request.name} output is not an object")
            return {keys[0]: reply.json}
        return dict(reply.json)

    def statistics(self) -> ScriptedStatistics:
        """Requests seen, replies served, requests that found none, and what is queued."""
        return ScriptedStatistics(
            requests=len(self.requests),
            served=self.served,
            failed=self.failed,
            pending=self.pending(),
        )

    async def aclose(self) -> None:
        """Nothing to release."""
