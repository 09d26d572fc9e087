"""The embedded model keeps a chat's evaluated prompt between its turns.

The worker reports, per request, the prompt's tokens and how many of them it
did not read again; these tests assert on those counts (never on time): a
chat's second beat reuses its first beat's prefix even with a classifier call
in between, the saved prompts stay under their byte cap, and a worker that
dies takes only its cache with it.
"""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from llm import (
    ClassifierRequest,
    LocalBackend,
    Message,
    ModelLength,
    ModelSettings,
    NarrativeRequest,
)
from llm._local_cache import Entry, PrefixCache, common_prefix

CARD = (
    "Mira keeps the bar at the Gilded Eel, a harbour tavern. She is dry, observant and "
    "slow to trust; she has run the place for twenty years and knows every captain on "
    "the coast by their drink. She never raises her voice and never forgets a debt."
)
SCHEMA = {
    "type": "object",
    "properties": {"significance": {"type": "integer", "minimum": 0, "maximum": 3}},
    "required": ["significance"],
}


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("model-cache")


def settings(cache_dir: Path, cap: int = 64 * 1024 * 1024) -> ModelSettings:
    return ModelSettings(cache_dir=str(cache_dir), context=1024, threads=1, prefix_cache_bytes=cap)


@pytest.fixture
async def local(cache_dir: Path) -> AsyncIterator[LocalBackend]:
    backend = LocalBackend(settings(cache_dir))
    yield backend
    await backend.aclose()


def beat(chat: str, lines: list[tuple[str, str]], feeling: str) -> NarrativeRequest:
    """A beat of ``chat`` after ``lines``; the feelings change every turn, as they do."""
    system = f"You are Mira.\n\n# Mira\n{CARD}"
    notes = f"\n\n# How Mira feels about them\n- Ana: {feeling}"
    messages = [Message("system", system + notes)]
    messages += [
        Message("user" if who == "Ana" else "assistant", text, who) for who, text in lines
    ]
    return NarrativeRequest(
        tuple(messages),
        speaker="Mira",
        max_tokens=4,
        temperature=0.0,
        cache_key=chat,
        notes_from=len(system),
    )


def passes(text: str) -> ClassifierRequest:
    return ClassifierRequest(
        "significance",
        (Message("system", "Rate how much this matters, 0 to 3."), Message("user", text)),
        SCHEMA,
        max_tokens=12,
    )


async def run(local: LocalBackend, request: NarrativeRequest) -> None:
    try:
        async with local.stream(request) as chunks:
            async for _ in chunks:
                pass
    except ModelLength:
        pass  # four tokens are a short beat: only the prompt matters here


FIRST = [("Ana", "Evening, Mira. Any rooms free tonight?")]
SECOND = [
    *FIRST,
    ("Mira", '*She nods at the stairs.* "Room nine. Pay before you sleep."'),
    ("Ana", "Have you seen a man with a scar over one eye?"),
]


async def test_a_chats_next_beat_reuses_its_prefix_after_a_classifier_call(
    local: LocalBackend,
) -> None:
    await run(local, beat("c1", FIRST, "wary, 50"))
    first = local.statistics()
    await local.complete_json(passes("Room nine. Pay before you sleep."))
    evicted = local.statistics()
    assert evicted.last_reused_tokens < 5  # the classifier's prompt shares nothing
    await run(local, beat("c1", SECOND, "warmer, 55"))
    second = local.statistics()
    # The card and the first line came back from the cache, not from a fresh read.
    assert second.cache_hits == 1
    # (All of the first prompt but its notes and Ana's line, which now follow the older lines.)
    assert second.last_reused_tokens > first.last_prompt_tokens // 2
    assert second.last_reused_tokens > second.last_prompt_tokens // 2
    assert second.cache_entries == 1 and 0 < second.cache_bytes <= second.cache_cap


async def test_without_the_cache_the_classifier_call_evicts_the_prefix(cache_dir: Path) -> None:
    backend = LocalBackend(settings(cache_dir, cap=0))
    try:
        await run(backend, beat("c1", FIRST, "wary, 50"))
        await backend.complete_json(passes("Room nine."))
        await run(backend, beat("c1", SECOND, "warmer, 55"))
        stats = backend.statistics()
        assert stats.last_reused_tokens < 5 and stats.cache_entries == 0
    finally:
        await backend.aclose()


async def test_the_saved_prompts_stay_under_their_cap(cache_dir: Path) -> None:
    # One saved prompt of these takes about 1.5 MB: a 4 MB cap keeps two of three.
    backend = LocalBackend(settings(cache_dir, cap=4 * 1024 * 1024))
    try:
        for chat in ("a", "b", "c"):
            await run(backend, beat(chat, SECOND, "wary, 50"))
            await backend.complete_json(passes(chat))
            stats = backend.statistics()
            assert stats.cache_bytes <= stats.cache_cap
        assert stats.cache_evictions >= 1 and stats.cache_entries < 3
    finally:
        await backend.aclose()


async def test_a_worker_restart_loses_only_the_cache(local: LocalBackend) -> None:
    await run(local, beat("c1", FIRST, "wary, 50"))
    await local.complete_json(passes("Room nine."))
    pid = local.statistics().worker_pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    worker = local._worker
    assert worker is not None
    await worker.process.wait()  # dead for sure before the next request looks
    await run(local, beat("c1", SECOND, "warmer, 55"))  # a fresh worker: read in full
    fresh = local.statistics()
    assert fresh.worker_pid != pid and fresh.crashes == 1
    assert fresh.last_reused_tokens == 0 and fresh.cache_hits == 0
    third = [*SECOND, ("Mira", '"No."'), ("Ana", "Then I will ask elsewhere.")]
    await local.complete_json(passes("No."))
    await run(local, beat("c1", third, "cold, 45"))
    again = local.statistics()
    assert again.cache_hits == 1 and again.last_reused_tokens > again.last_prompt_tokens // 2


def test_the_cache_drops_the_least_recently_used_to_stay_under_its_cap() -> None:
    cache = PrefixCache(cap=10)
    cache.put("a", Entry((1, 2), b"aaaa"))
    cache.put("b", Entry((1, 3), b"bbbb"))
    assert cache.get("a") is not None  # now b is the least recently used
    cache.put("c", Entry((1, 4), b"cccc"))
    assert "b" not in cache and "a" in cache and "c" in cache
    assert cache.bytes == 8 and cache.evictions == 1
    cache.put("big", Entry((1,), b"x" * 11))  # larger than the cap: never kept
    assert "big" not in cache and cache.bytes == 8
    cache.put("a", Entry((1, 2, 3), b"aa"))  # a replacement frees the old bytes
    assert cache.bytes == 6 and len(cache) == 2
    off = PrefixCache(cap=0)
    off.put("a", Entry((1,), b"a"))
    assert len(off) == 0


def test_common_prefix_counts_the_shared_leading_tokens() -> None:
    assert common_prefix([1, 2, 3], [1, 2, 4]) == 2
    assert common_prefix([1, 2], [1, 2, 3]) == 2
    assert common_prefix([], [1]) == 0
