"""The ``openai`` backend: any OpenAI-compatible server, over httpx, under trio.

Streaming reads the server-sent events straight from the response's bytes
(``_sse.py``): while a model streams, each read is one token, so nothing is
paid per line or per layer. Connect errors, 429 and 5xx are retried with
backoff and jitter (honouring ``Retry-After``), but only before the first
token, so no text is ever duplicated. One connection
cap is shared by every caller, narrative beats before classifier calls.
Leaving a stream closes its HTTP response, so the server stops generating.

Every 4xx and 5xx answer is logged with its status and the start of its body
(the key redacted). Classifier calls ask for JSON in the way the settings'
``json_mode`` names; in ``auto`` a server that refuses ``response_format``
json_schema (400, 422 or 500: llama-cpp-python's server answers 500) is asked
again at once with json_object, then with no ``response_format`` and the
schema in the prompt, and the mode that worked is kept for the backend's life.
"""

from __future__ import annotations

import json
import logging
import random
import re
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, cast

import attrs
import httpx
import trio

from ._errors import (
    ModelError,
    ModelHTTPError,
    ModelOutputError,
    ModelProtocolError,
    ModelStalled,
    ModelTimeout,
)
from ._json import check_schema, extract_json, schema_prompt
from ._limit import Priority, PriorityLimiter, classifier_priority
from ._sse import EventSplitter
from ._statistics import OpenAIStatistics
from ._types import ClassifierRequest, JsonMode, Message, ModelSettings, NarrativeRequest

log = logging.getLogger("troupe.llm.openai")

RETRY_STATUSES = {429, 500, 502, 503, 504}
MAX_RETRY_AFTER = 30.0
REFUSAL_STATUSES = {400, 422, 500}
"""How a server says it will not take a ``response_format``."""
STEPS: tuple[JsonMode, ...] = ("schema", "object", "none")
FALLBACK: dict[JsonMode, JsonMode] = {"schema": "object", "object": "none"}
"""The next JSON mode to try when a server refuses one."""
BODY_LOGGED = 300
SSE = {"Accept": "text/event-stream", "Cache-Control": "no-store"}
"""The headers of a streamed request."""


def _name(name: str | None) -> str | None:
    if not name:
        return None
    cleaned = re.sub(r"[^A-Za-z0-9_-]", "_", name)[:64]
    return cleaned or None


def wire_messages(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    """Messages as the OpenAI API takes them (``name`` sanitised)."""
    out = []
    for message in messages:
        item: dict[str, Any] = {"role": message.role, "content": message.content}
        name = _name(message.name)
        if name and message.role != "system":
            item["name"] = name
        out.append(item)
    return out


GO_ON = (
    "Go on from exactly where your last reply stops, in the same voice: write only what "
    "comes next, without repeating any of it."
)
"""What a chat-style server is told when a beat is continued (``continue``)."""


def continuation_messages(request: NarrativeRequest) -> tuple[Message, ...]:
    """The messages of a beat; for a continuation, the reply so far as the speaker's own
    message, then :data:`GO_ON` (a chat API has no way to resume a message mid-way)."""
    if not request.continues:
        return request.messages
    return (
        *request.messages,
        Message("assistant", request.continues, request.speaker),
        Message("user", GO_ON),
    )


def with_schema_prompt(messages: tuple[Message, ...], schema: Any) -> tuple[Message, ...]:
    """The messages with the schema described in the system message (added if there is none)."""
    instruction = schema_prompt(schema)
    if messages and messages[0].role == "system":
        first = messages[0]
        return (Message("system", f"{first.content}\n\n{instruction}", first.name), *messages[1:])
    return (Message("system", instruction), *messages)


class _Retry(Exception):
    def __init__(self, reason: str, after: float | None = None) -> None:
        super().__init__(reason)
        self.after = after


class _Refused(Exception):
    """The server would not take the request's ``response_format``."""


class OpenAIBackend:
    """A client of one OpenAI-compatible server."""

    def __init__(self, settings: ModelSettings, client: httpx.AsyncClient | None = None) -> None:
        if not settings.base_url:
            raise ValueError("the openai backend needs a base URL")
        self.settings = settings
        timeouts = settings.timeouts
        headers = {"Accept": "application/json"}
        if settings.api_key:
            headers["Authorization"] = f"Bearer {settings.api_key}"
        self.client = client or httpx.AsyncClient(
            base_url=settings.base_url.rstrip("/") + "/",
            headers=headers,
            timeout=httpx.Timeout(
                connect=timeouts.connect, read=timeouts.stall, write=timeouts.stall, pool=None
            ),
            limits=httpx.Limits(max_connections=settings.max_connections * 2),
        )
        self.limiter = PriorityLimiter(settings.max_connections)
        self.json_mode: JsonMode = "schema" if settings.json_mode == "auto" else settings.json_mode
        """The JSON mode classifier calls use now (``auto`` steps it down on refusal)."""
        self.calls = 0
        self.retries = 0
        self.errors = 0
        self.streaming = 0

    # --- helpers ---

    def _redact(self, text: str) -> str:
        key = self.settings.api_key
        return text.replace(key, "[key]") if key else text

    def _body(self, messages: tuple[Message, ...], **extra: Any) -> dict[str, Any]:
        body: dict[str, Any] = {"messages": wire_messages(messages)}
        if self.settings.model:
            body["model"] = self.settings.model
        body.update({k: v for k, v in extra.items() if v is not None})
        return body

    def _retry_after(self, response: httpx.Response) -> float | None:
        value = response.headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, min(MAX_RETRY_AFTER, float(value)))
        except ValueError:
            return None

    async def _backoff(self, attempt: int, after: float | None) -> None:
        delay = after if after is not None else min(8.0, 0.5 * 2**attempt)
        delay *= 1 + random.uniform(0, 0.25)  # jitter: callers don't retry in lockstep
        self.retries += 1
        await trio.sleep(delay)

    def _log_answer(self, response: httpx.Response, what: str) -> None:
        """Log a 4xx/5xx answer: its status and the start of its body, the key redacted."""
        body = self._redact(response.text.strip()[:BODY_LOGGED])
        log.warning("the model server answered %d to %s: %s", response.status_code, what, body)

    def _error(self, response_text: str, status: int | None) -> ModelHTTPError:
        text = response_text.strip()
        try:
            data = json.loads(text)
            if isinstance(data, dict) and isinstance(data.get("error"), dict):
                text = str(data["error"].get("message", text))
            elif isinstance(data, dict) and "error" in data:
                text = str(data["error"])
        except ValueError:
            pass
        label = f"the model server answered {status}: " if status else "the model server said: "
        return ModelHTTPError(label + self._redact(text[:300]), status)

    # --- streaming ---

    @asynccontextmanager
    async def stream(self, request: NarrativeRequest) -> AsyncIterator[AsyncIterator[str]]:
        """Stream a beat; see the module docs for timeouts and retries."""
        body = self._body(
            continuation_messages(request),
            stream=True,
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            stop=list(request.stop[:4]) or None,
            # None is left out: only what the chat's settings ask for is sent.
            top_p=request.top_p,
            min_p=request.min_p,
            repeat_penalty=request.repeat_penalty,
        )
        self.calls += 1
        timeouts = self.settings.timeouts
        async with self.limiter.slot(Priority.NARRATIVE):
            deadline = trio.current_time() + timeouts.total
            attempt = 0
            while True:
                try:
                    async with self._events(body) as response:
                        self.streaming += 1
                        chunks = self._chunks(response, deadline)
                        try:
                            yield chunks
                        finally:
                            self.streaming -= 1
                            await chunks.aclose()
                    return
                except _Retry as retry:
                    if attempt >= self.settings.retries or trio.current_time() >= deadline:
                        self.errors += 1
                        raise ModelHTTPError(
                            f"gave up after {attempt + 1} tries: {retry}"
                        ) from None
                    log.info("retrying the model server (%s)", retry)
                    await self._backoff(attempt, retry.after)
                    attempt += 1

    @asynccontextmanager
    async def _events(self, body: dict[str, Any]) -> AsyncIterator[httpx.Response]:
        try:
            with trio.fail_after(self.settings.timeouts.first_token):
                context = self.client.stream("POST", "chat/completions", json=body, headers=SSE)
                response = await context.__aenter__()
        except trio.TooSlowError:
            raise ModelTimeout("the model server did not answer in time") from None
        except httpx.TimeoutException:
            raise _Retry("connect timeout") from None
        except httpx.TransportError as exc:
            raise _Retry(f"connection failed: {type(exc).__name__}") from None
        try:
            if response.status_code >= 400:
                await response.aread()
                self._log_answer(response, "a beat")
            if response.status_code in RETRY_STATUSES:
                raise _Retry(f"status {response.status_code}", self._retry_after(response))
            if response.status_code >= 400:
                self.errors += 1
                raise self._error(response.text, response.status_code)
            yield response
        finally:
            with trio.CancelScope(shield=True):
                await context.__aexit__(None, None, None)

    async def _chunks(
        self, response: httpx.Response, deadline: float
    ) -> AsyncGenerator[str, None]:
        kind = response.headers.get("content-type", "").partition(";")[0]
        if "text/event-stream" not in kind:
            self.errors += 1
            raise ModelProtocolError(f"the stream is not server-sent events: {kind!r}")
        timeouts = self.settings.timeouts
        pieces = cast(AsyncGenerator[bytes, None], response.aiter_bytes())
        events = EventSplitter()
        first = True
        try:
            while True:
                # One read is one event (one token) while the model streams: a bare cancel
                # scope per read, not a context manager wrapping one.
                wait = timeouts.first_token if first else timeouts.stall
                with trio.CancelScope(deadline=min(trio.current_time() + wait, deadline)) as scope:
                    try:
                        piece = await pieces.__anext__()
                    except StopAsyncIteration:
                        piece = None
                    except httpx.ReadTimeout:
                        self.errors += 1
                        raise ModelStalled("the model stopped sending tokens") from None
                    except httpx.TransportError as exc:
                        self.errors += 1
                        raise ModelProtocolError(
                            f"the stream was cut: {type(exc).__name__}"
                        ) from None
                if scope.cancelled_caught:
                    self.errors += 1
                    if trio.current_time() >= deadline:
                        raise ModelTimeout("the reply took longer than allowed") from None
                    if first:
                        raise ModelTimeout("no first token in time") from None
                    raise ModelStalled("the model stopped sending tokens") from None
                for data in events.feed(piece) if piece is not None else events.close():
                    texts = self._texts(data)
                    if texts is None:
                        return
                    for text in texts:
                        first = False
                        yield text
                if piece is None:
                    return
        finally:
            await pieces.aclose()

    def _texts(self, data: str) -> list[str] | None:
        """The text of one event's chunk; None at ``[DONE]``, the end of the reply."""
        data = data.strip()
        if not data:
            return []
        if data == "[DONE]":
            return None
        try:
            chunk = json.loads(data)
        except ValueError:
            self.errors += 1
            raise ModelProtocolError(f"malformed chunk: {self._redact(data[:80])!r}") from None
        if not isinstance(chunk, dict):
            raise ModelProtocolError("a chunk is not a JSON object")
        if "error" in chunk:
            self.errors += 1
            raise self._error(json.dumps(chunk), None)
        texts = []
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if isinstance(text, str) and text:
                texts.append(text)
        return texts

    # --- classifiers ---

    def _classifier_body(self, request: ClassifierRequest, mode: JsonMode) -> dict[str, Any]:
        messages = request.messages
        response_format: dict[str, Any] | None = None
        if mode == "schema":
            response_format = {
                "type": "json_schema",
                "json_schema": {"name": request.name, "schema": dict(request.schema)},
            }
        else:
            messages = with_schema_prompt(messages, request.schema)
            if mode == "object":
                response_format = {"type": "json_object"}
        return self._body(
            messages,
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            response_format=response_format,
        )

    async def complete_json(self, request: ClassifierRequest) -> dict[str, Any]:
        """One classifier call, retried before any output, then extracted and checked."""
        self.calls += 1
        async with self.limiter.slot(classifier_priority(request)):
            mode = self.json_mode
            while True:
                # Only ``auto`` steps down, and never past "none" (nothing left to drop).
                may_refuse = self.settings.json_mode == "auto" and mode in FALLBACK
                body = self._classifier_body(request, mode)
                try:
                    text = await self._complete(body, may_refuse=may_refuse)
                    break
                except _Refused:
                    log.warning(
                        "the model server refused JSON mode %r; trying %r", mode, FALLBACK[mode]
                    )
                    mode = FALLBACK[mode]
            self._remember(mode)
        try:
            return check_schema(extract_json(text), request.schema)
        except ModelOutputError:
            self.errors += 1
            raise

    def _remember(self, mode: JsonMode) -> None:
        """Keep ``mode`` for the backend's life if it is below the one in use."""
        # Calls in flight together may each step down: keep the lowest that worked.
        if STEPS.index(mode) > STEPS.index(self.json_mode):
            log.warning("classifier calls use JSON mode %r from now on", mode)
            self.json_mode = mode

    async def _complete(self, body: dict[str, Any], *, may_refuse: bool = False) -> str:
        deadline = trio.current_time() + self.settings.timeouts.total
        attempt = 0
        while True:
            try:
                with trio.fail_after(max(0.0, deadline - trio.current_time())):
                    response = await self.client.post("chat/completions", json=body)
                if response.status_code >= 400:
                    self._log_answer(response, "a classifier call")
                if may_refuse and response.status_code in REFUSAL_STATUSES:
                    raise _Refused()  # asked again at once in another mode: no backoff
                if response.status_code in RETRY_STATUSES:
                    raise _Retry(f"status {response.status_code}", self._retry_after(response))
                if response.status_code >= 400:
                    self.errors += 1
                    raise self._error(response.text, response.status_code)
                try:
                    data = response.json()
                    return str(data["choices"][0]["message"]["content"] or "")
                except (ValueError, KeyError, IndexError, TypeError):
                    self.errors += 1
                    raise ModelProtocolError("the reply has no message content") from None
            except trio.TooSlowError:
                self.errors += 1
                raise ModelTimeout("the classifier call took longer than allowed") from None
            except httpx.TimeoutException:
                retry = _Retry("timeout")
            except httpx.TransportError as exc:
                retry = _Retry(f"connection failed: {type(exc).__name__}")
            except _Retry as exc:
                retry = exc
            if attempt >= self.settings.retries:
                self.errors += 1
                raise ModelHTTPError(f"gave up after {attempt + 1} tries: {retry}")
            await self._backoff(attempt, retry.after)
            attempt += 1

    def statistics(self) -> OpenAIStatistics:
        """Calls, retries, errors, streams open, the JSON mode, and the connection cap."""
        return OpenAIStatistics(
            calls=self.calls,
            retries=self.retries,
            errors=self.errors,
            streaming=self.streaming,
            json_mode=self.json_mode,
            **attrs.asdict(self.limiter.statistics()),
        )

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self.client.aclose()


__all__ = ["ModelError", "OpenAIBackend"]
