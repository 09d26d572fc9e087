"""The embedded model's worker process: one llama.cpp model, one request at a time.

The ``local`` backend starts this module as a child process
(``python -m llm._local_worker``), so that an abort inside llama.cpp ends one
request instead of the server. The two speak JSON lines. On stdin: first the
model settings, then requests (``stream`` or ``json``) and ``stop``. On stdout:
``ready`` (or ``fatal``), then for each request its ``token`` messages and one
``done`` (or ``error``), which is the acknowledgment that the model is free.

A reader thread takes the requests off stdin while the main thread generates,
so a ``stop`` is seen between two tokens. The end of stdin means the server is
gone: the worker exits at once. Anything llama.cpp prints goes to stderr,
which the server logs; stdout carries only the protocol.

A ``stream`` request may name a ``cache_key`` (its chat and speaker): the
evaluated prompt is then kept in the worker's prefix cache
(``llm/_local_cache.py``) so that the key's next beat evaluates only what
changed. Every ``done`` reports the prompt's tokens, how many of them were
reused rather than evaluated, and the cache's figures.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import sys
import threading
from typing import Any, BinaryIO

from llm._echo import BANNED, RepeatBan
from llm._local_cache import DEFAULT_CAP, Entry, PrefixCache, common_prefix

# How a request looks on the wire, and how the worker answers.
STREAM = "stream"
JSON = "json"
STOP = "stop"

PREFILL_CHUNK = 128
"""Prompt tokens read between two looks for a stop: llama.cpp reads a batch uninterrupted."""


def json_complete(text: str) -> bool:
    """Whether ``text`` already holds one whole JSON value (what a grammar call generates).

    Generation stops there: sampling on after the grammar has completed can
    only offer tokens the grammar refuses, and llama.cpp aborts on those.
    """
    stripped = text.lstrip()
    if not stripped:
        return False
    try:
        json.JSONDecoder().raw_decode(stripped)
    except ValueError:
        return False
    return True


class Channel:
    """The protocol end of stdout: one JSON object per line, flushed at once."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def send(self, **message: Any) -> None:
        """Write one message (json.dumps escapes newlines, so a message is one line)."""
        line = json.dumps(message).encode() + b"\n"
        with self._lock:
            self._stream.write(line)
            self._stream.flush()


class Worker:
    """The model and the requests for it, served in the order they came."""

    def __init__(self, model: Any, channel: Channel, cache_cap: int = DEFAULT_CAP) -> None:
        self.model = model
        self.channel = channel
        self.cache = PrefixCache(cache_cap)
        self._live_key: str | None = None
        """The key whose beat the live context holds, if it is not saved since."""
        self._prompt = (0, 0)
        """The last request's prompt tokens and how many of them were reused."""
        self.requests: queue.Queue[dict[str, Any]] = queue.Queue()
        self._lock = threading.Lock()
        self._open: set[int] = set()
        """Requests received and not yet finished."""
        self._stopped: set[int] = set()
        self.overlaps = 0
        """Requests that arrived while another was unfinished: the server broke its word."""
        self._no_pad = _pad_ban(model)

    # --- the reader thread ---

    def read(self, stdin: BinaryIO) -> None:
        """Take messages off stdin until it ends; then the server is gone, and so are we."""
        for raw in stdin:
            try:
                message = json.loads(raw)
                op = message["op"]
                request_id = int(message["id"])
            except (ValueError, KeyError, TypeError):
                print(f"worker: a malformed message: {raw[:200]!r}", file=sys.stderr)
                continue
            with self._lock:
                if op == STOP:
                    if request_id in self._open:  # else it finished already
                        self._stopped.add(request_id)
                    continue
                if self._open:
                    self.overlaps += 1
                self._open.add(request_id)
            self.requests.put(message)
        sys.stderr.flush()
        os._exit(0)

    def stopped(self, request_id: int) -> bool:
        """Whether the server asked this request to stop."""
        with self._lock:
            return request_id in self._stopped

    def _finish(self, request_id: int, kind: str, **fields: Any) -> None:
        """Close the request, then say so: the acknowledgment that the model is free."""
        with self._lock:
            self._open.discard(request_id)
            self._stopped.discard(request_id)
            overlaps = self.overlaps
        prompt, reused = self._prompt
        self.channel.send(
            ev=kind,
            id=request_id,
            overlaps=overlaps,
            prompt_tokens=prompt,
            reused_tokens=reused,
            cache=self.cache.statistics(),
            **fields,
        )

    # --- the main thread ---

    def serve(self) -> None:
        """Run requests one after another, for as long as the server lives."""
        while True:
            message = self.requests.get()
            request_id = int(message["id"])
            self._prompt = (0, 0)
            try:
                if message["op"] == JSON:
                    text, reason = self._complete_json(request_id, message)
                    self._finish(request_id, "done", text=text, reason=reason)
                else:
                    reason = self._stream(request_id, message)
                    self._finish(request_id, "done", reason=reason)
            except Exception as exc:  # the request's failure, not the worker's
                self._finish(request_id, "error", error=str(exc) or repr(exc))

    def _prefill(self, request_id: int, prompt: str, key: str | None = None) -> bool:
        """Read the prompt into the model in small chunks; False if stopped meanwhile.

        What the live context (or the key's saved context, if it holds more of
        the prompt) already holds is not read again. The completion call then
        finds the prompt cached and reads only its last token, so a stop during
        a long prompt is seen within a chunk, not at its end.
        """
        model = self.model
        tokens = model.tokenize(prompt.encode(), add_bos=False, special=True)
        bos = model.token_bos()
        if model._model.add_bos_token() and bos >= 0:
            tokens = [bos, *tokens]
        if key != self._live_key:
            self._save_live()  # whatever comes next overwrites it
        if len(tokens) >= model.n_ctx():
            return not self.stopped(request_id)  # the completion call reports it
        same = common_prefix(model.input_ids[: model.n_tokens].tolist(), tokens[:-1])
        saved = self.cache.get(key) if key is not None else None
        if saved is not None and common_prefix(saved.tokens, tokens[:-1]) > same:
            self._load(saved)
            same = common_prefix(saved.tokens, tokens[:-1])
        self._live_key = key
        self._prompt = (len(tokens), same)
        model.n_tokens = same  # eval() drops the cache past this point
        for start in range(same, len(tokens) - 1, PREFILL_CHUNK):
            if self.stopped(request_id):
                return False
            model.eval(tokens[start : min(start + PREFILL_CHUNK, len(tokens) - 1)])
        return not self.stopped(request_id)

    def _save_live(self) -> None:
        """Keep the live context under its key, before another request overwrites it."""
        import ctypes

        import llama_cpp

        key, self._live_key = self._live_key, None
        model = self.model
        if key is None or self.cache.cap == 0 or model.n_tokens == 0:
            return
        ctx = model._ctx.ctx
        size = int(llama_cpp.llama_state_seq_get_size(ctx, 0))
        buffer = (ctypes.c_uint8 * size)()
        written = int(llama_cpp.llama_state_seq_get_data(ctx, buffer, size, 0))
        tokens = tuple(model.input_ids[: model.n_tokens].tolist())
        self.cache.put(key, Entry(tokens, bytes(memoryview(buffer)[:written])))

    def _load(self, entry: Entry) -> None:
        """Put a saved context back in place of the live one."""
        import ctypes

        import llama_cpp

        model = self.model
        ctx = model._ctx.ctx
        llama_cpp.llama_memory_clear(llama_cpp.llama_get_memory(ctx), True)
        model.n_tokens = 0
        buffer = (ctypes.c_uint8 * len(entry.state)).from_buffer_copy(entry.state)
        if llama_cpp.llama_state_seq_set_data(ctx, buffer, len(entry.state), 0) == 0:
            return  # llama.cpp refused it: the prompt is read from the start
        model.input_ids[: len(entry.tokens)] = entry.tokens
        model.n_tokens = len(entry.tokens)
        self.cache.hits += 1

    def _stream(self, request_id: int, message: dict[str, Any]) -> str:
        key = message.get("cache_key")
        if not self._prefill(request_id, message["prompt"], str(key) if key else None):
            return "stopped"
        banning = self._repeat_ban(message)
        parts = self.model.create_completion(
            message["prompt"],
            max_tokens=int(message["max_tokens"]),
            temperature=float(message["temperature"]),
            repeat_penalty=float(message.get("repeat_penalty", 1.0)),
            frequency_penalty=float(message.get("frequency_penalty", 0.0)),
            presence_penalty=float(message.get("presence_penalty", 0.0)),
            # A chat's own sampler settings, else llama-cpp-python's defaults.
            top_p=float(message.get("top_p", 0.95)),
            min_p=float(message.get("min_p", 0.05)),
            stop=list(message.get("stop", ())),
            # llama-cpp-python drops both when given a logit bias and a processor, so the
            # processor applies the pad ban itself.
            logit_bias=None if banning else self._no_pad,
            logits_processor=banning,
            stream=True,
        )
        try:
            for part in parts:
                if self.stopped(request_id):
                    return "stopped"
                choice = part["choices"][0]
                text = choice.get("text") or ""
                if text:
                    self.channel.send(ev="token", id=request_id, text=text)
                if choice.get("finish_reason"):
                    return str(choice["finish_reason"])
            return "stop"
        finally:
            parts.close()  # leaves the model at once, before the acknowledgment

    def _repeat_ban(self, message: dict[str, Any]) -> list[Any] | None:
        """A logits processor that bans the token repeating a run of the transcript or reply.

        ``echo_from`` is where the transcript starts in the prompt (what the reply
        may not copy); without ``no_repeat_ngram`` there is none.
        """
        ngram = int(message.get("no_repeat_ngram", 0))
        if ngram < 2:
            return None
        import numpy as np

        model = self.model
        said = model.tokenize(
            message["prompt"][int(message.get("echo_from", 0)) :].encode(),
            add_bos=False,
            special=True,
        )

        def text(token: int) -> str:
            return str(model.detokenize([token]).decode(errors="ignore"))

        ban = RepeatBan(
            said,
            lambda token: any(ch.isalnum() for ch in text(token)),
            ngram,
            breaking=lambda token: "\n" in text(token),
        )
        pad = tuple(self._no_pad or ())
        seen = self._prompt[0]

        def process(input_ids: Any, scores: Any) -> Any:
            nonlocal seen
            ids = input_ids.tolist()
            for token in ids[seen:]:
                ban.add(int(token))
            seen = max(seen, len(ids))
            banned = ban.banned(ids)
            if banned:
                scores[np.fromiter(banned, dtype=np.intc)] = BANNED
            for token in pad:
                scores[token] = BANNED
            return scores

        return [process]

    def _complete_json(self, request_id: int, message: dict[str, Any]) -> tuple[str, str]:
        from llama_cpp.llama_grammar import LlamaGrammar

        if not self._prefill(request_id, message["prompt"]):
            return "", "stopped"
        grammar = LlamaGrammar.from_json_schema(json.dumps(message["schema"]), verbose=False)
        parts = self.model.create_completion(
            message["prompt"],
            max_tokens=int(message["max_tokens"]),
            temperature=float(message["temperature"]),
            grammar=grammar,
            logit_bias=self._no_pad,
            stream=True,
        )
        text = ""
        try:
            for part in parts:
                if self.stopped(request_id):
                    return text, "stopped"
                text += part["choices"][0].get("text") or ""
                if json_complete(text):
                    return text, "complete"
            return text, "length"
        finally:
            parts.close()


def _pad_ban(model: Any) -> dict[int, float] | None:
    """A logit bias that rules out the pad token: it is never text, and a grammar refuses it."""
    import llama_cpp

    pad = int(llama_cpp.llama_vocab_pad(model._model.vocab))
    return {pad: float("-inf")} if pad >= 0 else None


def _protocol_stdout() -> BinaryIO:
    """Keep fd 1 for the protocol and send every other write to stdout to stderr."""
    protocol = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # llama.cpp's own prints must never land in the protocol
    sys.stdout = sys.stderr
    return protocol


def load(settings: dict[str, Any]) -> Any:
    """The model the settings name."""
    from llama_cpp import Llama

    return Llama(
        model_path=str(settings["model_path"]),
        n_ctx=int(settings["n_ctx"]),
        n_threads=int(settings["n_threads"]),
        # A full-size window cache for Gemma 3's sliding-window layers: a shorter one
        # forgets the positions a kept prefix needs when the prompt after it changes.
        swa_full=True,
        verbose=False,
    )


def main() -> int:
    """Load the model, say ``ready``, serve until stdin ends."""
    # Ctrl-C reaches the whole process group; the server decides when the worker ends.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    channel = Channel(_protocol_stdout())
    stdin = sys.stdin.buffer
    try:
        settings = json.loads(stdin.readline())
        model = load(settings)
    except Exception as exc:
        channel.send(ev="fatal", error=f"{type(exc).__name__}: {exc}")
        return 1
    worker = Worker(model, channel, int(settings.get("cache_bytes", DEFAULT_CAP)))
    threading.Thread(target=worker.read, args=(stdin,), name="stdin", daemon=True).start()
    channel.send(ev="ready", pid=os.getpid())
    worker.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
