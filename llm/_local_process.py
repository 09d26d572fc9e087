"""The server's end of a local model worker process: start it, talk to it, reap it.

A worker (``llm/_local_worker.py``) speaks JSON lines over its stdin and
stdout; its stderr is drained into the log. Whatever makes the worker unusable
— its pipe ends, it sends a malformed line, we break off mid-message — raises
``ModelError(CRASHED)`` here, the one place where the pipe's failures are
mapped; the backend decides what to do with the worker.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections import deque
from pathlib import Path
from typing import Any

import trio

from ._errors import ModelError

log = logging.getLogger("troupe.llm.local")
worker_log = logging.getLogger("troupe.llm.local.worker")

CRASHED = "model_crashed"
"""The error of a request whose worker died under it (a beat's ``error``)."""

LOAD_TIMEOUT = 120.0
"""Seconds a fresh worker has to load the model and say it is ready."""

EXIT_TIMEOUT = 5.0
"""Seconds a worker has to exit, once closed or killed."""

SEND_TIMEOUT = 5.0
"""Seconds a message to a worker may take to go out (it reads its stdin at all times)."""

MAX_LINE = 1 << 20
"""The longest protocol line a worker may send (a classifier answer is far shorter)."""


class WorkerProcess:
    """The server's end of one worker process: its pipes, its stderr, how it ended."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self.pid = process.pid
        self.gone = False
        """The pipe to it broke or it sent nonsense: it can serve no further request."""
        self.cut = False
        """A message to it was broken off midway: it may be alive, but it is unusable."""
        self.overlaps = 0
        """Requests the worker saw arrive while another was unfinished (it counts them)."""
        self.prompt_tokens = 0
        """Prompt tokens of the requests it finished."""
        self.reused_tokens = 0
        """Of those, the tokens its context or prefix cache already held (not read again)."""
        self.last_prompt = (0, 0)
        """The last finished request's prompt tokens and reused tokens."""
        self.cache: dict[str, int] = {}
        """Its prefix cache's figures, as of the last finished request."""
        self.last_words: deque[str] = deque(maxlen=20)
        self.stderr_done = trio.Event()
        self._buffer = bytearray()

    @classmethod
    async def start(cls, config: dict[str, Any]) -> WorkerProcess:
        """Start a worker, hand it the model settings, and wait until it is ready."""
        process = await trio.lowlevel.open_process(
            [sys.executable, "-m", "llm._local_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=worker_env(),
        )
        worker = cls(process)
        # A system task, so the pipe is drained between requests too and the
        # process dies with the run even if nobody closes the backend.
        trio.lowlevel.spawn_system_task(worker._drain_stderr, name=f"local-worker-{worker.pid}")
        try:
            with trio.move_on_after(LOAD_TIMEOUT) as scope:
                await worker.send(config)
                message = await worker.receive()
            if scope.cancelled_caught:
                raise ModelError(f"the local model did not load within {LOAD_TIMEOUT:.0f} s")
            if message.get("ev") != "ready":
                raise ModelError(f"the local model could not load: {message.get('error')}")
        except ModelError as exc:
            with trio.CancelScope(shield=True):
                await worker.kill()
            if str(exc) == CRASHED:
                raise ModelError(
                    f"the local model could not load: its worker {worker.ended()}"
                    + "".join(f"\n  {line}" for line in list(worker.last_words)[-3:])
                ) from None
            raise
        except BaseException:
            with trio.CancelScope(shield=True):
                await worker.kill()
            raise
        log.info("local model worker %d ready", worker.pid)
        return worker

    async def send(self, message: dict[str, Any]) -> None:
        """Write one whole message; a closed pipe means the worker is gone.

        Shielded, so a cancel never leaves half a line in the pipe; bounded, since
        a worker reads its stdin at all times and one that stops is stuck.
        """
        assert self.process.stdin is not None
        with trio.CancelScope(shield=True):
            with trio.move_on_after(SEND_TIMEOUT) as bounded:
                try:
                    await self.process.stdin.send_all(json.dumps(message).encode() + b"\n")
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    self.gone = True
                    raise ModelError(CRASHED) from None
        if bounded.cancelled_caught:
            log.error("local model worker %d stopped reading its requests", self.pid)
            self.gone = self.cut = True  # part of a line may be out: the framing is lost
            raise ModelError(CRASHED)

    async def receive(self) -> dict[str, Any]:
        """The next message; the end of the pipe means the worker is gone."""
        assert self.process.stdout is not None
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0:
                line = bytes(self._buffer[:end])
                del self._buffer[: end + 1]
                try:
                    message = json.loads(line)
                except ValueError:
                    message = None
                if isinstance(message, dict):
                    return message
                return self._broken(f"sent a malformed line: {line[:120]!r}")
            if len(self._buffer) > MAX_LINE:
                return self._broken(f"sent a line longer than {MAX_LINE} bytes")
            try:
                chunk = await self.process.stdout.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                chunk = b""
            if not chunk:
                self.gone = True
                raise ModelError(CRASHED)
            self._buffer += chunk

    def _broken(self, why: str) -> dict[str, Any]:
        log.error("local model worker %d %s", self.pid, why)
        self.gone = True
        raise ModelError(CRASHED)

    def finished(self, message: dict[str, Any]) -> None:
        """Take the figures a ``done`` or ``error`` message reports."""
        prompt = int(message.get("prompt_tokens", 0))
        reused = int(message.get("reused_tokens", 0))
        self.prompt_tokens += prompt
        self.reused_tokens += reused
        self.last_prompt = (prompt, reused)
        cache = message.get("cache")
        if isinstance(cache, dict):
            self.cache = {str(k): int(v) for k, v in cache.items()}

    def ended(self) -> str:
        """How the process ended, for a person."""
        code = self.process.returncode
        if code is None:
            return "is still running"
        if code < 0:
            return f"was killed by signal {-code}"
        return f"exited with code {code}"

    async def kill(self) -> None:
        """Kill the process if it lives, and reap it (bounded)."""
        if self.process.returncode is None:
            self.process.kill()
        await self._reap()

    async def close(self) -> None:
        """Close its stdin, which ends it; kill it if it does not end in time."""
        assert self.process.stdin is not None
        await self.process.stdin.aclose()
        with trio.move_on_after(EXIT_TIMEOUT):
            await self.process.wait()
        await self.kill()

    async def _reap(self) -> None:
        with trio.move_on_after(EXIT_TIMEOUT):
            await self.process.wait()
            await self.stderr_done.wait()  # its last words, before anyone reads them
        for pipe in (self.process.stdin, self.process.stdout, self.process.stderr):
            if pipe is not None:
                await pipe.aclose()

    async def _drain_stderr(self) -> None:
        """Log every line the worker writes to stderr; keep the last few for a crash report."""
        assert self.process.stderr is not None
        pending = bytearray()
        try:
            async for chunk in self.process.stderr:
                pending += chunk
                *lines, rest = pending.split(b"\n")
                pending = bytearray(rest[-MAX_LINE:])
                for line in lines:
                    self._said(bytes(line))
            self._said(bytes(pending))
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        except Exception:  # a system task must not raise: the whole run would end
            log.exception("reading the stderr of local model worker %d failed", self.pid)
        finally:
            self.stderr_done.set()
            if self.process.returncode is None:
                # The run is ending and nobody closed the backend: don't leave the child behind.
                self.process.kill()

    def _said(self, raw: bytes) -> None:
        line = raw.decode(errors="replace").rstrip()
        if line:
            self.last_words.append(line)
            worker_log.info("[%d] %s", self.pid, line)


class Call:
    """One request in a worker: its id, and whether the worker said it finished."""

    def __init__(self, worker: WorkerProcess, request_id: int) -> None:
        self.worker = worker
        self.id = request_id
        self.finished = False

    async def next(self) -> dict[str, Any]:
        """The request's next message (``token`` or ``done``); ``error`` raises."""
        while True:
            message = await self.worker.receive()
            if message.get("id") != self.id:
                continue  # a late word about a request already settled
            kind = message.get("ev")
            if kind in ("done", "error"):
                self.finished = True
                self.worker.overlaps = int(message.get("overlaps", self.worker.overlaps))
                self.worker.finished(message)
            if kind == "error":
                raise ModelError(f"the local model failed: {message.get('error')}")
            return message


def worker_env() -> dict[str, str]:
    """The server's environment, with this source tree first on the worker's import path."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env
